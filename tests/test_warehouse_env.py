"""The Warehouse environment: Gymnasium contracts, dynamics invariants, parity, bad input."""

from __future__ import annotations

import gymnasium as gym
import mo_gymnasium as mo_gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import paretochain  # noqa: F401  (registers the environments)
from paretochain.envs import make_vec
from paretochain.envs.config import packaged_configs_dir
from paretochain.envs.warehouse import KPI_NAMES, WarehouseConfig, WarehouseCore
from paretochain.errors import ActionError, ConfigError

ENV_ID = "paretochain/Warehouse-v0"
SHIPPED = sorted(p.stem for p in (packaged_configs_dir() / "warehouse").glob("*.yaml"))


def test_shipped_configs_include_the_required_cases() -> None:
    assert {"lost_sales", "network_50sku", "perishable_disruptions"} <= set(SHIPPED)
    big = WarehouseConfig.load("network_50sku")
    assert big.num_skus == 50 and big.distribution_center and big.capacity is not None
    fresh = WarehouseConfig.load("perishable_disruptions")
    assert fresh.shelf_life is not None and fresh.disruptions.outage_probability > 0


class FreshWeightsLinearReward(mo_gym.wrappers.LinearReward):
    """MO-Gymnasium's LinearReward puts one weights array in every info; the checker rightly
    refuses infos that share objects, so hand out a copy (the environment is not involved)."""

    def step(self, action):
        obs, reward, term, trunc, info = super().step(action)
        info["reward_weights"] = np.array(info["reward_weights"], copy=True)
        return obs, reward, term, trunc, info


@pytest.mark.parametrize("name", SHIPPED)
def test_gymnasium_checker_passes_on_every_shipped_config_scalarised(name: str) -> None:
    env = gym.make(ENV_ID, config=name, disable_env_checker=True)
    weights = np.ones(env.unwrapped.reward_dim, dtype=np.float32) / env.unwrapped.reward_dim
    check_env(FreshWeightsLinearReward(env, weight=weights), skip_render_check=True)
    check_env(env.unwrapped, skip_render_check=True)


def test_mo_gymnasium_make_and_episode_statistics_work_on_the_env() -> None:
    env = mo_gym.make(ENV_ID, config="lost_sales", horizon=10)
    env = mo_gym.wrappers.MORecordEpisodeStatistics(env, gamma=1.0)
    env.reset(seed=1)
    env.action_space.seed(1)
    info: dict = {}
    done = False
    total = np.zeros(2)
    while not done:
        _, reward, term, trunc, info = env.step(env.action_space.sample())
        total += reward
        done = term or trunc
    assert info["episode"]["l"] == 10
    np.testing.assert_allclose(info["episode"]["r"], total, rtol=1e-5)


def test_reward_is_a_float32_vector_matching_the_declared_objectives() -> None:
    env = gym.make(ENV_ID, config="default")
    env.reset(seed=0)
    env.action_space.seed(0)
    _, reward, *_ = env.step(env.action_space.sample())
    u = env.unwrapped
    assert reward.dtype == np.float32 and reward.shape == (u.reward_dim,)
    assert u.reward_space.shape == (3,)
    assert [o.name for o in u.objectives] == ["profit", "fill_rate", "holding_cost"]
    assert all(o.direction == "maximize" and o.unit and o.description for o in u.objectives)
    assert u.objectives.reference_point.shape == (3,)


@pytest.mark.parametrize("name", SHIPPED)
def test_reward_vector_equals_the_kpi_breakdown(name: str) -> None:
    env = gym.make(ENV_ID, config=name)
    env.reset(seed=3)
    env.action_space.seed(3)
    horizon = env.unwrapped.config.horizon
    for _ in range(5):
        _, reward, _, _, info = env.step(env.action_space.sample())
        assert set(KPI_NAMES) <= set(info)
        expected = {
            "profit": info["revenue"] - info["total_cost"],
            "fill_rate": info["fill_rate"] / horizon,
            "holding_cost": -info["holding_cost"],
            "ordering_cost": -(info["purchase_cost"] + info["order_fixed_cost"]),
            "shortage_units": -(info["lost_units"] + info["backordered_units"]),
            "waste_units": -info["waste_units"],
            "total_cost": -info["total_cost"],
        }
        total = (
            info["purchase_cost"]
            + info["order_fixed_cost"]
            + info["holding_cost"]
            + info["shortage_penalty"]
            + info["waste_cost"]
            + info["overflow_cost"]
        )
        assert info["total_cost"] == pytest.approx(total, rel=1e-5, abs=1e-3)
        # float32 rounding is relative to the figures combined: profit is revenue less costs of similar size
        size = {"profit": abs(info["revenue"]) + abs(info["total_cost"])}
        for i, o in enumerate(env.unwrapped.objectives):
            tolerance = 1e-5 * size.get(o.name, abs(expected[o.name])) + 1e-4
            assert reward[i] == pytest.approx(expected[o.name], abs=tolerance)


def _random_actions(core: WarehouseCore, rng: np.random.Generator) -> torch.Tensor:
    space = core.single_action_space
    b = core.num_envs
    if isinstance(space, gym.spaces.Discrete):
        return torch.as_tensor(rng.integers(0, space.n, size=b))
    if isinstance(space, gym.spaces.MultiDiscrete):
        return torch.as_tensor(rng.integers(0, space.nvec, size=(b, *space.shape)))
    return torch.as_tensor(rng.uniform(0, space.high, size=(b, *space.shape)).astype(np.float32))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(SHIPPED),
    seed=st.integers(0, 2**31),
    steps=st.integers(1, 12),
    backorder=st.booleans(),
)
def test_stock_is_conserved_per_sku_and_node_and_never_negative(
    name: str, seed: int, steps: int, backorder: bool
) -> None:
    cfg = WarehouseConfig.load(name, unmet_demand="backorder" if backorder else "lost")
    core = WarehouseCore(cfg, num_envs=4)
    rng = np.random.default_rng(seed)
    core.reset(seeds=[seed + i for i in range(4)])
    W = core.num_warehouses
    for _ in range(steps):
        before = core.state.inventory.sum(-1).clone()
        core.step(_random_actions(core, rng))
        f = core.flows
        after_issue = before + f["received"]
        after_issue[:, :W] -= f["sold"]
        if f["shipped_out"] is not None:
            after_issue[:, W] -= f["shipped_out"]
        if f["expired"] is not None:
            after_issue -= f["expired"]
        torch.testing.assert_close(core.state.inventory.sum(-1), after_issue, rtol=0, atol=1e-3)
        assert bool((core.state.inventory >= 0).all())
        assert bool((core.state.pipeline >= 0).all())
        if not backorder:
            assert bool((core.state.backlog == 0).all())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), capacity=st.floats(20.0, 400.0))
def test_capacity_is_never_exceeded_when_overflow_is_cut(seed: int, capacity: float) -> None:
    cfg = WarehouseConfig.load("default", capacity=capacity, overflow="cut")
    core = WarehouseCore(cfg, num_envs=8)
    rng = np.random.default_rng(seed)
    core.reset(seeds=list(range(seed % 1000, seed % 1000 + 8)))
    volume = core._volume
    for _ in range(20):
        core.step(_random_actions(core, rng))
        used = (core.state.inventory.sum(-1) * volume).sum(-1)
        start = float(core._initial_stock.mul(volume).sum())
        assert bool((used <= max(capacity, start) + 1e-3).all())


def test_fill_rate_is_one_without_demand_and_lost_units_follow_stockouts() -> None:
    env = gym.make(ENV_ID, config="lost_sales", initial_inventory=0.0)
    env.reset(seed=0)
    _, _, _, _, info = env.step(0)
    assert info["sales_units"] == 0
    assert info["lost_units"] == info["demand_units"]
    assert info["fill_rate"] == (1.0 if info["demand_units"] == 0 else 0.0)
    assert info["shortage_penalty"] == pytest.approx(9.0 * info["lost_units"])


def test_order_arrives_after_the_lead_time_before_that_periods_demand() -> None:
    env = gym.make(ENV_ID, config="lost_sales", initial_inventory=0.0)
    env.reset(seed=0)
    env.step(7)  # arrives two periods later
    _, _, _, _, info1 = env.step(0)
    assert info1["sales_units"] == 0
    _, _, _, _, info2 = env.step(0)
    assert info2["sales_units"] == min(7, info2["demand_units"])


@pytest.mark.parametrize("name", SHIPPED)
def test_batched_view_matches_single_envs_over_many_seeds(name: str) -> None:
    seeds = list(range(100, 200)) if name in ("lost_sales", "default") else list(range(100, 110))
    cfg = WarehouseConfig.load(name, horizon=12)
    rng = np.random.default_rng(0)
    core = WarehouseCore(cfg, num_envs=1)
    space = core.single_action_space
    actions = [_random_actions(WarehouseCore(cfg, num_envs=len(seeds)), rng) for _ in range(12)]
    vec = make_vec(ENV_ID, len(seeds), config=cfg)
    obs_b, _ = vec.reset(seed=seeds)
    batched_obs, batched_rew = [obs_b], []
    for a in actions:
        obs_b, rew_b, *_ = vec.step(a.numpy())
        batched_obs.append(obs_b)
        batched_rew.append(rew_b)
    for i, seed in enumerate(seeds):
        env = gym.make(ENV_ID, config=cfg)
        obs, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(obs, batched_obs[0][i])
        for t, a in enumerate(actions):
            act = a[i].numpy() if not isinstance(space, gym.spaces.Discrete) else int(a[i])
            obs, rew, _, trunc, _ = env.step(act)
            np.testing.assert_array_equal(rew, batched_rew[t][i])
            if not trunc:
                np.testing.assert_array_equal(obs, batched_obs[t + 1][i])


@pytest.mark.parametrize("name", ["lost_sales", "default"])
def test_demand_drawn_for_the_whole_episode_matches_the_demand_drawn_step_by_step(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = WarehouseConfig.load(name, horizon=15)
    cached, stepped = WarehouseCore(cfg, num_envs=3), WarehouseCore(cfg, num_envs=3)
    # no cached episode for the demand site: every period's uniforms and counts are drawn in its step
    monkeypatch.setattr(stepped.demand_model._site_demand, "episode", lambda draw: None)
    assert torch.equal(cached.reset(seeds=[1, 2, 3]), stepped.reset(seeds=[1, 2, 3]))
    rng = np.random.default_rng(0)
    for t in range(2 * cfg.horizon):
        if t == cfg.horizon:
            assert torch.equal(cached.reset(), stepped.reset())
        action = _random_actions(cached, rng)
        a, b = cached.step(action), stepped.step(action)
        assert torch.equal(a.obs, b.obs) and torch.equal(a.reward, b.reward)
        assert torch.equal(a.kpis.values, b.kpis.values)
    assert cached.demand_model._counts_source is not None and stepped.demand_model._counts_source is None


def test_same_seed_gives_the_same_episode_and_another_seed_another() -> None:
    def episode(seed: int) -> np.ndarray:
        env = gym.make(ENV_ID, config="perishable_disruptions")
        env.reset(seed=seed)
        return np.array([env.step(np.full(8, 2))[1] for _ in range(30)])

    np.testing.assert_array_equal(episode(5), episode(5))
    assert not np.array_equal(episode(5), episode(6))


def test_reset_without_seed_continues_the_stream_identically_in_both_views() -> None:
    env = gym.make(ENV_ID, config="lost_sales", horizon=5)
    vec = make_vec(ENV_ID, 1, config="lost_sales", horizon=5)
    env.reset(seed=11)
    vec.reset(seed=11)
    for _ in range(3):  # three episodes; the vector view autoresets
        for _ in range(5):
            _, r1, _, trunc, _ = env.step(4)
            _, r2, _, _, _ = vec.step(np.array([4]))
            np.testing.assert_array_equal(r1, r2[0])
        assert trunc
        env.reset()


def test_vector_view_autoresets_in_the_same_step_and_reports_final_observation() -> None:
    vec = make_vec(ENV_ID, 3, config="lost_sales", horizon=4)
    vec.reset(seed=0)
    for _t in range(4):
        obs, _, _, trunc, info = vec.step(np.array([3, 3, 3]))
    assert trunc.all()
    assert info["_final_obs"].all()
    assert not np.array_equal(obs, info["final_obs"])
    assert obs[0, -1] == 0.0  # the calendar's elapsed share restarts with the new episode


def test_tensor_mode_keeps_data_on_the_device_as_tensors() -> None:
    vec = make_vec(ENV_ID, 8, config="default", tensors=True)
    obs, _ = vec.reset(seed=0)
    assert isinstance(obs, torch.Tensor) and obs.shape == (8, vec.single_observation_space.shape[0])
    obs, rew, _term, _trunc, info = vec.step(torch.zeros(8, 3, dtype=torch.int64))
    assert isinstance(rew, torch.Tensor) and rew.shape == (8, 3)
    assert isinstance(info["profit"], torch.Tensor)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batch_matches_cpu_batch() -> None:
    cpu = make_vec(ENV_ID, 64, config="default")
    gpu = make_vec(ENV_ID, 64, config="default", device="cuda", tensors=True)
    cpu.reset(seed=0)
    gpu.reset(seed=0)
    a = np.ones((64, 3), dtype=np.int64) * 2
    for _ in range(10):
        _, rc, *_ = cpu.step(a)
        _, rg, *_ = gpu.step(torch.as_tensor(a, device="cuda"))
    np.testing.assert_allclose(rc, rg.cpu().numpy(), rtol=1e-5, atol=1e-3)


def test_observation_layout_covers_the_observation_and_is_documented() -> None:
    env = gym.make(ENV_ID, config="network_50sku")
    layout = env.unwrapped.observation_layout
    assert layout.size == env.observation_space.shape[0]
    obs, _ = env.reset(seed=0)
    parts = layout.unflatten(obs)
    assert parts["on_hand"].shape == (4, 50, 1)
    assert parts["pipeline"].shape == (4, 50, layout.segments["pipeline"].shape[-1])
    assert all(seg.description for seg in layout.segments.values())
    doc = type(env.unwrapped).__doc__
    for title in (
        "## Description",
        "## Action space",
        "## Observation space",
        "## Rewards",
        "## Starting state",
        "## Episode end",
        "## Arguments",
    ):
        assert title in doc


def test_render_ansi_table_and_rgb_chart() -> None:
    env = gym.make(ENV_ID, config="default", render_mode="ansi")
    env.reset(seed=0)
    env.step(np.array([1, 2, 3]))
    text = env.render()
    assert "on_hand" in text and "W0" in text
    env = gym.make(ENV_ID, config="default", render_mode="rgb_array")
    env.reset(seed=0)
    for _ in range(5):
        env.step(np.array([1, 2, 3]))
    image = env.render()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.std() > 0  # something was drawn


# ---------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"horizon": 0}, "horizon"),
        ({"num_skus": -1}, "num_skus"),
        ({"holding_cost": -1.0}, "holding_cost"),
        ({"demand": {"seasonality_amplitude": 1.5}}, "demand.seasonality_amplitude"),
        ({"demand": {"mean": [1.0, 2.0]}}, "demand.mean"),
        ({"supplier_lead_time": {"periods": -2}}, "supplier_lead_time.periods"),
        ({"action": {"ladder": [1, 2]}}, "action.ladder"),
        ({"unmet_demand": "maybe"}, "unmet_demand"),
        ({"shelf_lives": 3}, "shelf_lives"),
        ({"objectives": ["profit", "happiness"]}, "happiness"),
    ],
)
def test_bad_config_values_raise_one_clear_error_naming_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        gym.make(ENV_ID, config="default", **overrides)
    assert field.split(".")[-1] in str(info.value)


def test_unknown_field_lists_the_allowed_fields() -> None:
    with pytest.raises(ConfigError, match=r"allowed fields here: .*horizon"):
        WarehouseConfig.load("default", horizn=5)


def test_unknown_packaged_config_names_the_available_ones() -> None:
    with pytest.raises(ConfigError, match="lost_sales"):
        gym.make(ENV_ID, config="no_such_config")


def test_malformed_yaml_config_file_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("num_skus: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        WarehouseConfig.load(path)


@pytest.mark.parametrize(
    ("name", "action"),
    [
        ("lost_sales", 21),
        ("lost_sales", -1),
        ("default", np.array([0, 1, 7])),
        ("default", np.array([0, 1])),
        ("backorder_box", np.array([1.0, 1e6], dtype=np.float32)),
        ("backorder_box", np.array([np.nan, 1.0], dtype=np.float32)),
    ],
)
def test_actions_outside_the_space_raise_action_error(name: str, action) -> None:
    env = gym.make(ENV_ID, config=name, invalid_action="raise")
    env.reset(seed=0)
    with pytest.raises(ActionError):
        env.step(action)


def test_batched_view_refuses_out_of_range_actions_naming_the_env() -> None:
    vec = make_vec(ENV_ID, 4, config="default")
    vec.reset(seed=0)
    bad = np.zeros((4, 3), dtype=np.int64)
    bad[2, 1] = 99
    with pytest.raises(ActionError, match="env 2"):
        vec.step(bad)


def test_stepping_past_the_horizon_without_reset_is_an_error() -> None:
    core = WarehouseCore(WarehouseConfig.load("lost_sales", horizon=2), num_envs=1)
    core.reset(seeds=[0])
    core.step(torch.tensor([1]))
    core.step(torch.tensor([1]))
    with pytest.raises(RuntimeError, match="reset"):
        core.step(torch.tensor([1]))


@pytest.mark.parametrize("observe_horizon", [True, False])
def test_calendar_shows_the_elapsed_share_of_the_horizon_only_when_asked(observe_horizon: bool) -> None:
    vec = make_vec(ENV_ID, 2, config="lost_sales", horizon=10, observe_horizon=observe_horizon)
    elapsed = vec.core.observation_layout.segments["calendar"].stop - 1
    obs, _ = vec.reset(seed=0)
    seen = [obs[:, elapsed].copy()]
    for _ in range(4):
        obs, *_ = vec.step(np.array([3, 3]))
        seen.append(obs[:, elapsed].copy())
    expected = np.arange(5, dtype=np.float32) / 10 if observe_horizon else np.zeros(5, dtype=np.float32)
    np.testing.assert_allclose(np.stack(seen)[:, 0], expected, rtol=1e-6)


def test_lost_sales_config_hides_the_horizon_from_the_policy() -> None:
    assert WarehouseConfig.load("lost_sales").observe_horizon is False
    assert WarehouseConfig.load("default").observe_horizon is True


def test_single_env_steps_the_current_contents_of_a_reused_action_array() -> None:
    # the env keeps the batches of actions it has seen; an array changed in place must not reuse a stale one
    reused, fresh = gym.make(ENV_ID, config="default"), gym.make(ENV_ID, config="default")
    reused.reset(seed=3)
    fresh.reset(seed=3)
    action = np.zeros(reused.action_space.shape, dtype=np.int64)
    for choices in ([0, 1, 2], [6, 6, 6], [0, 1, 2], [3, 0, 5], [6, 6, 6]):
        action[:] = choices
        out_reused = reused.step(action)
        out_fresh = fresh.step(np.array(choices, dtype=np.int64))
        np.testing.assert_array_equal(out_reused[0], out_fresh[0])
        np.testing.assert_array_equal(out_reused[1], out_fresh[1])
        assert out_reused[4]["ordered_units"] == out_fresh[4]["ordered_units"]


@pytest.mark.parametrize("config", ["network_50sku", "network_50sku_backorder", "perishable_disruptions", "default"])
def test_the_profit_per_sku_sums_to_the_steps_profit(config: str) -> None:
    overrides: dict[str, object] = {}
    if config.startswith("network_50sku"):
        overrides = {"num_skus": 4, "unmet_demand": "backorder" if config.endswith("backorder") else "lost"}
        config = "network_50sku"
    cfg = WarehouseConfig.load(config, **overrides)
    env = make_vec(ENV_ID, 3, config=cfg, tensors=True, check_actions=False)
    core = env.core
    core.reset(seeds=[4, 5, 6])
    generator = torch.Generator().manual_seed(0)
    space = core.single_action_space
    totals = []
    for _ in range(15):
        if hasattr(space, "nvec"):
            action = torch.randint(0, int(space.nvec.max()), (3, len(space.nvec)), generator=generator)
        else:
            action = torch.rand((3, *space.shape), generator=generator) * torch.as_tensor(space.high)
        out = core.step(action, check=False)
        per_sku = core.sku_profit()
        assert per_sku.shape == (3, core.num_skus)
        totals.append(float(out.kpis["profit"].abs().sum()))
        assert torch.allclose(per_sku.sum(1), out.kpis["profit"], rtol=1e-4, atol=1e-2)
    assert max(totals) > 0


def test_the_profit_per_sku_is_refused_where_overflow_is_charged_per_node() -> None:
    core = make_vec(ENV_ID, 2, config="backorder_box", tensors=True, check_actions=False).core
    assert core.config.overflow == "charge"
    core.reset(seeds=[1, 2])
    core.step(torch.zeros((2, *core.single_action_space.shape)), check=False)
    with pytest.raises(ValueError, match="overflow: charge"):
        core.sku_profit()
