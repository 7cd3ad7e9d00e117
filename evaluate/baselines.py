"""The baselines of each family, built for an evaluation: tuned on training seeds where they have parameters.

``family_baselines(env_id, config)`` returns ``name -> factory``; a factory takes the
batched environment the evaluation runs in and returns a policy (the policy contract).
Names are stable: they appear in reports and ``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from paretochain.envs.registration import env_class
from paretochain.errors import ConfigError

Factory = Callable[[Any], Any]
TRAIN_SEEDS = tuple(range(64))


def family_of(env_id: str) -> str:
    """``"warehouse"``, ``"dispatch"`` or ``"pricing"`` for a registered id."""
    return env_id.split("/")[-1].split("-")[0].lower()


def family_baselines(
    env_id: str,
    config: Any,
    names: Sequence[str] | None = None,
    train_seeds: Sequence[int] = TRAIN_SEEDS,
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
        ConfigError: a requested name is not a baseline of this family.
    """
    cfg = env_class(env_id).config_cls.load(config)
    family = family_of(env_id)
    builders = {"warehouse": _warehouse, "dispatch": _dispatch, "pricing": _pricing}[family]
    available = builders(cfg, None, train_seeds, device, True, weights)
    if names:
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ConfigError(f"unknown baseline(s) {unknown} for {env_id}; available: {sorted(available)}")
    return builders(cfg, list(names) if names else None, train_seeds, device, False, weights)


@dataclass
class BaselineFront:
    """One baseline with its parameter swept: the points trace the trade-off it can offer.

    Attributes:
        parameter: what is swept, in words (with its unit).
        values: the swept values.
        policy: builds the policy for a batch of ``len(values) * n`` environments, the value
            ``values[i]`` acting in environments ``i * n .. (i + 1) * n - 1``.
    """

    parameter: str
    values: list[float]
    policy: Callable[[Any, int], Any]


def family_baseline_fronts(env_id: str, config: Any) -> dict[str, BaselineFront]:
    """The baselines of ``env_id`` that have a parameter to sweep, each as a :class:`BaselineFront`.

    Warehouse: base-stock levels (periods of mean demand covered). Pricing: the fixed price and
    the markdown depth (multiples of list price; the markdown starts half-way). Dispatch has
    none (its heuristics have no parameter).
    """
    cfg = env_class(env_id).config_cls.load(config)
    family = family_of(env_id)
    if family == "warehouse":
        from paretochain.agents.baselines import warehouse as wh
        from paretochain.envs.warehouse.core import WarehouseCore

        mean = WarehouseCore(cfg, 1, "cpu").node_mean
        covers = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0]

        def base_stock(env: Any, n: int) -> Any:
            levels = np.repeat(np.round(np.asarray(covers).reshape(-1, 1, 1) * mean[None]), n, axis=0)
            return wh.BaseStockPolicy(env, levels)

        return {"base_stock": BaselineFront("periods of mean demand covered", covers, base_stock)}
    if family == "pricing":
        import torch

        from paretochain.agents.baselines import pricing as pr

        ratios = [0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4]
        depths = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]

        def fixed(env: Any, n: int) -> Any:
            return pr.FixedPricePolicy(env, torch.tensor(ratios, device=env.device).repeat_interleave(n))

        def markdown(env: Any, n: int) -> Any:
            depth = torch.tensor(depths, device=env.device).repeat_interleave(n)
            return pr.MarkdownPolicy(env, 0.5, depth)

        return {
            "fixed_price": BaselineFront("price, multiple of list price", ratios, fixed),
            "markdown": BaselineFront("marked-down price from mid-season, multiple of list price", depths, markdown),
        }
    return {}


def _want(name: str, names: list[str] | None) -> bool:
    return names is None or name in names


def _warehouse(
    cfg: Any, names: list[str] | None, seeds: Sequence[int], device: str, dry: bool, weights: np.ndarray | None
) -> dict[str, Factory]:
    from paretochain.agents.baselines import lost_sales_dp as dp
    from paretochain.agents.baselines import warehouse as wh

    out: dict[str, Factory] = {}
    candidates = ["base_stock", "s_S"] + (["forecast_order_up_to"] if cfg.demand_history_periods >= 1 else [])
    heuristics = ["constant_order", "capped_base_stock", "vector_base_stock", "myopic", "myopic_2"]
    try:
        dp.check_lost_sales_config(cfg)
        candidates += [*heuristics, "optimal_dp"]
    except ValueError:
        pass
    if dry:
        return dict.fromkeys(candidates, lambda env: None)
    wanted = [h for h in heuristics if h in candidates and _want(h, names)]
    if wanted:  # the lost-sales heuristics, tuned on long-run windows of the training seeds (cost only)
        from paretochain.agents.baselines.lost_sales import tune_lost_sales

        tuned = tune_lost_sales(cfg, seeds=seeds, device=device)
        out.update({h: tuned[h].policy for h in wanted})
    if _want("base_stock", names):
        out["base_stock"] = wh.tune_base_stock(cfg, seeds=seeds, weights=weights, device=device).policy
    if _want("s_S", names):
        out["s_S"] = wh.tune_s_s(cfg, seeds=seeds, weights=weights, device=device).policy
    if "forecast_order_up_to" in candidates and _want("forecast_order_up_to", names):
        out["forecast_order_up_to"] = wh.tune_forecast_order_up_to(
            cfg, seeds=seeds, weights=weights, device=device
        ).policy
    if "optimal_dp" in candidates and _want("optimal_dp", names):
        out["optimal_dp"] = dp.LostSalesDPPolicy
    return out


def _dispatch(
    cfg: Any, names: list[str] | None, seeds: Sequence[int], device: str, dry: bool, weights: np.ndarray | None
) -> dict[str, Factory]:
    from paretochain.agents.baselines import dispatch as dp

    static = cfg.release.known_share >= 1.0
    candidates = ["nearest_neighbour", "pyvrp_rolling", "pyvrp_hindsight"] + (["savings"] if static else [])
    if dry:
        return dict.fromkeys(candidates, lambda env: None)
    out: dict[str, Factory] = {}
    if _want("nearest_neighbour", names):
        out["nearest_neighbour"] = dp.NearestNeighbourPolicy
    if static and _want("savings", names):
        out["savings"] = dp.SavingsPolicy
    if _want("pyvrp_rolling", names):
        out["pyvrp_rolling"] = lambda env: dp.PyVRPRollingPolicy(env, time_limit_s=0.05)
    if _want("pyvrp_hindsight", names):
        out["pyvrp_hindsight"] = lambda env: dp.PyVRPHindsightPolicy(env, time_limit_s=1.0)
    return out


def _pricing(
    cfg: Any, names: list[str] | None, seeds: Sequence[int], device: str, dry: bool, weights: np.ndarray | None
) -> dict[str, Factory]:
    from paretochain.agents.baselines import pricing as pr

    candidates = ["fixed_list_price", "best_fixed_price", "myopic", "markdown"]
    dp_ok = cfg.num_skus == 1 and len(cfg.channels) <= 2 and cfg.replenishment is None
    if dp_ok:
        candidates.append("optimal_dp")
    if dry:
        return dict.fromkeys(candidates, lambda env: None)
    out: dict[str, Factory] = {}
    if _want("fixed_list_price", names):
        out["fixed_list_price"] = pr.FixedPricePolicy
    if _want("best_fixed_price", names):
        fixed, _ = pr.tune_fixed_price(cfg, seeds=list(seeds)[:32], weights=weights, device=device)
        ratio = float(fixed.price_ratio)
        out["best_fixed_price"] = lambda env: pr.FixedPricePolicy(env, ratio)
    if _want("myopic", names):
        out["myopic"] = pr.MyopicPolicy
    if _want("markdown", names):
        tuned, _ = pr.tune_markdown(cfg, seeds=list(seeds)[:32], weights=weights, device=device)
        start, depth = float(tuned.start), float(tuned.depth)
        out["markdown"] = lambda env: pr.MarkdownPolicy(env, start, depth)
    if dp_ok and _want("optimal_dp", names):
        out["optimal_dp"] = pr.DynamicProgrammingPolicy
    return out
