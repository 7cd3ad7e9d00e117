"""Pricing baselines: closed-form myopic price, exact DP values, DP as an upper bound, markdown tuning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import paretochain  # noqa: F401
from paretochain.agents.baselines.pricing import (
    DynamicProgrammingPolicy,
    FixedPricePolicy,
    MarkdownPolicy,
    MyopicPolicy,
    tune_markdown,
)
from paretochain.agents.policy import Policy
from paretochain.envs import make_vec
from paretochain.envs.pricing import PricingConfig, PricingCore
from paretochain.errors import ConfigError
from paretochain.evaluate.rollout import rollout

TWO_CHANNELS = [
    {"name": "web", "arrival_rate": 2.0, "attractiveness": 3.0, "price_sensitivity": 3.0, "loyalty": 1.0},
    {
        "name": "marketplace",
        "arrival_rate": 2.0,
        "attractiveness": 3.5,
        "price_sensitivity": 4.0,
        "loyalty": 0.5,
        "commission": 0.15,
        "price_floor": 0.8,
    },
]


@pytest.mark.parametrize(("elasticity", "kind", "tolerance"), [(3.0, "ladder", 1e-6), (2.5, "box", 0.0026)])
def test_myopic_price_is_the_closed_form_optimum_c_e_over_e_minus_1(
    elasticity: float, kind: str, tolerance: float
) -> None:
    cfg = PricingConfig.load(
        "constant_elasticity", demand={"model": "constant_elasticity", "elasticity": elasticity}, action={"kind": kind}
    )
    env = make_vec("paretochain/Pricing-v0", 4, config=cfg, tensors=True)
    obs, _ = env.reset(seed=0)
    policy = MyopicPolicy(env)
    assert isinstance(policy, Policy)
    for _ in range(3):
        action = policy.act(obs, None, env.action_masks())
        obs, *_ = env.step(action)
        optimum = 5.0 * elasticity / (elasticity - 1.0)
        chosen = env.core.state.price[:, 0, 0] * 10.0
        assert torch.allclose(chosen, torch.full_like(chosen, optimum), atol=tolerance * 10.0)


def test_dp_value_equals_a_two_period_instance_solved_by_hand() -> None:
    # one unit, prices 10 or 20 (cost 5), demand Poisson(1 * (p / 10)^-2): means 1 and 0.25
    cfg = PricingConfig.load(
        "constant_elasticity",
        horizon=2,
        initial_inventory=1,
        channels=[{"name": "web", "arrival_rate": 1.0}],
        demand={"model": "constant_elasticity", "elasticity": 2.0},
        action={"price_ladder": [1.0, 2.0]},
    )
    dp = DynamicProgrammingPolicy(cfg)
    sell = {10.0: 1 - math.exp(-1.0), 20.0: 1 - math.exp(-0.25)}
    last = max((p - 5.0) * q for p, q in sell.items())  # one period left, one unit
    first = max((p - 5.0) * q + (1 - q) * last for p, q in sell.items())
    assert dp.value == pytest.approx(first, rel=1e-9)
    assert dp.values[1, 1] == pytest.approx(last, rel=1e-9)
    assert dp.table[0, 1, 0] == 1 and dp.table[1, 1, 0] == 1  # 20 in both periods
    # with the unsold unit charged at cost, the last period prefers the price that sells more
    charged = DynamicProgrammingPolicy(cfg, leftover_weight=1.0)
    last_charged = max((p - 5.0) * q - 5.0 * (1 - q) for p, q in sell.items())
    assert charged.values[1, 1] == pytest.approx(last_charged, rel=1e-9)


def test_two_channel_dp_with_ample_stock_earns_the_best_expected_margin_of_each_period() -> None:
    cfg = PricingConfig.load("dp_single_sku", horizon=2, initial_inventory=60, channels=TWO_CHANNELS)
    dp = DynamicProgrammingPolicy(cfg)
    core = PricingCore(cfg, num_envs=1)
    ladder = core.price_ladder
    best = 0.0
    for t in range(2):
        scores = []
        for i in range(len(ladder)):
            for j in range(len(ladder)):
                if ladder[j] < 0.8:
                    continue
                price = torch.tensor([[[ladder[i], ladder[j]]]], dtype=torch.float32)
                mean = core.demand.expected_demand(price, torch.tensor([t])).double()[0, 0].numpy()
                net = np.array([ladder[i] * 10.0, ladder[j] * 10.0 * 0.85]) - 4.0
                scores.append(float((net * mean).sum()))
        best += max(scores)
    assert dp.value == pytest.approx(best, rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("channels", [None, TWO_CHANNELS])
def test_dp_value_bounds_every_other_policy_within_its_confidence_interval(channels: list | None) -> None:
    overrides = {} if channels is None else {"channels": channels}
    cfg = PricingConfig.load("dp_single_sku", **overrides)
    n = 3000
    env = make_vec("paretochain/Pricing-v0", n, config=cfg, tensors=True)
    seeds = list(range(10_000, 10_000 + n))
    dp = DynamicProgrammingPolicy(env)
    markdown, _ = tune_markdown(cfg, seeds=range(40), weights=[1.0, 0.0, 0.0])
    margins = {}
    for name, policy in {
        "dp": dp,
        "fixed": FixedPricePolicy(env),
        "myopic": MyopicPolicy(env),
        "markdown": markdown,
        "deep_discount": FixedPricePolicy(env, 0.7),
    }.items():
        result = rollout(env, policy, seeds)
        margin = result.returns[:, 0]
        margins[name] = (margin.mean(), margin.std(ddof=1) / math.sqrt(n))
    mean, se = margins["dp"]
    assert abs(mean - dp.value) <= 3.5 * se  # the DP's value is what its policy earns
    for name, (m, s) in margins.items():
        assert m <= dp.value + 3.5 * s, f"{name} earned {m:.3f} +- {s:.3f} above the DP optimum {dp.value:.3f}"
    assert margins["deep_discount"][0] < dp.value - 3.5 * margins["deep_discount"][1]  # the bound is not vacuous


def test_dp_refuses_an_instance_it_cannot_solve_exactly_and_says_why() -> None:
    with pytest.raises(ConfigError, match="num_skus is 2"):
        DynamicProgrammingPolicy("default")
    with pytest.raises(ConfigError, match="reference-price"):
        DynamicProgrammingPolicy(PricingConfig.load("dp_single_sku", demand={"reference_price": {"loss_weight": 1.0}}))


def test_markdown_tuning_returns_the_best_scoring_candidate_and_it_marks_down_on_schedule() -> None:
    policy, table = tune_markdown("dp_single_sku", seeds=range(8), starts=(0.5, 1.01), depths=(0.7, 0.9))
    assert len(table) == 4
    best = max(table, key=table.get)
    assert (float(policy.start), float(policy.depth)) == pytest.approx(best)
    env = make_vec("paretochain/Pricing-v0", 1, config="dp_single_sku", tensors=True)
    fixed = MarkdownPolicy(env, start=0.5, depth=0.8)
    obs, _ = env.reset(seed=0)
    prices = []
    for _ in range(8):
        obs = env.core.step(fixed.act(obs, None, env.action_masks())).obs
        prices.append(float(env.core.state.price[0, 0, 0]))
    assert prices == pytest.approx([1.0] * 4 + [0.8] * 4)


def test_baselines_keep_to_the_marketplace_floor_and_the_store_schedule() -> None:
    env = make_vec("paretochain/Pricing-v0", 6, config="multichannel", tensors=True, horizon=8)
    for policy in (FixedPricePolicy(env, 0.5), MyopicPolicy(env), MarkdownPolicy(env, 0.3, 0.5)):
        obs, _ = env.reset(seed=1)
        for _ in range(8):
            action = policy.act(obs, None, env.action_masks())
            env.core.check_action(action)  # raises on a masked entry
            obs, *_ = env.step(action)
            assert bool((env.core.state.price[..., 1] >= 0.85 - 1e-6).all())


def test_packaged_two_channel_instance_is_solved_exactly_and_the_dp_policy_earns_its_value() -> None:
    cfg = PricingConfig.load("dp_two_channel")
    assert len(cfg.channels) == 2 and cfg.num_skus == 1
    dp = DynamicProgrammingPolicy(cfg)
    n = 4000
    env = make_vec("paretochain/Pricing-v0", n, config=cfg, tensors=True)
    seeds = list(range(20_000, 20_000 + n))
    margin = rollout(env, DynamicProgrammingPolicy(env), seeds).returns[:, 0]
    se = margin.std(ddof=1) / math.sqrt(n)
    assert abs(margin.mean() - dp.value) <= 3.5 * se  # the exact value is what the policy earns on average
    # the stock is shared: the optimal prices depend on how many units are left, not on the period alone
    assert len({tuple(dp.table[0, x]) for x in range(int(cfg.initial_inventory) + 1)}) > 1
    fixed = rollout(env, FixedPricePolicy(env, 1.0), seeds).returns[:, 0]
    diff = margin - fixed
    assert diff.mean() > 3.5 * diff.std(ddof=1) / math.sqrt(n)  # the optimum beats the list price, paired by seed
