"""The Pricing environment family: dynamics, masks, parity, determinism, configs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import paretochain  # noqa: F401  (registers the environments)
from paretochain.envs import make_vec
from paretochain.envs.pricing import PricingConfig, PricingCore
from paretochain.errors import ActionError, ConfigError

PACKAGED = ["default", "multichannel", "constant_elasticity", "dp_single_sku", "dp_two_channel"]


def random_masked_actions(core: PricingCore, rng: np.random.Generator) -> torch.Tensor:
    """Uniformly random actions inside the current masks, ``(B, D)``."""
    nvec = core.single_action_space.nvec
    masks = core.action_masks().cpu().numpy()
    cols, start = [], 0
    for n in nvec:
        block = masks[:, start : start + n]
        choice = [rng.choice(np.flatnonzero(row)) for row in block]
        cols.append(choice)
        start += n
    return torch.as_tensor(np.array(cols).T, dtype=torch.int64)


@pytest.mark.parametrize("name", PACKAGED)
def test_every_packaged_config_plays_a_full_season_with_finite_vector_rewards(name: str) -> None:
    env = gym.make("paretochain/Pricing-v0", config=name)
    obs, info = env.reset(seed=3)
    assert obs.shape == env.observation_space.shape
    steps, total = 0, np.zeros(env.unwrapped.reward_dim)
    terminated = False
    while not terminated:
        mask = info["action_mask"]
        parts = np.split(mask.astype(np.int8), np.cumsum(env.action_space.nvec)[:-1])
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample(mask=tuple(parts)))
        assert reward.dtype == np.float32 and reward.shape == (env.unwrapped.reward_dim,)
        assert not truncated  # a finite season ends in a terminal state, never by truncation
        assert env.observation_space.contains(obs)
        total += reward
        steps += 1
    assert steps == env.unwrapped.core.horizon
    assert np.isfinite(total).all()
    assert {"gross_margin", "satisfaction", "leftover_value", "sales_units"} <= set(info)


def test_objectives_are_declared_with_units_and_reference_points() -> None:
    env = gym.make("paretochain/Pricing-v0")
    objectives = env.unwrapped.objectives
    assert objectives.names == ["gross_margin", "customer_satisfaction", "leftover_inventory"]
    assert all(o.unit and o.description for o in objectives)
    assert objectives.reference_point[0] < 0 and objectives.reference_point[2] < 0
    assert env.unwrapped.reward_space.shape == (3,)


@settings(max_examples=25, deadline=None)
@given(
    stock=st.integers(min_value=0, max_value=60),
    asked=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=4),
)
def test_shared_stock_allocation_sells_min_of_stock_and_demand_without_exceeding_any_channel(
    stock: int, asked: list[int]
) -> None:
    s = torch.tensor([[float(stock)]])
    a = torch.tensor([[asked]], dtype=torch.float32)
    sales = PricingCore.allocate(s, a)
    assert float(sales.sum()) == min(stock, sum(asked))
    assert bool((sales >= 0).all()) and bool((sales <= a).all())
    assert bool((sales == sales.round()).all())
    if sum(asked) > stock:
        fair = a * stock / sum(asked)
        assert bool(((sales - fair).abs() < 1.0 + 1e-5).all())


def test_short_stock_goes_in_proportion_and_the_rounding_remainder_to_the_largest_fractions() -> None:
    sales = PricingCore.allocate(torch.tensor([[7.0], [10.0]]), torch.tensor([[[5.0, 5.0, 0.0]], [[2.0, 6.0, 7.0]]]))
    assert sales[0, 0].tolist() == [4.0, 3.0, 0.0]  # tie: the lower channel first
    assert sales[1, 0].tolist() == [1.0, 4.0, 5.0]  # shares 1.33, 4, 4.67


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31), stock=st.lists(st.integers(0, 40), min_size=5, max_size=5))
def test_inventory_is_conserved_across_channels_over_a_season(seed: int, stock: list[int]) -> None:
    cfg = PricingConfig.load("multichannel", initial_inventory=stock, horizon=12)
    core = PricingCore(cfg, num_envs=3)
    core.reset(seeds=[seed, seed + 1, seed + 2])
    rng = np.random.default_rng(seed)
    ordered_total = torch.zeros(3, 5)
    for _ in range(cfg.horizon):
        before = core.state.on_hand.clone() + core.state.pipeline.sum(-1)
        action = random_masked_actions(core, rng)
        out = core.step(action)
        _, _, _, orders = core.decode_action(action)
        ordered_total += orders
        after = core.state.on_hand + core.state.pipeline.sum(-1)
        sold = core.state.sales.sum(-1)
        assert torch.equal(before + orders - sold, after)
        assert bool((core.state.sales <= core.state.last_demand).all())
        assert bool((core.state.on_hand >= 0).all())
        assert torch.allclose(out.kpis["lost_units"], (core.state.last_demand - core.state.sales).sum((1, 2)))


def test_prices_stay_on_the_ladder_inside_the_floor_and_the_store_holds_between_repricings() -> None:
    cfg = PricingConfig.load("multichannel", horizon=16)
    core = PricingCore(cfg, num_envs=8)
    core.reset(seeds=range(8))
    rng = np.random.default_rng(0)
    ladder = torch.as_tensor(core.price_ladder, dtype=torch.float32)
    history = []
    for _ in range(cfg.horizon):
        core.step(random_masked_actions(core, rng))
        history.append(core.state.price.clone())
    prices = torch.stack(history, dim=1)  # (B, T, K, C)
    on_ladder = (prices.unsqueeze(-1) == ladder).any(-1)
    assert bool(on_ladder.all())
    assert bool((prices[..., 1] >= 0.85 - 1e-6).all())  # marketplace floor
    stores = prices[..., 2]
    for start in range(0, cfg.horizon, 4):
        assert torch.equal(stores[:, start : start + 4], stores[:, start : start + 1].expand(-1, 4, -1))
    assert not torch.equal(stores[:, 0], stores[:, 4])  # but they do reprice


def test_an_action_outside_the_mask_is_refused_naming_the_env() -> None:
    env = gym.make("paretochain/Pricing-v0", config="default", invalid_action="raise")
    env.reset(seed=0)
    action = np.array([4, 0, 4, 4])  # SKU 0 on the marketplace at 0.6 < floor 0.8
    with pytest.raises(ActionError, match="action mask"):
        env.step(action)
    with pytest.raises(ActionError, match="outside"):
        env.step(np.array([4, 9, 4, 4]))


def test_single_env_and_batched_env_play_identical_episodes() -> None:
    seeds = [11, 12, 13, 14]
    vec = make_vec("paretochain/Pricing-v0", len(seeds), config="multichannel", tensors=True, horizon=10)
    vec.core.reset(seeds=seeds)
    singles = [gym.make("paretochain/Pricing-v0", config="multichannel", horizon=10) for _ in seeds]
    for env, seed in zip(singles, seeds):
        env.reset(seed=seed)
    rng = np.random.default_rng(5)
    for _ in range(10):
        action = random_masked_actions(vec.core, rng)
        out = vec.core.step(action)
        for i, env in enumerate(singles):
            obs, reward, _, _, info = env.step(action[i].numpy())
            assert np.array_equal(obs, out.obs[i].numpy())
            assert np.array_equal(reward, out.reward[i].numpy())
            assert info["sales_units"] == float(out.kpis["sales_units"][i])


def test_same_seed_gives_the_same_season_and_another_seed_another() -> None:
    def season(seed: int) -> np.ndarray:
        env = gym.make("paretochain/Pricing-v0", config="default")
        env.reset(seed=seed)
        rewards = [env.step(np.array([4, 4, 4, 4]))[1] for _ in range(env.unwrapped.core.horizon)]
        return np.array(rewards)

    assert np.array_equal(season(7), season(7))
    assert not np.array_equal(season(7), season(8))


def test_envs_stepped_in_several_threads_at_once_play_the_seasons_of_the_main_thread() -> None:
    def season(seed: int) -> np.ndarray:
        env = gym.make("paretochain/Pricing-v0", config="default")
        obs, _ = env.reset(seed=seed)
        rows = [obs]
        for _ in range(env.unwrapped.core.horizon):
            obs, reward, *_ = env.step(np.array([4, 4, 4, 4]))
            rows += [obs, reward]
            assert not torch.is_inference_mode_enabled()  # the step left inference mode behind it
        return np.concatenate(rows)

    seeds = list(range(6))
    expected = [season(seed) for seed in seeds]
    with ThreadPoolExecutor(max_workers=3) as pool:
        threaded = list(pool.map(season, seeds))
    for seed, a, b in zip(seeds, expected, threaded):
        assert np.array_equal(a, b), f"seed {seed}"


class CopiedInfo(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Copies info arrays: MO-Gymnasium's ``LinearReward`` puts its own weight array in every info,
    which the checker reports as data shared between calls."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def reset(self, **kwargs):  # type: ignore[no-untyped-def]
        obs, info = self.env.reset(**kwargs)
        return obs, {k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in info.items()}

    def step(self, action):  # type: ignore[no-untyped-def]
        obs, reward, terminated, truncated, info = self.env.step(action)
        return (
            obs,
            reward,
            terminated,
            truncated,
            {k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in info.items()},
        )


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("dp_single_sku", {}),
        ("constant_elasticity", {}),
        (
            "default",
            {"action": {"kind": "box"}},
        ),  # the checker samples unmasked actions: Box carries the floor in its bounds
        ("multichannel", {"action": {"kind": "box"}}),
    ],
)
def test_gymnasium_env_checker_passes_on_the_linearly_scalarised_env(name: str, overrides: dict) -> None:
    from gymnasium.utils.env_checker import check_env
    from mo_gymnasium.wrappers import LinearReward

    base = gym.make("paretochain/Pricing-v0", config=name, **overrides)
    weight = np.ones(base.unwrapped.reward_dim, dtype=np.float32)
    env = CopiedInfo(LinearReward(base, weight=weight))
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    env.action_space.seed(0)
    _, reward, _, _, info = env.step(env.action_space.sample())
    assert np.ndim(reward) == 0
    assert float(reward) == pytest.approx(float(info["vector_reward"] @ weight), rel=1e-5)


def test_box_actions_respect_the_channel_floor_and_the_store_hold() -> None:
    cfg = PricingConfig.load("multichannel", action={"kind": "box", "box_low": 0.5, "box_high": 1.5}, horizon=8)
    core = PricingCore(cfg, num_envs=2)
    low = core.single_action_space.low
    assert low[1] == pytest.approx(0.85) and low[0] == pytest.approx(0.5)
    core.reset(seeds=[0, 1])
    space = core.single_action_space
    a0 = torch.as_tensor(np.stack([space.low, space.low]))
    core.step(a0)
    stores_before = core.state.price[..., 2].clone()
    a1 = torch.as_tensor(np.stack([space.high, space.high]))
    core.step(a1)
    assert torch.equal(core.state.price[..., 2], stores_before)  # period 1: stores hold
    assert torch.allclose(core.state.price[..., 0], torch.full((2, 5), 1.5))


def test_leftover_inventory_is_charged_once_at_its_cost_value_in_the_last_period() -> None:
    env = gym.make("paretochain/Pricing-v0", config="dp_single_sku")
    env.reset(seed=1)
    rewards = [env.step(np.array([6]))[1] for _ in range(8)]  # highest price
    left = env.unwrapped.core.state.on_hand[0, 0].item()
    assert all(r[2] == 0 for r in rewards[:-1])
    assert rewards[-1][2] == pytest.approx(-4.0 * left)


def test_satisfaction_charges_a_price_jump_relative_to_list_price() -> None:
    cfg = PricingConfig.load(
        "constant_elasticity", satisfaction={"jump_weight": 1.0, "gap_weight": 1.0, "stockout_weight": 1.0}
    )
    env = gym.make("paretochain/Pricing-v0", config=cfg)
    env.reset(seed=0)
    index = int(np.argmin(np.abs(env.unwrapped.core.price_ladder - 0.8)))
    _, reward, _, _, info = env.step(np.array([index]))
    assert info["price_jump"] == pytest.approx(0.2, abs=1e-6)
    assert info["satisfaction"] == pytest.approx(0.8, abs=1e-6)
    assert reward[1] == pytest.approx(0.8 / cfg.horizon, abs=1e-6)
    _, _, _, _, info = env.step(np.array([index]))
    assert info["satisfaction"] == pytest.approx(1.0)


def test_constant_elasticity_mean_demand_is_rate_times_price_ratio_to_minus_e() -> None:
    core = PricingCore(PricingConfig.load("constant_elasticity"), num_envs=1)
    ratio = torch.tensor([[[0.5]], [[0.8]], [[1.25]]])
    mean = core.demand.expected_demand(ratio, torch.zeros(3, dtype=torch.int64))
    assert torch.allclose(mean.flatten(), 20.0 * ratio.flatten() ** -3.0)


def test_mean_of_poisson_draws_matches_the_expected_demand() -> None:
    core = PricingCore(PricingConfig.load("default"), num_envs=4096)
    core.reset(seeds=range(4096))
    mean = core.demand.expected_demand(
        core.state.price, core.state.t, core.state.reference, core.demand.competitor_ratio(core.competitor)
    )
    draws = core.demand.sample(mean, core.step_draw())
    assert torch.allclose(draws.mean(0), mean.mean(0), rtol=0.05)
    assert torch.allclose(draws.var(0), mean.mean(0), rtol=0.15)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"channels": [{"name": "web", "commission": 1.5}]}, "commission"),
        ({"demand": {"model": "constant_elasticity", "elasticity": 0.8}}, "elasticity"),
        ({"num_skus": 3, "list_price": [1.0, 2.0]}, "list_price"),
        ({"channels": [{"name": "web", "price_floor": 2.0}]}, "price_floor"),
        ({"action": {"price_ladder": [1.0, 0.9]}}, "price_ladder"),
        ({"channels": [{"name": "web", "speed": 2}]}, "speed"),
        ({"objectives": ["gross_margin", "happiness"]}, "happiness"),
    ],
)
def test_bad_config_values_raise_one_error_naming_the_field(override: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        gym.make("paretochain/Pricing-v0", **override)


def test_ansi_and_rgb_renders_show_the_state() -> None:
    env = gym.make("paretochain/Pricing-v0", config="default", render_mode="ansi")
    env.reset(seed=0)
    env.step(np.array([4, 4, 4, 4]))
    text = env.render()
    assert "marketplace" in text and "period 1" in text
    env = gym.make("paretochain/Pricing-v0", config="default", render_mode="rgb_array")
    env.reset(seed=0)
    env.step(np.array([4, 4, 4, 4]))
    image = env.render()
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8


def test_the_season_end_is_a_terminal_state_in_both_views() -> None:
    vec = make_vec("paretochain/Pricing-v0", 4, config="dp_single_sku")
    core = vec.core
    core.reset(seeds=[0, 1, 2, 3])
    for t in range(core.horizon):
        out = core.step(torch.zeros((4, *core.single_action_space.shape), dtype=torch.int64), check=False)
        assert not bool(out.truncated.any())
        assert bool(out.terminated.all()) == (t == core.horizon - 1)
