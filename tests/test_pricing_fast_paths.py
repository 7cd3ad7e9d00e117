"""The Pricing core's fast paths give exactly what the direct computations give.

Large batches search a short head of the count grid first, the competitor's season
is drawn at reset, ladder prices read their demand terms from tables, actions are
checked with one lookup, masks are computed once per period and the rationing is
skipped when the stock suffices. Each test pins one of these to the computation it
replaces.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import paretochain  # noqa: F401  (registers the environments)
from paretochain.envs import _rng
from paretochain.envs.core import BatchedCore
from paretochain.envs.pricing import PricingConfig, PricingCore
from paretochain.envs.pricing import core as core_module
from paretochain.errors import ActionError


def masked_actions(core: PricingCore, rng: np.random.Generator) -> torch.Tensor:
    """Uniformly random ladder actions inside the current masks, ``(B, D)``."""
    masks = core.action_masks().numpy()
    cols, start = [], 0
    for n in core.single_action_space.nvec:
        cols.append([rng.choice(np.flatnonzero(row)) for row in masks[:, start : start + n]])
        start += n
    return torch.as_tensor(np.array(cols).T, dtype=torch.int64)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31), scale=st.floats(0.05, 1.0))
def test_head_search_of_a_large_batch_gives_the_counts_of_the_full_grid(seed: int, scale: float) -> None:
    core = PricingCore(PricingConfig.load("default"), num_envs=2048)
    demand = core.demand
    assert demand.head_size < demand.grid_size
    generator = torch.Generator().manual_seed(seed)
    mean = torch.rand((2048, 2, 2), generator=generator) * (scale * demand.max_mean)
    keys = torch.randint(0, 2**32, (2048,), generator=generator, dtype=torch.int64)
    counts = demand.sample(mean, keys)
    # the direct inverse transform on the full grid, from the same uniforms
    u = demand.draw_sites(competitor_path=True)[0].uniform(keys)
    m = mean.clamp(min=1e-12)
    k = torch.arange(demand.grid_size, dtype=torch.float32)
    cdf = torch.addcmul(-torch.lgamma(k + 1), k, m.log().unsqueeze(-1)).exp().cumsum(-1)
    direct = torch.searchsorted(cdf, (u * m.exp()).unsqueeze(-1)).squeeze(-1).to(torch.float32)
    assert torch.equal(counts, direct)
    if scale > 0.5:
        assert bool((counts >= demand.head_size).any())  # the draws beyond the head were exercised


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_binary_search_counts_of_the_cpu_equal_the_grid_comparison_of_other_devices(seed: int) -> None:
    demand = PricingCore(PricingConfig.load("default"), num_envs=64).demand
    generator = torch.Generator().manual_seed(seed)
    mean = torch.rand((64, 2, 2), generator=generator) * demand.max_mean
    mean[0] = 0.0  # no demand at all: the smallest mean
    mean[1] = demand.max_mean * 5  # draws beyond the grid: counts at its end
    keys = torch.randint(0, 2**32, (64,), generator=generator, dtype=torch.int64)
    u = demand.draw_sites(competitor_path=True)[0].uniform(keys)
    m = torch.maximum(mean, demand._tiny_mean)
    threshold = u * m.exp() if demand.shifted else u
    # on the CPU: a binary search of the cumulative weights over the full grid
    counts = demand.count_on_grid(m.log(), m, threshold, demand.grid_size).to(torch.float32)
    cdf = demand.cdf_on_grid(m.log(), m, demand.grid_size)
    compared = (cdf < threshold.unsqueeze(-1)).sum(-1, dtype=torch.float32)  # what other devices compute
    assert torch.equal(counts, compared)
    assert bool((counts == demand.grid_size).any()) and bool((counts == 0).any())


def test_a_batch_large_enough_for_the_head_search_plays_the_episodes_of_single_envs() -> None:
    cfg = PricingConfig.load("default")
    batch = PricingCore(cfg, num_envs=2048)
    assert batch.num_envs * 4 * batch.demand.grid_size > 16_384  # the head search is on
    picked = [0, 777, 2047]
    singles = [PricingCore(cfg, num_envs=1) for _ in picked]
    batch.reset(seeds=range(100, 2148))
    for i, single in zip(picked, singles):
        single.reset(seeds=[100 + i])
    rng = np.random.default_rng(3)
    for _ in range(cfg.horizon):
        action = masked_actions(batch, rng)
        out = batch.step(action)
        for i, single in zip(picked, singles):
            one = single.step(action[i : i + 1])
            assert torch.equal(one.obs[0], out.obs[i])
            assert torch.equal(one.reward[0], out.reward[i])
            assert torch.equal(one.kpis.values[0], out.kpis.values[i])  # type: ignore[attr-defined]


def test_competitor_season_drawn_at_reset_follows_its_step_by_step_recursion() -> None:
    core = PricingCore(PricingConfig.load("default"), num_envs=5)
    assert core.use_competitor_path
    core.reset(seeds=range(5))
    rng = np.random.default_rng(0)
    for t in range(core.horizon):
        before = core.competitor.clone()
        expected = core.demand.competitor_step(before, _rng.step_keys(core.state.stream_key, core.state.t))
        core.step(masked_actions(core, rng))
        assert torch.equal(core.competitor, expected), f"period {t}"


@pytest.mark.parametrize("name", ["default", "multichannel"])
def test_episodes_are_the_same_with_the_competitor_drawn_at_reset_or_step_by_step(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = PricingConfig.load(name, horizon=10)
    drawn = PricingCore(cfg, num_envs=6)
    monkeypatch.setattr(core_module, "PATH_LIMIT", 0)
    stepped = PricingCore(cfg, num_envs=6)
    assert drawn.use_competitor_path and not stepped.use_competitor_path
    assert torch.equal(drawn.reset(seeds=range(6)), stepped.reset(seeds=range(6)))
    rng = np.random.default_rng(1)
    for t in range(2 * cfg.horizon):
        if t == cfg.horizon:  # the next season, then a partial reset that breaks the lockstep
            assert torch.equal(drawn.reset(), stepped.reset())
        if t == cfg.horizon + 3:
            mask = torch.tensor([True, False, True, False, False, True])
            assert torch.equal(drawn.reset(mask=mask), stepped.reset(mask=mask))
        action = masked_actions(drawn, rng)
        a, b = drawn.step(action), stepped.step(action)
        assert torch.equal(a.obs, b.obs) and torch.equal(a.reward, b.reward)
        assert torch.equal(a.truncated, b.truncated)


@pytest.mark.parametrize("name", ["default", "dp_single_sku", "multichannel"])
def test_ladder_prices_read_from_tables_give_the_episodes_of_the_same_prices_as_box_actions(name: str) -> None:
    ladder = PricingCore(PricingConfig.load(name, horizon=12), num_envs=4)
    box = PricingCore(
        PricingConfig.load(name, horizon=12, action={"kind": "box", "box_low": 0.1, "box_high": 2.0}), num_envs=4
    )
    assert torch.equal(ladder.reset(seeds=range(4)), box.reset(seeds=range(4)))
    rng = np.random.default_rng(2)
    n_price = ladder.num_skus * ladder.num_channels
    levels = torch.as_tensor(ladder.price_ladder, dtype=torch.float32)
    for _ in range(12):
        action = masked_actions(ladder, rng)
        as_box = action.to(torch.float32)
        as_box[:, :n_price] = levels[action[:, :n_price]]
        if ladder.has_promotion:
            for c, p in enumerate(ladder.promotion_levels):
                as_box[:, n_price + c] = torch.as_tensor(p, dtype=torch.float32)[action[:, n_price + c]]
            start = n_price + ladder.num_channels
        else:
            start = n_price
        if ladder.has_replenishment:
            as_box[:, start:] = torch.as_tensor(ladder.order_quantities, dtype=torch.float32)[action[:, start:]]
        a, b = ladder.step(action), box.step(as_box)
        assert torch.equal(a.reward, b.reward)
        assert torch.equal(a.kpis.values, b.kpis.values)  # type: ignore[attr-defined]
        assert torch.equal(ladder.state.sales, box.state.sales)


def test_constant_elasticity_ladder_table_holds_rate_times_price_to_minus_e() -> None:
    # torch.pow's float32 result may differ in the last bit between its vectorised and scalar
    # loops, so the table is compared with the formula to a float32 rounding, not bit for bit
    core = PricingCore(PricingConfig.load("constant_elasticity"), num_envs=1)
    levels = torch.as_tensor(core.price_ladder, dtype=torch.float32)
    table = core._level_term.view(core.num_skus, core.num_channels, -1)
    assert torch.allclose(table[0, 0], levels**-3.0, rtol=1e-6, atol=0.0)


@settings(max_examples=30, deadline=None)
@given(
    period=st.integers(0, 7),
    values=st.lists(st.integers(-3, 12), min_size=18 + 2 + 5, max_size=18 + 2 + 5),
    env=st.integers(0, 2),
)
def test_fast_action_check_refuses_exactly_what_the_base_check_refuses(
    period: int, values: list[int], env: int
) -> None:
    core = PricingCore(PricingConfig.load("multichannel", horizon=8), num_envs=3)
    core.reset(seeds=[0, 1, 2])
    rng = np.random.default_rng(period)
    for _ in range(period):
        core.step(masked_actions(core, rng))
    action = masked_actions(core, rng)
    action[env, : len(values)] = torch.as_tensor(values[: action.shape[1]])
    try:
        BatchedCore.check_action(core, action)
        base_error = None
    except ActionError as exc:
        base_error = str(exc)
    if base_error is None:
        core.check_action(action)
    else:
        with pytest.raises(ActionError) as caught:
            core.check_action(action)
        assert str(caught.value) == base_error


def test_box_action_check_refuses_nan_infinite_and_out_of_bounds_prices() -> None:
    core = PricingCore(PricingConfig.load("default", action={"kind": "box"}), num_envs=2)
    core.reset(seeds=[0, 1])
    good = torch.ones(2, 4)
    core.check_action(good)
    for bad_value in (float("nan"), float("inf"), 0.7, 1.6):  # 0.7 is below the marketplace floor 0.8
        bad = good.clone()
        bad[1, 1] = bad_value
        with pytest.raises(ActionError, match="env 1"):
            core.check_action(bad)


def test_masks_are_shared_within_a_period_and_renewed_by_a_step_without_changing_the_old_ones() -> None:
    core = PricingCore(PricingConfig.load("multichannel", horizon=8), num_envs=2)
    core.reset(seeds=[0, 1])
    rng = np.random.default_rng(0)
    core.step(masked_actions(core, rng))  # period 1: the stores hold their prices
    first = core.action_masks()
    assert core.action_masks() is first
    kept = first.clone()
    n = len(core.price_ladder)
    stores = first[:, : core.num_skus * 3 * n].view(2, core.num_skus, 3, n)[:, :, 2]
    assert torch.equal(stores, torch.nn.functional.one_hot(core.state.price_index[:, :, 2], n).bool())
    core.step(masked_actions(core, rng))
    assert core.action_masks() is not first
    assert torch.equal(first, kept)


@pytest.mark.parametrize("name", ["default", "multichannel"])
def test_skipping_the_rationing_when_the_stock_suffices_gives_the_same_episodes(name: str) -> None:
    cfg = PricingConfig.load(name, horizon=12)
    checked, rationed = PricingCore(cfg, num_envs=5), PricingCore(cfg, num_envs=5)
    rationed._host_checks = False  # always ration, as on a GPU
    assert torch.equal(checked.reset(seeds=range(5)), rationed.reset(seeds=range(5)))
    rng = np.random.default_rng(3)
    for _ in range(cfg.horizon):
        action = masked_actions(checked, rng)
        a, b = checked.step(action), rationed.step(action)
        assert torch.equal(a.obs, b.obs) and torch.equal(a.reward, b.reward)
        assert torch.equal(a.kpis.values, b.kpis.values)


def test_the_single_env_refuses_actions_outside_the_ladder_or_the_mask_and_keeps_no_view_of_them() -> None:
    import gymnasium as gym

    env = gym.make("paretochain/Pricing-v0", config="default", invalid_action="raise")
    _, info = env.reset(seed=0)
    n = int(env.action_space.nvec[0])
    for bad in ([-1, 0, 0, 0], [n, 0, 0, 0], [0, 0, 0, -(2**62)]):
        with pytest.raises(ActionError):
            env.step(np.array(bad, dtype=np.int64))
    floor = int(np.flatnonzero(~info["action_mask"][n : 2 * n])[0])  # the marketplace's floor masks the low prices
    with pytest.raises(ActionError, match="not allowed by its action mask"):
        env.step(np.array([4, floor, 4, 4], dtype=np.int64))
    action = np.array([4, 4, 4, 4], dtype=np.int64)
    env.step(action)
    before = env.unwrapped.core.state.price_index.clone()
    action[:] = 0  # the env copied the action: changing it changes nothing in the state
    assert torch.equal(env.unwrapped.core.state.price_index, before)
    mask = env.step(np.array([4, 4, 4, 4]))[4]["action_mask"]
    assert mask[4]
    mask[:] = False  # every info holds its own array: changing one changes nothing else
    following = env.step(np.array([4, 4, 4, 4]))[4]["action_mask"]
    assert following is not mask and following[4] and env.unwrapped.action_masks()[4]
