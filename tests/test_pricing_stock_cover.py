"""The stock-cover pricing rule: its yardstick, when it moves a price, its tuning, its front and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import paretochain  # noqa: F401
from paretochain.agents.baselines.pricing import (
    FixedPricePolicy,
    PriceRuleFrontPolicy,
    StockCoverPolicy,
    best_rule,
    fixed_price_rules,
    measure_price_rules,
    moves_price,
    price_rule_returns,
    price_rule_seeds,
    sales_to_go,
    stock_cover_rules,
    tune_fixed_price,
    tune_price_rule_front,
    tune_stock_cover,
)
from paretochain.envs import make_vec
from paretochain.envs.pricing import PricingConfig
from paretochain.errors import ConfigError
from paretochain.evaluate.baselines import family_baselines
from paretochain.evaluate.rollout import rollout


def test_sales_to_go_is_what_an_unlimited_stock_sells_at_list_price() -> None:
    # dp_single_sku has no competitor and no reference prices: the expectation is exact
    cfg = PricingConfig.load("dp_single_sku").model_copy(update={"initial_inventory": 100_000.0})
    n = 4096
    env = make_vec("paretochain/Pricing-v0", n, config=cfg, tensors=True)
    to_go = sales_to_go(env.core)
    assert to_go.shape == (cfg.horizon + 1, 1) and float(to_go[-1, 0]) == 0.0
    assert torch.all(to_go[:-1, 0] > to_go[1:, 0])  # every period asks for some units
    sold = rollout(env, FixedPricePolicy(env, 1.0), list(range(n))).kpis["sales_units"]
    # Poisson counts: the season's total has variance equal to its mean
    assert float(sold.mean()) == pytest.approx(float(to_go[0, 0]), abs=4 * np.sqrt(float(to_go[0, 0]) / n))


def _cover_path(config: str, policy_factory, seeds: list[int]):
    """Per period: on-hand stock, sales still expected at list price, and the price played (SKU 0, channel 0)."""
    env = make_vec("paretochain/Pricing-v0", len(seeds), config=config, tensors=True)
    policy = policy_factory(env)
    to_go = sales_to_go(env.core)
    obs, _ = env.reset(seed=seeds[0])
    rows = []
    for t in range(env.core.horizon):
        on_hand = obs[:, 0].clone()
        obs = env.core.step(policy.act(obs, None, env.action_masks())).obs
        rows.append((on_hand, float(to_go[t, 0]), env.core.state.price[:, 0, 0].clone()))
    return rows


def test_the_rule_raises_the_price_the_first_period_the_cover_falls_below_its_threshold_and_holds_it() -> None:
    low = 0.9
    rows = _cover_path("default", lambda env: StockCoverPolicy(env, start=1.0, low_cover=low, markup=1.2), [0] * 64)
    raised = torch.zeros(64, dtype=torch.bool)
    for on_hand, to_go, price in rows:
        raised |= on_hand / to_go < low  # by hand: the cover of the stock at the period's start
        expected = torch.where(raised, 1.2, 1.0)
        assert torch.allclose(price, expected, atol=1e-5)
    assert 0 < int(raised.sum()) < 64  # some episodes ran short of stock, some did not


def test_late_in_the_season_a_slow_seller_is_marked_down_and_never_marked_up_again_by_the_markdown() -> None:
    rows = _cover_path(
        "default",
        lambda env: StockCoverPolicy(env, start=1.1, high_cover=1.0, markdown_from=0.5, markdown=0.9),
        list(range(64)),
    )
    horizon = len(rows)
    cut = torch.zeros(rows[0][0].shape, dtype=torch.bool)
    for t, (on_hand, to_go, price) in enumerate(rows):
        if t / horizon >= 0.5:
            cut |= on_hand / to_go > 1.0
        assert torch.allclose(price, torch.where(cut, 0.9, 1.1), atol=1e-5)
    assert bool(cut.any())


def test_a_fixed_price_rule_plays_exactly_what_the_fixed_price_policy_plays() -> None:
    seeds = list(range(32))
    ratios = [0.5, 0.8, 1.0, 1.25]
    rules, _ = price_rule_returns("default", seeds, fixed_price_rules(ratios))
    env = make_vec("paretochain/Pricing-v0", len(seeds), config="default", tensors=True)
    for ratio, returns in zip(ratios, rules):
        held = rollout(env, FixedPricePolicy(env, ratio), seeds).returns
        np.testing.assert_allclose(returns, held, rtol=1e-6)


def test_on_the_default_config_the_tuned_rule_beats_the_best_fixed_price_on_margin_and_satisfaction() -> None:
    seeds = list(range(64))
    margin_only = [1.0, 0.0, 0.0]
    rule, table, score = tune_stock_cover("default", seeds, weights=margin_only)
    fixed, _ = tune_fixed_price("default", seeds, weights=margin_only)
    env = make_vec("paretochain/Pricing-v0", len(seeds), config="default", tensors=True)
    ruled = rollout(env, StockCoverPolicy(env, *rule.rules[0]), seeds).returns
    held = rollout(env, FixedPricePolicy(env, float(fixed.price_ratio)), seeds).returns
    assert float(ruled[:, 0].mean()) == pytest.approx(float(score.max()), rel=1e-6)
    assert ruled[:, 0].mean() > held[:, 0].mean() and ruled[:, 1].mean() > held[:, 1].mean()
    assert float(rule.rules[0, 1]) > 0  # a rule that moves the price, not a fixed one
    assert table.shape == (len(stock_cover_rules()), 6)


def test_the_front_of_rules_plays_at_each_corner_the_rule_tuned_there() -> None:
    seeds = list(range(16))
    rules = np.concatenate([fixed_price_rules([0.6, 1.0, 1.1]), stock_cover_rules(starts=(1.0,), rises=(0.1,))])
    front, means = tune_price_rule_front("default", seeds, rules=rules)
    assert means.shape == (rules.shape[0], 3)
    chosen = front.choose(torch.eye(3), 3).numpy()
    for corner, index in zip(np.eye(3), chosen):
        _, table, score = tune_stock_cover("default", seeds, weights=corner, rules=rules)
        np.testing.assert_array_equal(front.rule_table[index], table[int(np.argmax(score))])
    # every row plays its own rule: the front at the three corners against the three rules alone
    env = make_vec("paretochain/Pricing-v0", 3, config="default", tensors=True)
    mixed = rollout(env, front, [5, 5, 5], preference=torch.eye(3)).returns
    for i, index in enumerate(chosen):
        alone = make_vec("paretochain/Pricing-v0", 1, config="default", tensors=True)
        np.testing.assert_allclose(mixed[i], rollout(alone, StockCoverPolicy(alone, *rules[index]), [5]).returns[0])


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (np.ones((2, 5)), r"rows of 6 values"),
        (np.array([[1.0, 0.5, np.nan, 1.0, 0.5, 0.9]]), "not finite"),
        (np.array([[1.0, 0.5, 1.1, 1.0, 0.5, 0.0]]), "must be above 0"),
        (np.array([[1.0, -0.5, 1.1, 1.0, 0.5, 0.9]]), "not below 0"),
    ],
)
def test_a_rule_table_it_cannot_trust_is_one_config_error(rules: np.ndarray, message: str) -> None:
    env = make_vec("paretochain/Pricing-v0", 2, config="default", tensors=True)
    with pytest.raises(ConfigError, match=message):
        PriceRuleFrontPolicy(env, rules, np.zeros((rules.shape[0], 3)))
    with pytest.raises(ConfigError, match=message):
        price_rule_returns("default", [0], rules)
    if rules.shape[1] == 6:
        with pytest.raises(ConfigError, match=message):
            StockCoverPolicy(env, *rules[0])


def test_the_rule_and_its_front_are_pricing_baselines() -> None:
    names = ["stock_cover", "best_price_rule_per_preference"]
    factories = family_baselines("paretochain/Pricing-v0", "dp_single_sku", names=names, train_seeds=range(8))
    env = make_vec("paretochain/Pricing-v0", 2, config="dp_single_sku", tensors=True)
    assert type(factories["stock_cover"](env)) is StockCoverPolicy
    assert isinstance(factories["best_price_rule_per_preference"](env), PriceRuleFrontPolicy)


def test_rules_are_measured_on_the_tuning_seeds_and_1024_selection_seeds_none_of_them_twice() -> None:
    from paretochain.seeds import TRAINING, TUNING_SEEDS

    seeds = price_rule_seeds(TUNING_SEEDS)
    assert seeds[: len(TUNING_SEEDS)] == list(TUNING_SEEDS)
    assert len(seeds) == len(set(seeds)) == len(TUNING_SEEDS) + 1024
    assert all(s in TRAINING for s in seeds)
    # tuning seeds that overlap the selection seeds are not measured twice
    overlapping = price_rule_seeds([64, 65, 3])
    assert len(overlapping) == len(set(overlapping)) == 3 + 1024


def test_the_best_rule_and_the_moving_rules_are_read_off_the_measured_table() -> None:
    rules = np.concatenate([fixed_price_rules([1.0, 1.2]), stock_cover_rules(starts=(1.0,), low_covers=(0.0, 0.8))])
    table, means = measure_price_rules("dp_single_sku", list(range(16)), rules)
    np.testing.assert_array_equal(table, rules)
    returns, _ = price_rule_returns("dp_single_sku", list(range(16)), rules)
    np.testing.assert_allclose(means, returns.mean(axis=1))
    moving = moves_price(rules)
    assert not moving[:2].any()  # the two fixed prices
    assert moving[2:].sum() == len(rules) - 3  # every cover rule but the one that neither rises nor cuts
    for w in np.eye(3):
        np.testing.assert_array_equal(best_rule(table, means, w), table[int(np.argmax(means @ w))])
    np.testing.assert_array_equal(best_rule(table, means), table[int(np.argmax(means.sum(axis=1)))])


def test_the_rule_baselines_measure_the_rules_once_and_the_rule_is_the_best_moving_one_at_the_preference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import paretochain.agents.baselines.pricing as pr
    from paretochain.envs.family import Tuning
    from paretochain.evaluate.baselines import PRICING_BASELINES

    calls: list[int] = []
    measure = pr.measure_price_rules

    def counted(*args, **kwargs):
        calls.append(1)
        return measure(*args, **kwargs)

    monkeypatch.setattr(pr, "measure_price_rules", counted)
    cfg = PricingConfig.load("dp_single_sku")
    tuning = Tuning(seeds=tuple(range(8)), weights=np.array([1.0, 0.0, 0.0]))
    by_name = {b.name: b for b in PRICING_BASELINES}
    rule = by_name["stock_cover"].build(cfg, tuning)
    front = by_name["best_price_rule_per_preference"].build(cfg, tuning)
    assert len(calls) == 1
    rules, means = tuning.shared["pricing_rules"]
    env = make_vec("paretochain/Pricing-v0", 2, config=cfg, tensors=True)
    moving = moves_price(rules)
    np.testing.assert_allclose(rule(env).rules[0].numpy(), best_rule(rules[moving], means[moving], [1, 0, 0]))
    # the front acted on without a preference plays the compared one's best rule (here margin only)
    assert int(front(env).choose(None, 1)[0]) == int(np.argmax(means[:, 0]))
