"""The baselines of each family, built for an evaluation: tuned on training seeds where they have parameters.

Every family's record (:class:`paretochain.envs.family.Family`) names its baselines: the
sequences of :class:`~paretochain.envs.family.Baseline` below, one entry per name, and the
fronts (baselines with a parameter swept). ``family_baselines(env_id, config)`` returns
``name -> factory``; a factory takes the batched environment the evaluation runs in and
returns a policy (the policy contract). Names are stable: they appear in reports and
``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from paretochain.envs.family import Baseline, BaselineFront, Factory, Tuning
from paretochain.envs.registration import get_family
from paretochain.errors import ConfigError
from paretochain.seeds import TUNING_SEEDS

__all__ = [
    "DISPATCH_BASELINES",
    "EPOCH_DISPATCH_BASELINES",
    "PRICING_BASELINES",
    "WAREHOUSE_BASELINES",
    "BaselineFront",
    "Factory",
    "family_baseline_fronts",
    "family_baselines",
    "pricing_fronts",
    "warehouse_fronts",
]


def family_baselines(
    env_id: str,
    config: Any,
    names: Sequence[str] | None = None,
    train_seeds: Sequence[int] = TUNING_SEEDS,
    device: str = "cpu",
    weights: np.ndarray | None = None,
) -> dict[str, Factory]:
    """Build (and tune) the baselines of ``env_id`` on ``config``; ``names`` selects a subset.

    Args:
        weights: per-objective weights of the episode return the tuners maximise (the
            preference a learned policy is compared at, divided by each objective's scale);
            default: each tuner's own (the first objective, or the sum of objectives).
            The lost-sales heuristics always minimise the cost alone.

    Raises:
        ConfigError: a requested name is not a baseline of this family (or does not apply to the config).
    """
    record = get_family(env_id)
    cfg = record.config_class.load(config)
    available = [b for b in record.baseline_list() if b.applies(cfg)]
    if names:
        unknown = [n for n in names if n not in {b.name for b in available}]
        if unknown:
            raise ConfigError(
                f"unknown baseline(s) {unknown} for {env_id}; available: {sorted(b.name for b in available)}"
            )
    tuning = Tuning(tuple(train_seeds), device, weights)
    return {b.name: b.build(cfg, tuning) for b in available if not names or b.name in names}


def family_baseline_fronts(env_id: str, config: Any) -> dict[str, BaselineFront]:
    """The baselines of ``env_id`` that have a parameter to sweep, each as a :class:`BaselineFront`.

    Warehouse: base-stock levels (periods of mean demand covered). Pricing: the fixed price and
    the markdown depth (multiples of list price; the markdown starts half-way). Dispatch has
    none (its heuristics have no parameter).
    """
    record = get_family(env_id)
    return record.baseline_fronts(record.config_class.load(config))


# ---------------------------------------------------------------------- Warehouse


def _lost_sales_ok(cfg: Any) -> bool:
    """The config is one the lost-sales dynamic program (and the heuristics tuned with it) accepts."""
    from paretochain.agents.baselines import lost_sales_dp as dp

    try:
        dp.check_lost_sales_config(cfg)
    except ValueError:
        return False
    return True


def _lost_sales_heuristic(name: str) -> Baseline:
    """One of the lost-sales heuristics, all tuned together on long-run windows of the training seeds (cost only)."""

    def build(cfg: Any, tuning: Tuning) -> Factory:
        from paretochain.agents.baselines.lost_sales import tune_lost_sales

        tuned = tuning.once("lost_sales", lambda: tune_lost_sales(cfg, seeds=tuning.seeds, device=tuning.device))
        factory: Factory = tuned[name].policy
        return factory

    return Baseline(name, build, _lost_sales_ok)


def _best_lost_sales_heuristic(cfg: Any, tuning: Tuning) -> Factory:
    """The lost-sales heuristic with the lowest long-run cost on 4,096 training seeds.

    Each heuristic is tuned on the tuning seeds, its best candidates are scored again on the
    4,096 training seeds after them (``SELECTION_SEEDS``, the same episodes for every
    heuristic) and the cheapest there wins. Which one depends on the instance (on the 16
    classic instances: projected inventory level on 9, a myopic policy on 6, vector base-stock
    on 1); a learned policy that imitates a heuristic first (a run's ``imitation`` section) starts
    from the strongest.
    """
    from paretochain.agents.baselines.lost_sales import SELECTION_SEEDS, tune_lost_sales

    tuning_seeds = set(tuning.seeds)
    selection = [s for s in SELECTION_SEEDS if s not in tuning_seeds]
    tuned = tuning.once(
        "lost_sales_selected",
        lambda: tune_lost_sales(cfg, seeds=tuning.seeds, device=tuning.device, selection_seeds=selection),
    )
    factory: Factory = min(tuned.values(), key=lambda t: t.training_cost).policy
    return factory


def _base_stock(cfg: Any, tuning: Tuning) -> Factory:
    from paretochain.agents.baselines import warehouse as wh

    return wh.tune_base_stock(cfg, seeds=tuning.seeds, weights=tuning.weights, device=tuning.device).policy


def _s_s(cfg: Any, tuning: Tuning) -> Factory:
    from paretochain.agents.baselines import warehouse as wh

    return wh.tune_s_s(cfg, seeds=tuning.seeds, weights=tuning.weights, device=tuning.device).policy


def _forecast_order_up_to(cfg: Any, tuning: Tuning) -> Factory:
    from paretochain.agents.baselines import warehouse as wh

    tuned = wh.tune_forecast_order_up_to(cfg, seeds=tuning.seeds, weights=tuning.weights, device=tuning.device)
    return tuned.policy


def _lost_sales_dp(cfg: Any, tuning: Tuning) -> Factory:
    from paretochain.agents.baselines import lost_sales_dp as dp

    return dp.LostSalesDPPolicy


WAREHOUSE_BASELINES: tuple[Baseline, ...] = (
    *(
        _lost_sales_heuristic(name)
        for name in (
            "constant_order",
            "capped_base_stock",
            "vector_base_stock",
            "projected_inventory_level",
            "myopic",
            "myopic_2",
        )
    ),
    Baseline("best_lost_sales_heuristic", _best_lost_sales_heuristic, _lost_sales_ok),
    Baseline("base_stock", _base_stock),
    Baseline("s_S", _s_s),
    Baseline("forecast_order_up_to", _forecast_order_up_to, lambda cfg: cfg.demand_history_periods >= 1),
    Baseline("optimal_dp", _lost_sales_dp, _lost_sales_ok),
)


def warehouse_fronts(cfg: Any) -> dict[str, BaselineFront]:
    """Base-stock over the periods of mean demand its levels cover."""
    from paretochain.agents.baselines import warehouse as wh
    from paretochain.envs.warehouse.core import WarehouseCore

    mean = WarehouseCore(cfg, 1, "cpu").node_mean
    covers = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0]

    def base_stock(env: Any, n: int) -> Any:
        levels = np.repeat(np.round(np.asarray(covers).reshape(-1, 1, 1) * mean[None]), n, axis=0)
        return wh.BaseStockPolicy(env, levels)

    return {"base_stock": BaselineFront("periods of mean demand covered", covers, base_stock)}


# ---------------------------------------------------------------------- Dispatch


def _dispatch_policy(
    name: str, class_name: str, applies: Callable[[Any], bool] | None = None, **options: float
) -> Baseline:
    """A dispatch heuristic (nothing to tune): the class ``class_name`` of ``agents.baselines.dispatch``."""

    def build(cfg: Any, tuning: Tuning) -> Factory:
        from paretochain.agents.baselines import dispatch as dp

        policy = getattr(dp, class_name)
        return (lambda env: policy(env, **options)) if options else policy

    return Baseline(name, build) if applies is None else Baseline(name, build, applies)


def _all_orders_known(cfg: Any) -> bool:
    """Every order is known at the start (the savings heuristic plans the whole day at once)."""
    return bool(cfg.release.known_share >= 1.0)


DISPATCH_BASELINES: tuple[Baseline, ...] = (
    _dispatch_policy("nearest_neighbour", "NearestNeighbourPolicy"),
    _dispatch_policy("savings", "SavingsPolicy", _all_orders_known),
    _dispatch_policy("pyvrp_rolling", "PyVRPRollingPolicy", time_limit_s=0.05),
    _dispatch_policy("pyvrp_hindsight", "PyVRPHindsightPolicy", time_limit_s=1.0),
)


# ---------------------------------------------------------------------- Dispatch, epoch mode


def _epoch_greedy(cfg: Any, tuning: Tuning) -> Factory:
    from paretochain.agents.baselines.epoch import GreedyEpochPolicy

    return lambda env: GreedyEpochPolicy()


def _epoch_lazy(cfg: Any, tuning: Tuning) -> Factory:
    from paretochain.agents.baselines.epoch import LazyEpochPolicy

    return lambda env: LazyEpochPolicy()


def _epoch_random(cfg: Any, tuning: Tuning) -> Factory:
    from paretochain.agents.baselines.epoch import RandomEpochPolicy

    return lambda env: RandomEpochPolicy(p=0.5, seed=0)


def _epoch_rollout(cfg: Any, tuning: Tuning) -> Factory:
    from paretochain.agents.baselines.epoch import PerEnvironmentPolicy, RolloutEpochPolicy

    # each scenario's search gets the env's own routing budget
    budget = {"iterations": cfg.epoch.routing_iterations, "time_limit_s": cfg.epoch.routing_time_limit_s}
    return lambda env: PerEnvironmentPolicy(env, lambda e: RolloutEpochPolicy(e, num_scenarios=4, **budget))


def _epoch_hindsight(cfg: Any, tuning: Tuning) -> Factory:
    from paretochain.agents.baselines.epoch import HindsightEpochPolicy, PerEnvironmentPolicy

    # the whole shift in one search: four times the env's per-epoch routing budget
    budget = {"iterations": 4 * cfg.epoch.routing_iterations, "time_limit_s": 4 * cfg.epoch.routing_time_limit_s}
    return lambda env: PerEnvironmentPolicy(env, lambda e: HindsightEpochPolicy(e, **budget))


#: The epoch mode's baselines (``paretochain/DispatchEpoch-v0``; :mod:`paretochain.agents.baselines.epoch`).
#: The rollout and hindsight searches scale with the config's ``epoch.routing_iterations`` and
#: ``epoch.routing_time_limit_s``; the hindsight plan is a time-limited upper bound, not the optimum.
EPOCH_DISPATCH_BASELINES: tuple[Baseline, ...] = (
    Baseline("greedy", _epoch_greedy),
    Baseline("lazy", _epoch_lazy),
    Baseline("random", _epoch_random),
    Baseline("rollout", _epoch_rollout),
    Baseline("hindsight", _epoch_hindsight),
)


# ---------------------------------------------------------------------- Pricing


def _fixed_list_price(cfg: Any, tuning: Tuning) -> Factory:
    from paretochain.agents.baselines import pricing as pr

    return pr.FixedPricePolicy


def _best_fixed_price(cfg: Any, tuning: Tuning) -> Factory:
    from paretochain.agents.baselines import pricing as pr

    fixed, _ = pr.tune_fixed_price(cfg, seeds=list(tuning.seeds)[:32], weights=tuning.weights, device=tuning.device)
    ratio = float(fixed.price_ratio)
    return lambda env: pr.FixedPricePolicy(env, ratio)


def _best_fixed_price_per_preference(cfg: Any, tuning: Tuning) -> Factory:
    """Every candidate fixed price measured once on the tuning seeds; each row plays the best at its preference.

    All the tuning seeds are used (``best_fixed_price`` uses the first 32), so where two prices are
    nearly as good the two baselines may settle on different ones.

    Rows acted on without a preference use the compared one (``tuning.weights`` times the
    objectives' utility scale, which is how ``paretochain evaluate`` derived the weights), or
    equal weights.
    """
    from paretochain.agents.baselines import pricing as pr

    tuned, _ = pr.tune_fixed_price_front(cfg, seeds=list(tuning.seeds), device=tuning.device)
    default = None if tuning.weights is None else np.asarray(tuning.weights) * tuned.objective_scale
    ratios, means, scale = tuned.price_ratios, tuned.mean_returns, tuned.objective_scale
    return lambda env: pr.FixedPriceFrontPolicy(env, ratios, means, scale, default)


def _price_rules(cfg: Any, tuning: Tuning) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate fixed price and stock-cover rule with its mean returns, measured once per tuning.

    On the tuning seeds and 1,024 selection seeds (``price_rule_seeds``): the best of hundreds of
    rules on 64 episodes is flattered by its luck on them.
    """
    from paretochain.agents.baselines import pricing as pr

    seeds = pr.price_rule_seeds(tuning.seeds)
    return tuning.once("pricing_rules", lambda: pr.measure_price_rules(cfg, seeds, device=tuning.device))  # type: ignore[no-any-return]


def _best_price_rule_per_preference(cfg: Any, tuning: Tuning) -> Factory:
    """Each row plays the fixed price or stock-cover rule with the best mean return at its preference.

    Rows acted on without a preference use the compared one, as ``best_fixed_price_per_preference``.
    """
    from paretochain.agents.baselines import pricing as pr
    from paretochain.evaluate.pareto import utility_scale

    rules, means = _price_rules(cfg, tuning)
    weights = tuning.weights

    def build(env: Any) -> Any:
        scale = utility_scale(pr.pricing_core(env).objectives.reference_point)
        default = None if weights is None else np.asarray(weights) * scale
        return pr.PriceRuleFrontPolicy(env, rules, means, scale, default)

    return build


def _stock_cover(cfg: Any, tuning: Tuning) -> Factory:
    """The stock-cover rule (one that moves the price) with the best mean return at the compared preference."""
    from paretochain.agents.baselines import pricing as pr

    rules, means = _price_rules(cfg, tuning)
    moving = pr.moves_price(rules)
    rule = [float(v) for v in pr.best_rule(rules[moving], means[moving], tuning.weights)]
    return lambda env: pr.StockCoverPolicy(env, *rule)


def _myopic_price(cfg: Any, tuning: Tuning) -> Factory:
    from paretochain.agents.baselines import pricing as pr

    return pr.MyopicPolicy


def _markdown(cfg: Any, tuning: Tuning) -> Factory:
    from paretochain.agents.baselines import pricing as pr

    tuned, _ = pr.tune_markdown(cfg, seeds=list(tuning.seeds)[:32], weights=tuning.weights, device=tuning.device)
    start, depth = float(tuned.start), float(tuned.depth)
    return lambda env: pr.MarkdownPolicy(env, start, depth)


def _pricing_dp(cfg: Any, tuning: Tuning) -> Factory:
    from paretochain.agents.baselines import pricing as pr

    return pr.DynamicProgrammingPolicy


def _pricing_dp_ok(cfg: Any) -> bool:
    """One SKU, at most two channels and no replenishment: small enough for the exact dynamic program."""
    return bool(cfg.num_skus == 1 and len(cfg.channels) <= 2 and cfg.replenishment is None)


PRICING_BASELINES: tuple[Baseline, ...] = (
    Baseline("fixed_list_price", _fixed_list_price),
    Baseline("best_fixed_price", _best_fixed_price),
    Baseline("best_fixed_price_per_preference", _best_fixed_price_per_preference),
    Baseline("stock_cover", _stock_cover),
    Baseline("best_price_rule_per_preference", _best_price_rule_per_preference),
    Baseline("myopic", _myopic_price),
    Baseline("markdown", _markdown),
    Baseline("optimal_dp", _pricing_dp, _pricing_dp_ok),
)


def pricing_fronts(cfg: Any) -> dict[str, BaselineFront]:
    """The fixed price and the markdown depth, as multiples of list price; the stock-cover rule's cover."""
    import torch

    from paretochain.agents.baselines import pricing as pr

    ratios = [0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4]
    depths = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    covers = [0.0, 0.4, 0.6, 0.8, 1.0, 1.2, 1.5]

    def fixed(env: Any, n: int) -> Any:
        return pr.FixedPricePolicy(env, torch.tensor(ratios, device=env.device).repeat_interleave(n))

    def markdown(env: Any, n: int) -> Any:
        depth = torch.tensor(depths, device=env.device).repeat_interleave(n)
        return pr.MarkdownPolicy(env, 0.5, depth)

    def stock_cover(env: Any, n: int) -> Any:
        low = torch.tensor(covers, device=env.device).repeat_interleave(n)
        return pr.StockCoverPolicy(env, 1.0, low, 1.1)

    return {
        "fixed_price": BaselineFront("price, multiple of list price", ratios, fixed),
        "stock_cover": BaselineFront(
            "cover of the rest of the season below which the price rises to 1.1 x list", covers, stock_cover
        ),
        "markdown": BaselineFront("marked-down price from mid-season, multiple of list price", depths, markdown),
    }
