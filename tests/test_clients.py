"""Outside clients run unmodified: Gymnasium's and SB3's checkers, plain SB3 PPO, MORL-Baselines.

Also the contract they rely on: what an action outside the mask does (``invalid_action``),
a new ``info`` and mask every step, Pricing's ``Discrete`` action kind, every packaged config
loading as shipped, and one clear error for actions that are not numbers.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from paretochain.envs import make_vec
from paretochain.envs.config import packaged_configs_dir
from paretochain.envs.registration import env_class
from paretochain.errors import ActionError, ConfigError, ParetochainError

FAMILIES = {
    "warehouse": "paretochain/Warehouse-v0",
    "dispatch": "paretochain/Dispatch-v0",
    "pricing": "paretochain/Pricing-v0",
}
PACKAGED = [
    (FAMILIES[family], path.stem)
    for family in FAMILIES
    for path in sorted((packaged_configs_dir() / family).glob("*.yaml"))
]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _ids(case: tuple[str, str]) -> str:
    return f"{case[0].split('/')[1]}-{case[1]}"


def test_every_family_has_packaged_configs() -> None:
    families = {env_id for env_id, _ in PACKAGED}
    assert families == set(FAMILIES.values())
    assert ("paretochain/Dispatch-v0", "cvrplib") in PACKAGED and ("paretochain/Dispatch-v0", "solomon") in PACKAGED


@pytest.mark.parametrize("case", PACKAGED, ids=_ids)
def test_every_packaged_config_loads_as_shipped_and_steps(case: tuple[str, str]) -> None:
    env_id, name = case
    env = gym.make(env_id, config=name)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    obs, reward, *_ = env.step(env.action_space.sample())
    assert reward.shape == (env.unwrapped.reward_dim,) and np.isfinite(reward).all()


def test_the_routing_instances_of_the_packaged_configs_ship_with_their_source_and_licence() -> None:
    folder = packaged_configs_dir() / "dispatch" / "instances"
    readme = (folder / "README.md").read_text()
    for config, file in (("cvrplib", "cvrplib/A/A-n32-k5.vrp"), ("solomon", "solomon/C101.vrp")):
        assert (folder / file).is_file()
        assert file in readme
        instance = env_class("paretochain/Dispatch-v0")(config=config).core.instance
        assert Path(instance.path) == folder / file
    assert "licence" in readme.lower() and "Solomon" in readme and "Augerat" in readme


def test_a_relative_instance_path_in_the_working_directory_wins_over_the_shipped_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = packaged_configs_dir() / "dispatch" / "instances" / "solomon" / "C101.vrp"
    (tmp_path / "solomon").mkdir()
    own = tmp_path / "solomon" / "C101.vrp"
    own.write_text(shipped.read_text().replace("CAPACITY : 200", "CAPACITY : 250"))
    cls = env_class("paretochain/Dispatch-v0")
    config = cls.config_cls.load("solomon")  # instance.path: solomon/C101.vrp
    assert cls(config=config).core.capacity == 200
    monkeypatch.chdir(tmp_path)
    assert cls(config=config).core.capacity == 250


def test_a_missing_instance_file_is_still_one_clear_error() -> None:
    with pytest.raises(ParetochainError, match="does not exist"):
        gym.make("paretochain/Dispatch-v0", config="solomon", instance={"path": "solomon/NOPE.vrp"})


# --------------------------------------------------------------------------- checkers and plain clients


@pytest.mark.parametrize("case", PACKAGED, ids=_ids)
def test_gymnasium_and_sb3_checkers_pass_on_every_packaged_config(case: tuple[str, str]) -> None:
    """Gymnasium's checker on the env itself; SB3's checker, which wants a scalar reward, on MO-Gymnasium's
    ``LinearReward`` of it (the one wrapper plain SB3 needs)."""
    from gymnasium.utils.env_checker import check_env as gymnasium_check_env
    from mo_gymnasium.wrappers import LinearReward
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env_id, name = case
    cls = env_class(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # advice (unbounded observations, vector reward), not failures
        gymnasium_check_env(cls(config=name), skip_render_check=True)
        sb3_check_env(LinearReward(cls(config=name)), warn=False, skip_render_check=True)


def test_gymnasium_and_sb3_checkers_pass_on_discrete_pricing() -> None:
    from gymnasium.utils.env_checker import check_env as gymnasium_check_env
    from mo_gymnasium.wrappers import LinearReward
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    cls = env_class("paretochain/Pricing-v0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for name in ("dp_single_sku", "default"):
            gymnasium_check_env(cls(config=name, action={"kind": "discrete"}), skip_render_check=True)
            sb3_check_env(LinearReward(cls(config=name, action={"kind": "discrete"})), skip_render_check=True)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_plain_sb3_ppo_runs_a_few_hundred_steps_on_every_family(family: str, tmp_path: Path) -> None:
    from mo_gymnasium.wrappers import LinearReward
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import configure

    env = LinearReward(gym.make(FAMILIES[family], config="default"))
    model = PPO("MlpPolicy", env, n_steps=128, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.set_logger(configure(str(tmp_path), []))  # SB3's default logger leaves a folder in the system temp dir
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(np.asarray(action).astype(env.action_space.dtype))


@pytest.mark.slow
@pytest.mark.parametrize("family", ["warehouse", "pricing", "dispatch"])
def test_the_morl_baselines_envelope_example_trains_on_every_family(family: str) -> None:
    pytest.importorskip("morl_baselines", reason="MORL-Baselines is not installed (pip install 'paretochain[morl]')")
    spec = importlib.util.spec_from_file_location("morl_baselines_envelope", EXAMPLES / "morl_baselines_envelope.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    agent = example.train_envelope(family, total_timesteps=60)
    assert agent.global_step == 60
    k = agent.reward_dim
    returns = example.evaluate(agent, family, np.full(k, 1.0 / k))
    assert returns.shape == (k,) and np.isfinite(returns).all()


# --------------------------------------------------------------------------- what an action outside the mask does


def _forbidden(mask: np.ndarray) -> int:
    return int(np.flatnonzero(~mask)[0])


def test_the_invalid_action_mode_must_be_fallback_or_raise() -> None:
    with pytest.raises(ConfigError, match="invalid_action"):
        gym.make("paretochain/Pricing-v0", invalid_action="ignore")
    with pytest.raises(ConfigError, match="invalid_action"):
        make_vec("paretochain/Pricing-v0", 2, invalid_action="clip")
    assert gym.make("paretochain/Pricing-v0").unwrapped.invalid_action == "fallback"
    assert make_vec("paretochain/Pricing-v0", 2).invalid_action == "raise"


def test_a_forbidden_dispatch_move_waits_instead_and_is_counted() -> None:
    lenient = env_class("paretochain/Dispatch-v0")(config="default")
    strict = env_class("paretochain/Dispatch-v0")(config="default", invalid_action="raise")
    _, info = lenient.reset(seed=3)
    strict.reset(seed=3)
    mask = info["action_mask"]
    wait = lenient.core.max_orders + 1
    assert mask[wait]  # orders are open at the start: waiting is allowed
    with pytest.raises(ActionError, match="not allowed by its action mask"):
        strict.step(_forbidden(mask))
    got = lenient.step(_forbidden(mask))
    expected = strict.step(wait)
    assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert got[4]["actions_replaced"] == 1.0 and expected[4]["actions_replaced"] == 0.0


def test_dispatch_falls_back_to_the_depot_where_waiting_is_not_allowed() -> None:
    core = env_class("paretochain/Dispatch-v0")(config="default").core
    masks = torch.ones(2, core.max_orders + 2, dtype=torch.bool)
    masks[1, core.max_orders + 1] = False
    fallback = core.fallback_actions(torch.zeros(2, dtype=torch.int64), masks)
    assert fallback.tolist() == [core.max_orders + 1, core.max_orders]


def test_a_price_below_the_floor_becomes_the_lowest_allowed_level_and_is_counted() -> None:
    lenient = gym.make("paretochain/Pricing-v0", config="default")
    strict = gym.make("paretochain/Pricing-v0", config="default", invalid_action="raise")
    _, info = lenient.reset(seed=0)
    strict.reset(seed=0)
    n = int(lenient.action_space.nvec[0])
    marketplace = info["action_mask"][n : 2 * n]  # SKU 0 on the marketplace: the floor masks the low prices
    lowest_allowed = int(np.flatnonzero(marketplace)[0])
    assert lowest_allowed > 0
    got = lenient.step(np.array([4, 0, 4, 4]))
    expected = strict.step(np.array([4, lowest_allowed, 4, 4]))
    assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert got[4]["actions_replaced"] == 1.0
    assert lenient.unwrapped.core.state.price_index[0, 0, 1] == lowest_allowed


def test_a_channel_holding_its_prices_keeps_them_whatever_the_lenient_action_says() -> None:
    env = gym.make("paretochain/Pricing-v0", config="multichannel")
    _, info = env.reset(seed=0)
    space = env.action_space
    offsets = np.concatenate([[0], np.cumsum(space.nvec)[:-1]])
    allowed = np.array([int(np.flatnonzero(info["action_mask"][o : o + n])[-1]) for o, n in zip(offsets, space.nvec)])
    _, _, _, _, info = env.step(allowed)  # period 0: every channel may change its prices
    held = env.unwrapped.core.state.price_index[0, :, 2].clone()  # the stores hold their prices in period 1
    asked = allowed.copy()
    stores = [sku * 3 + 2 for sku in range(env.unwrapped.core.num_skus)]
    asked[stores] = (held.numpy() + 1) % int(space.nvec[0])  # every store price changed: all forbidden
    _, _, _, _, info = env.step(asked)
    assert info["actions_replaced"] == len(stores)
    assert torch.equal(env.unwrapped.core.state.price_index[0, :, 2], held)


def test_allowed_actions_are_never_counted_as_replaced() -> None:
    env = gym.make("paretochain/Pricing-v0", config="multichannel", horizon=6)
    _, info = env.reset(seed=0)
    space = env.action_space
    space.seed(0)
    for _ in range(6):
        action = space.sample(mask=_mask_tuple(info["action_mask"], space.nvec))
        *_, info = env.step(action)
        assert info["actions_replaced"] == 0.0


def _mask_tuple(flat: np.ndarray, nvec: np.ndarray) -> tuple[np.ndarray, ...]:
    """A flat MultiDiscrete mask as the per-dimension int8 masks ``MultiDiscrete.sample`` takes."""
    return tuple(part.astype(np.int8) for part in np.split(flat, np.cumsum(nvec)[:-1]))


def test_box_actions_outside_the_bounds_are_clipped_and_counted_leniently_and_refused_strictly() -> None:
    lenient = gym.make("paretochain/Warehouse-v0", config="backorder_box")
    strict = gym.make("paretochain/Warehouse-v0", config="backorder_box", invalid_action="raise")
    lenient.reset(seed=0)
    strict.reset(seed=0)
    high = lenient.action_space.high
    with pytest.raises(ActionError, match=r"action entry \[0\] = 48.5 is outside"):
        strict.step(np.array([high[0] + 0.5, 0.0], dtype=np.float32))
    got = lenient.step(np.array([high[0] + 0.5, -1.0], dtype=np.float32))
    expected = strict.step(np.array([high[0], 0.0], dtype=np.float32))
    assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert got[4]["actions_replaced"] == 2.0 and expected[4]["actions_replaced"] == 0.0


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_box_actions_that_are_not_finite_are_refused_in_lenient_mode_too(value: float) -> None:
    env = gym.make("paretochain/Warehouse-v0", config="backorder_box")
    env.reset(seed=0)
    with pytest.raises(ActionError, match="not finite"):
        env.step(np.array([value, 0.0], dtype=np.float32))


def test_actions_outside_the_space_are_refused_in_lenient_mode_too() -> None:
    env = gym.make("paretochain/Pricing-v0", config="default")
    env.reset(seed=0)
    with pytest.raises(ActionError, match="outside"):
        env.step(np.array([4, 9, 4, 4]))
    dispatch = gym.make("paretochain/Dispatch-v0")
    dispatch.reset(seed=0)
    with pytest.raises(ActionError, match="outside"):
        dispatch.step(dispatch.action_space.n)


@settings(max_examples=25, deadline=None)
@given(period=st.integers(0, 5), seed=st.integers(0, 2**31 - 1))
def test_the_fallback_of_any_action_in_the_space_is_allowed_and_keeps_every_allowed_choice(
    period: int, seed: int
) -> None:
    from paretochain.envs.pricing import PricingConfig, PricingCore

    core = PricingCore(PricingConfig.load("multichannel", horizon=8), num_envs=3)
    core.reset(seeds=[0, 1, 2])
    rng = np.random.default_rng(seed)
    nvec = core.single_action_space.nvec
    for _ in range(period):
        replaced, _ = core.replace_disallowed(torch.as_tensor(rng.integers(0, nvec, size=(3, len(nvec)))))
        core.step(replaced)
    asked = torch.as_tensor(rng.integers(0, nvec, size=(3, len(nvec))))
    masks = core.action_masks()
    offsets = torch.as_tensor(np.concatenate([[0], np.cumsum(nvec)[:-1]]))
    allowed_before = masks.gather(1, asked + offsets)
    replaced, count = core.replace_disallowed(asked)
    core.check_action(replaced)  # the masks allow every replacement
    assert torch.equal(replaced[allowed_before], asked[allowed_before])
    assert count.tolist() == (~allowed_before).sum(1).float().tolist()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), steps=st.integers(0, 30))
def test_the_dispatch_fallback_is_always_an_allowed_move(seed: int, steps: int) -> None:
    from paretochain.envs.dispatch import DispatchConfig, DispatchCore

    core = DispatchCore(DispatchConfig.load("default"), num_envs=4)
    core.reset(seeds=range(4))
    rng = np.random.default_rng(seed)
    n = core.max_orders + 2
    for _ in range(steps + 1):
        asked = torch.as_tensor(rng.integers(0, n, size=4))
        replaced, count = core.replace_disallowed(asked)
        core.check_action(replaced)
        assert count.tolist() == (replaced != asked).float().tolist()
        out = core.step(replaced)
        if bool((out.terminated | out.truncated).any()):
            break


def test_the_batched_view_in_fallback_mode_replaces_and_counts_per_env() -> None:
    strict = make_vec("paretochain/Pricing-v0", 3, config="default")
    lenient = make_vec("paretochain/Pricing-v0", 3, config="default", invalid_action="fallback")
    strict.reset(seed=0)
    lenient.reset(seed=0)
    asked = np.full((3, 4), 4)
    asked[1, 1] = 0  # env 1: the marketplace below its floor
    with pytest.raises(ActionError, match="env 1"):
        strict.step(asked)
    obs, reward, _, _, infos = lenient.step(asked)
    assert infos["actions_replaced"].tolist() == [0.0, 1.0, 0.0]
    expected = asked.copy()
    expected[1, 1] = int(np.flatnonzero(strict.action_masks()[1, 7:14])[0])
    strict.reset(seed=0)
    obs_s, reward_s, *_ = strict.step(expected)
    assert np.array_equal(obs, obs_s) and np.array_equal(reward, reward_s)


def test_the_batched_view_in_fallback_mode_clips_box_actions_and_counts_only_those_outside() -> None:
    vec = make_vec("paretochain/Warehouse-v0", 2, config="backorder_box", invalid_action="fallback")
    strict = make_vec("paretochain/Warehouse-v0", 2, config="backorder_box")
    vec.reset(seed=0)
    strict.reset(seed=0)
    high = vec.single_action_space.high
    asked = np.array([[0.1, 2.3], [high[0] + 0.5, -1.0]], dtype=np.float64)
    with pytest.raises(ActionError, match="env 1"):
        strict.step(asked)
    obs, reward, _, _, infos = vec.step(asked)
    assert infos["actions_replaced"].tolist() == [0.0, 2.0]
    strict.reset(seed=0)
    obs_s, reward_s, *_ = strict.step(np.clip(asked, 0.0, high))
    assert np.array_equal(obs, obs_s) and np.array_equal(reward, reward_s)
    with pytest.raises(ActionError, match=r"env 0 at index \[0\]: nan is not finite"):
        vec.step(np.array([[np.nan, 0.0], [0.0, 0.0]]))


def test_gymnasium_make_vec_gives_mask_unaware_clients_the_lenient_default() -> None:
    vec = gym.make_vec("paretochain/Dispatch-v0", num_envs=2, vectorization_mode="vector_entry_point")
    assert vec.unwrapped.invalid_action == "fallback"
    vec.reset(seed=0)
    _, _, _, _, infos = vec.step(vec.action_space.sample())
    assert infos["actions_replaced"].shape == (2,)


def test_the_project_agents_path_stays_strict() -> None:
    """The batched view our agents, baselines and evaluation use raises on a masked action."""
    env = make_vec("paretochain/Dispatch-v0", 2, tensors=True)
    env.reset(seed=0)
    masks = env.action_masks()
    forbidden = torch.stack([(~row).nonzero()[0, 0] for row in masks])
    with pytest.raises(ActionError, match="not allowed by its action mask"):
        env.step(forbidden)


# --------------------------------------------------------------------------- a fresh info and mask every step


@pytest.mark.parametrize("config", ["dp_single_sku", "default", "multichannel"])
def test_every_step_returns_a_new_info_with_its_own_mask_array(config: str) -> None:
    env = gym.make("paretochain/Pricing-v0", config=config, horizon=4)
    _, info = env.reset(seed=0)
    seen = [info]
    env.action_space.seed(0)
    for _ in range(3):
        *_, info = env.step(env.action_space.sample())
        seen.append(info)
    for i, a in enumerate(seen):
        for b in seen[i + 1 :]:
            assert a is not b and not np.shares_memory(a["action_mask"], b["action_mask"])
    mask = seen[-1]["action_mask"]
    mask[:] = False  # writable, and the env does not care
    assert env.unwrapped.action_masks().any()


def test_the_batched_view_returns_mask_arrays_of_its_own() -> None:
    vec = make_vec("paretochain/Pricing-v0", 2, config="default")
    _, infos = vec.reset(seed=0)
    first = infos["action_mask"]
    first[:] = False  # the caller's array: the env's masks are unchanged
    assert vec.action_masks().any()
    _, _, _, _, infos = vec.step(np.full((2, 4), 4))
    assert not np.shares_memory(first, infos["action_mask"]) and infos["action_mask"].any()


# --------------------------------------------------------------------------- Pricing's Discrete action kind


def _joint(env: Any, choices: np.ndarray) -> int:
    return int(np.ravel_multi_index(tuple(choices), env.unwrapped.core.ladder_nvec))


def test_a_discrete_pricing_episode_equals_the_multidiscrete_episode_of_the_same_choices() -> None:
    ladder = gym.make("paretochain/Pricing-v0", config="default", invalid_action="raise")
    joint = gym.make("paretochain/Pricing-v0", config="default", action={"kind": "discrete"}, invalid_action="raise")
    assert isinstance(joint.action_space, gym.spaces.Discrete) and joint.action_space.n == 7**4
    _, info_l = ladder.reset(seed=5)
    _, info_j = joint.reset(seed=5)
    ladder.action_space.seed(0)
    for _ in range(ladder.unwrapped.core.horizon):
        choices = ladder.action_space.sample(mask=_mask_tuple(info_l["action_mask"], ladder.action_space.nvec))
        assert info_j["action_mask"][_joint(joint, choices)]
        a = ladder.step(choices)
        b = joint.step(_joint(joint, choices))
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2:4] == b[2:4]
        info_l, info_j = a[4], b[4]


def test_discrete_pricing_masks_allow_exactly_the_joint_indices_whose_choices_are_all_allowed() -> None:
    config = {
        "num_skus": 1,
        "horizon": 6,
        "channels": [{"name": "web"}, {"name": "stores", "change_every": 3, "price_floor": 0.8}],
        "action": {"kind": "discrete", "price_ladder": [0.6, 0.8, 1.0, 1.2]},
    }
    env = gym.make("paretochain/Pricing-v0", config=config)
    _, info = env.reset(seed=0)
    core = env.unwrapped.core
    for _ in range(4):
        ladders = core._ladder_masks()[0].numpy()
        per_dim = np.split(ladders, np.cumsum(core.ladder_nvec)[:-1])
        expected = np.array(
            [
                all(per_dim[d][c] for d, c in enumerate(np.unravel_index(i, core.ladder_nvec)))
                for i in range(env.action_space.n)
            ]
        )
        assert np.array_equal(info["action_mask"], expected)
        *_, info = env.step(int(np.flatnonzero(info["action_mask"])[-1]))


def test_a_forbidden_joint_index_keeps_its_allowed_choices_and_moves_the_others_to_the_nearest_allowed() -> None:
    config = {"channels": [{"name": "web"}, {"name": "market", "price_floor": 0.8}], "action": {"kind": "discrete"}}
    env = gym.make("paretochain/Pricing-v0", config=config)
    env.reset(seed=0)
    core = env.unwrapped.core
    asked = _joint(env, np.array([5, 0]))  # web at 1.1 (allowed), the marketplace at 0.6 (below its floor)
    *_, info = env.step(asked)
    assert info["actions_replaced"] == 1.0
    assert core.state.price_index[0, 0].tolist() == [5, 2]  # 0.8: the lowest level at the floor


def test_a_joint_discrete_action_space_too_large_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError, match=r"action\.kind 'ladder'"):
        gym.make("paretochain/Pricing-v0", config="multichannel", action={"kind": "discrete"})


def test_dp_single_sku_as_discrete_steps_in_both_views() -> None:
    env = gym.make("paretochain/Pricing-v0", config="dp_single_sku", action={"kind": "discrete"})
    assert env.action_space == gym.spaces.Discrete(7)
    env.reset(seed=0)
    _, reward, *_ = env.step(3)
    vec = make_vec("paretochain/Pricing-v0", 4, config="dp_single_sku", action={"kind": "discrete"})
    vec.reset(seed=0)
    _, rewards, *_ = vec.step(np.array([3, 3, 3, 3]))
    assert np.array_equal(rewards[0], reward)


# --------------------------------------------------------------------------- actions that are not numbers


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("action", [None, "1", b"1", ["a", "b"], [None, None], {"price": 1}])
def test_actions_that_are_not_numbers_raise_one_action_error(family: str, action: Any) -> None:
    env = gym.make(FAMILIES[family])
    env.reset(seed=0)
    with pytest.raises(ActionError, match="action must be a number"):
        env.step(action)
    vec = make_vec(FAMILIES[family], 2)
    vec.reset(seed=0)
    with pytest.raises(ActionError, match="action must be a number"):
        vec.step(action)


def test_the_package_data_globs_of_pyproject_cover_the_shipped_instances_and_their_readme() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["paretochain.configs"]
    configs = packaged_configs_dir()
    packaged = {path for pattern in patterns for path in configs.glob(pattern)}
    shipped = [path for path in (configs / "dispatch" / "instances").rglob("*") if path.is_file()]
    assert len(shipped) == 3 and set(shipped) <= packaged


@pytest.mark.parametrize("config", ["dp_single_sku", "default"])
def test_the_pricing_baselines_play_the_same_episodes_with_discrete_actions(config: str) -> None:
    from paretochain.agents.baselines.pricing import DynamicProgrammingPolicy, MarkdownPolicy, MyopicPolicy
    from paretochain.evaluate.rollout import rollout

    seeds = range(6)
    ladder = make_vec("paretochain/Pricing-v0", len(seeds), config=config, tensors=True)
    joint = make_vec("paretochain/Pricing-v0", len(seeds), config=config, tensors=True, action={"kind": "discrete"})
    makers = [MyopicPolicy, lambda env: MarkdownPolicy(env, 0.3, 0.8)]
    if config == "dp_single_sku":
        makers.append(DynamicProgrammingPolicy)
    for make in makers:
        expected = rollout(ladder, make(ladder), seeds).returns
        got = rollout(joint, make(joint), seeds).returns  # the strict view: a forbidden index would raise
        assert torch.equal(torch.as_tensor(got), torch.as_tensor(expected))
