"""The traced step and reset of small CPU batches play exactly the episodes of the eager ones, and refuse what they cannot hold."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import paretochain  # noqa: F401  (registers the environments)
from paretochain.envs._graph import EpisodePrefetch
from paretochain.envs.pricing import PricingConfig, PricingCore
from paretochain.errors import ActionError

CASES = [
    ("default", {}),
    ("default", {"initial_inventory": [6, 9]}),  # short of stock: the rationing branch of the graph
    ("default", {"action": {"kind": "box"}}),
    ("multichannel", {}),  # promotions, re-orders with a lead time, a store that holds its prices
    ("multichannel", {"action": {"kind": "box"}}),
    ("constant_elasticity", {}),
    ("dp_single_sku", {}),
]


def random_actions(core: PricingCore, rng: np.random.Generator) -> torch.Tensor:
    """Random actions allowed by the current masks (ladder) or inside the bounds (Box), ``(B, D)``."""
    space = core.single_action_space
    if not core.ladder_mode:
        low, high = space.low, space.high
        return torch.as_tensor(rng.uniform(low, high, size=(core.num_envs, *space.shape)), dtype=torch.float32)
    masks = core.action_masks().numpy()
    cols, start = [], 0
    for n in space.nvec:
        cols.append([rng.choice(np.flatnonzero(row)) for row in masks[:, start : start + n]])
        start += n
    return torch.as_tensor(np.array(cols).T, dtype=torch.int64)


@pytest.mark.parametrize(("name", "overrides"), CASES)
@pytest.mark.parametrize("num_envs", [1, 5])
def test_traced_step_plays_the_episodes_of_the_eager_step(name: str, overrides: dict, num_envs: int) -> None:
    cfg = PricingConfig.load(name, horizon=8, **overrides)
    traced, eager = PricingCore(cfg, num_envs=num_envs), PricingCore(cfg, num_envs=num_envs)
    eager.use_step_graph = False
    seeds = list(range(40, 40 + num_envs))
    assert torch.equal(traced.reset(seeds=seeds), eager.reset(seeds=seeds))
    rng = np.random.default_rng(7)
    lost = 0.0
    for t in range(3 * cfg.horizon):  # three seasons: what the graph reads at reset must change with them
        if t in (cfg.horizon, 2 * cfg.horizon):
            assert torch.equal(traced.reset(), eager.reset())
        if num_envs > 1 and t == cfg.horizon + 3:  # a partial reset: the envs are at different periods
            mask = torch.tensor([True, False, True, False, False])
            assert torch.equal(traced.reset(mask=mask), eager.reset(mask=mask))
        action = random_actions(eager, rng)
        a, b = traced.step(action), eager.step(action)
        assert torch.equal(a.obs, b.obs), f"step {t}"
        assert torch.equal(a.reward, b.reward), f"step {t}"
        assert torch.equal(a.terminated, b.terminated) and torch.equal(a.truncated, b.truncated)
        assert torch.equal(a.kpis.values, b.kpis.values), f"step {t}"  # type: ignore[attr-defined]
        for state in traced.step_state:
            assert torch.equal(getattr(traced, state), getattr(eager, state)), f"{state} at step {t}"
        lost += float(b.kpis["lost_units"].sum())
    assert traced._graph is not None and eager._graph is None  # the graphs did the stepping and the resets
    assert traced._reset_graph_run is not None and eager._reset_graph_run is None
    if "initial_inventory" in overrides:
        assert lost > 0  # some periods were rationed


@pytest.mark.parametrize("name", ["default", "multichannel"])
def test_one_env_starting_its_episodes_a_batch_ahead_plays_the_eager_seasons(name: str) -> None:
    cfg = PricingConfig.load(name, horizon=3)
    traced, eager = PricingCore(cfg, num_envs=1), PricingCore(cfg, num_envs=1)
    eager.use_step_graph = False
    assert torch.equal(traced.reset(seeds=[3]), eager.reset(seeds=[3]))
    rng = np.random.default_rng(5)
    kept: dict | None = None
    for season in range(2 * EpisodePrefetch.COUNT + 6):  # more than two batches of episodes
        if season == 5:  # keys set mid-batch by a seeded reset: the next episodes follow them
            assert torch.equal(traced.reset(seeds=[11]), eager.reset(seeds=[11]))
        elif season == 24:  # keys restored from a checkpoint
            assert kept is not None
            traced.load_state_dict(kept)
            eager.load_state_dict(kept)
        elif season:
            assert torch.equal(traced.reset(), eager.reset()), f"season {season}"
        if season == 9:
            kept = eager.state_dict()
        for t in range(cfg.horizon):
            action = random_actions(eager, rng)
            a, b = traced.step(action), eager.step(action)
            assert torch.equal(a.obs, b.obs) and torch.equal(a.reward, b.reward), f"season {season}, step {t}"
            assert torch.equal(a.kpis.values, b.kpis.values)  # type: ignore[attr-defined]
    assert isinstance(traced._reset_graph_run, EpisodePrefetch)


@pytest.mark.parametrize("traced", [True, False])
def test_a_pricing_env_restored_from_a_checkpoint_plays_the_rest_of_its_season(traced: bool) -> None:
    env = gym.make("paretochain/Pricing-v0", config="default")
    env.unwrapped.core.use_step_graph = traced
    env.reset(seed=3)
    action = np.array([4, 4, 4, 4])
    for _ in range(5):
        env.step(action)
    core = env.unwrapped.core
    assert core.uses_step_graph(torch.as_tensor(action).view(1, -1)) == traced
    assert not torch.is_inference_mode_enabled()
    state = core.state_dict()
    rest = [env.step(action)[:2] for _ in range(6)]

    again = gym.make("paretochain/Pricing-v0", config="default")
    again.unwrapped.core.use_step_graph = traced
    again.reset(seed=99)
    again.step(action)  # another season, with its own competitor and draws
    again.unwrapped.core.load_state_dict(state)
    for obs, reward in rest:
        obs_b, reward_b, *_ = again.step(action)
        assert np.array_equal(obs, obs_b) and np.array_equal(reward, reward_b)


def test_an_action_refused_by_the_mask_leaves_the_traced_env_as_it_was() -> None:
    env = gym.make("paretochain/Pricing-v0", config="default", invalid_action="raise")
    _, info = env.reset(seed=0)
    env.step(np.array([4, 4, 4, 4]))
    core = env.unwrapped.core
    before = {name: getattr(core, name) for name in core.step_state}
    floor = int(np.flatnonzero(~info["action_mask"][7:14])[0])  # the marketplace's floor masks the low prices
    with pytest.raises(ActionError, match="not allowed by its action mask"):
        env.step(np.array([4, floor, 4, 4]))
    assert all(getattr(core, name) is value for name, value in before.items())


class ReadsOnHost(PricingCore):
    """A core whose step decides something from a value read on the host: a trace would keep one outcome."""

    def _step(self, action):  # type: ignore[no-untyped-def]
        if bool((self.on_hand > 1e9).any()):
            self.on_hand = self.on_hand * 0
        return super()._step(action)


class RebindsUnlisted(PricingCore):
    """A core whose step rebinds a tensor its ``step_state`` does not name."""

    def _step(self, action):  # type: ignore[no-untyped-def]
        self.extra = self.on_hand + 1
        return super()._step(action)


@pytest.mark.parametrize(("core_cls", "reason"), [(ReadsOnHost, "reads tensor values"), (RebindsUnlisted, "rebinds")])
def test_a_step_the_graph_cannot_hold_is_refused_with_a_warning_and_runs_eagerly(
    core_cls: type[PricingCore], reason: str
) -> None:
    cfg = PricingConfig.load("default", horizon=6)
    core, plain = core_cls(cfg), PricingCore(cfg)
    plain.use_step_graph = False
    core.reset(seeds=[1])
    plain.reset(seeds=[1])
    action = torch.tensor([[4, 4, 4, 4]])
    with pytest.warns(RuntimeWarning, match=reason):
        first = core.step(action)
    assert core._graph is None and core._graph_refused
    assert torch.equal(first.obs, plain.step(action).obs)
    for _ in range(4):
        assert torch.equal(core.step(action).reward, plain.step(action).reward)


def test_the_environment_variable_turns_the_graph_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARETOCHAIN_STEP_GRAPH", "0")
    core = PricingCore(PricingConfig.load("default"))
    core.reset(seeds=[0])
    core.step(torch.tensor([[4, 4, 4, 4]]))
    assert core._graph is None and not core.uses_step_graph(torch.tensor([[4, 4, 4, 4]]))


def test_large_batches_and_other_devices_step_eagerly() -> None:
    core = PricingCore(PricingConfig.load("default"), num_envs=4096)
    core.reset(seeds=range(4096))
    core.step(torch.full((4096, 4), 4))
    assert core._graph is None


@pytest.mark.parametrize("name", ["default", "multichannel", "constant_elasticity"])
def test_the_single_view_returns_the_same_from_the_traced_step_as_from_the_eager_one(name: str) -> None:
    traced, eager = (gym.make("paretochain/Pricing-v0", config=name, horizon=6) for _ in range(2))
    eager.unwrapped.core.use_step_graph = False
    traced.reset(seed=5)
    eager.reset(seed=5)
    rng = np.random.default_rng(2)
    for _ in range(12):  # two seasons: the second starts from the traced reset
        action = random_actions(eager.unwrapped.core, rng)[0].numpy()
        a, b = traced.step(action), eager.step(action)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        assert a[2:4] == b[2:4]
        assert a[4].keys() == b[4].keys()
        assert all(np.array_equal(a[4][key], b[4][key]) for key in a[4])
        if a[3]:
            assert np.array_equal(traced.reset()[0], eager.reset()[0])
    assert traced.unwrapped.core._graph is not None


def test_envs_of_one_config_share_their_traced_graphs_and_still_play_their_own_seasons() -> None:
    from paretochain.envs import _graph

    envs = [gym.make("paretochain/Pricing-v0", config="default", horizon=5) for _ in range(3)]
    action = np.array([4, 4, 4, 4])
    seasons = []
    for seed, env in enumerate(envs):
        env.reset(seed=seed)
        seasons.append([env.step(action)[1] for _ in range(5)])
        env.reset()
    keys = {env.unwrapped.core._graph._key for env in envs}
    assert len(keys) == 1 and next(iter(keys)) in _graph._FROZEN
    assert not np.array_equal(seasons[0], seasons[1])  # each env plays its own seed
    again = gym.make("paretochain/Pricing-v0", config="default", horizon=5)
    again.unwrapped.core.use_step_graph = False
    again.reset(seed=2)
    assert np.array_equal(seasons[2], [again.step(action)[1] for _ in range(5)])


def test_a_core_keeps_stepping_with_its_graph_after_the_shared_store_lets_it_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from paretochain.envs import _graph

    monkeypatch.setattr(_graph, "KEEP", 2)
    monkeypatch.setattr(_graph, "_FROZEN", {})
    action = np.array([4, 4, 4, 4])
    first = gym.make("paretochain/Pricing-v0", config="default", horizon=5)
    first.reset(seed=1)
    first.step(action)
    for horizon in (6, 7, 8):  # other configs push the first graph out of the store
        other = gym.make("paretochain/Pricing-v0", config="default", horizon=horizon)
        other.reset(seed=0)
        other.step(action)
    assert first.unwrapped.core._graph._key not in _graph._FROZEN and len(_graph._FROZEN) <= 2
    eager = gym.make("paretochain/Pricing-v0", config="default", horizon=5)
    eager.unwrapped.core.use_step_graph = False
    eager.reset(seed=1)
    eager.step(action)
    for _ in range(4):
        assert np.array_equal(first.step(action)[1], eager.step(action)[1])


def test_a_pickled_env_drops_its_graphs_and_traces_them_again() -> None:
    import pickle

    env = gym.make("paretochain/Pricing-v0", config="default")
    env.reset(seed=0)
    action = np.array([4, 4, 4, 4])
    env.step(action)
    copy = pickle.loads(pickle.dumps(env.unwrapped))
    assert copy.core._graph is None
    assert np.array_equal(copy.step(action)[1], env.step(action)[1])
    assert copy.core._graph is not None


def test_the_single_view_remembers_allowed_actions_only_and_only_up_to_its_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from paretochain.envs import views

    monkeypatch.setattr(views, "KNOWN_ACTIONS", 3)
    env = gym.make("paretochain/Pricing-v0", config="default", invalid_action="raise")
    _, info = env.reset(seed=0)
    view = env.unwrapped
    floor = int(np.flatnonzero(~info["action_mask"][7:14])[0])
    for action in ([4, 4, 4, 4], [5, 4, 4, 4], [4, 4, 4, 4]):
        env.step(np.array(action))
    assert len(view._known_actions) == 2
    with pytest.raises(ActionError, match="not allowed by its action mask"):
        env.step(np.array([4, floor, 4, 4]))
    with pytest.raises(ActionError):
        env.step(np.array([4, 4, 4, 7]))
    assert len(view._known_actions) == 2  # refused actions are never remembered
    for action in ([6, 4, 4, 4], [3, 4, 4, 4], [2, 4, 4, 4]):
        env.step(np.array(action))
    assert len(view._known_actions) == 3  # the limit
    # masks that change between periods (a store that holds its prices) are checked every step
    assert gym.make("paretochain/Pricing-v0", config="multichannel").unwrapped._known_actions is None
