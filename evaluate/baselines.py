"""The baselines of each family, built for an evaluation: tuned on training seeds where they have parameters.

``family_baselines(env_id, config)`` returns ``name -> factory``; a factory takes the
batched environment the evaluation runs in and returns a policy (the policy contract).
Names are stable: they appear in reports and ``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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
) -> dict[str, Factory]:
    """Build (and tune) the baselines of ``env_id`` on ``config``; ``names`` selects a subset.

    Raises:
        ConfigError: a requested name is not a baseline of this family.
    """
    cfg = env_class(env_id).config_cls.load(config)
    family = family_of(env_id)
    builders = {"warehouse": _warehouse, "dispatch": _dispatch, "pricing": _pricing}[family]
    available = builders(cfg, None, train_seeds, device, dry=True)
    if names:
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ConfigError(f"unknown baseline(s) {unknown} for {env_id}; available: {sorted(available)}")
    return builders(cfg, list(names) if names else None, train_seeds, device, dry=False)


def _want(name: str, names: list[str] | None) -> bool:
    return names is None or name in names


def _warehouse(cfg: Any, names: list[str] | None, seeds: Sequence[int], device: str, dry: bool) -> dict[str, Factory]:
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
        out["base_stock"] = wh.tune_base_stock(cfg, seeds=seeds, device=device).policy
    if _want("s_S", names):
        out["s_S"] = wh.tune_s_s(cfg, seeds=seeds, device=device).policy
    if "forecast_order_up_to" in candidates and _want("forecast_order_up_to", names):
        out["forecast_order_up_to"] = wh.tune_forecast_order_up_to(cfg, seeds=seeds, device=device).policy
    if "optimal_dp" in candidates and _want("optimal_dp", names):
        out["optimal_dp"] = dp.LostSalesDPPolicy
    return out


def _dispatch(cfg: Any, names: list[str] | None, seeds: Sequence[int], device: str, dry: bool) -> dict[str, Factory]:
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


def _pricing(cfg: Any, names: list[str] | None, seeds: Sequence[int], device: str, dry: bool) -> dict[str, Factory]:
    from paretochain.agents.baselines import pricing as pr

    candidates = ["fixed_list_price", "myopic", "markdown"]
    dp_ok = cfg.num_skus == 1 and len(cfg.channels) <= 2 and cfg.replenishment is None
    if dp_ok:
        candidates.append("optimal_dp")
    if dry:
        return dict.fromkeys(candidates, lambda env: None)
    out: dict[str, Factory] = {}
    if _want("fixed_list_price", names):
        out["fixed_list_price"] = pr.FixedPricePolicy
    if _want("myopic", names):
        out["myopic"] = pr.MyopicPolicy
    if _want("markdown", names):
        tuned, _ = pr.tune_markdown(cfg, seeds=list(seeds)[:32], device=device)
        start, depth = float(tuned.start), float(tuned.depth)
        out["markdown"] = lambda env: pr.MarkdownPolicy(env, start, depth)
    if dp_ok and _want("optimal_dp", names):
        out["optimal_dp"] = pr.DynamicProgrammingPolicy
    return out
