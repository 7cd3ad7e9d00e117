"""Named robustness scenarios: the same policies under changed conditions, side by side.

A scenario maps an environment config to a changed copy; the observation layout stays
the same, so a trained policy runs unchanged. ``baseline`` is the config as given.
Each family's record (:class:`paretochain.envs.family.Family`) names its mapping below.
"""

from __future__ import annotations

from typing import Any

from paretochain.envs.family import Scenario
from paretochain.envs.registration import get_family


def _scaled(value: Any, factor: float) -> Any:
    if isinstance(value, (int, float)):
        return float(value) * factor
    if isinstance(value, list):
        return [float(v) * factor for v in value]
    if hasattr(value, "low") and hasattr(value, "high"):
        return type(value)(low=value.low * factor, high=value.high * factor)
    return value


def _copy(cfg: Any, **changes: Any) -> Any:
    data = cfg.model_dump()
    for key, value in changes.items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
    return type(cfg).model_validate(data)


WAREHOUSE_SCENARIOS: dict[str, Scenario] = {
    "baseline": lambda c: c,
    "disruptions": lambda c: _copy(
        c,
        **{
            "disruptions.outage_probability": max(0.05, c.disruptions.outage_probability),
            "disruptions.outage_duration": 4,
        },
    ),
    "demand_shock": lambda c: (
        _copy(c, **{"demand.mean": _scaled(c.demand.mean, 1.5)}) if c.demand.source == "synthetic" else c
    ),
    "promotions": lambda c: (
        _copy(
            c,
            **{
                "demand.promotion_probability": max(0.05, c.demand.promotion_probability),
                "demand.promotion_uplift": 2.5,
            },
        )
        if c.demand.source == "synthetic"
        else c
    ),
}


def _tighter_fleet(c: Any) -> Any:
    fleet = c.num_vehicles if c.num_vehicles is not None else 3
    return _copy(c, num_vehicles=max(1, fleet - 1))


DISPATCH_SCENARIOS: dict[str, Scenario] = {
    "baseline": lambda c: c,
    "tighter_fleet": _tighter_fleet,
    "late_orders": lambda c: _copy(c, **{"release.known_share": c.release.known_share * 0.5}),
}


def _pricing_demand_shock(c: Any) -> Any:
    data = c.model_dump()
    for ch in data["channels"]:
        ch["arrival_rate"] = (
            _scaled(ch["arrival_rate"], 1.5) if not isinstance(ch["arrival_rate"], dict) else ch["arrival_rate"]
        )
    return type(c).model_validate(data)


PRICING_SCENARIOS: dict[str, Scenario] = {
    "baseline": lambda c: c,
    "demand_shock": _pricing_demand_shock,
    "competitor_undercut": lambda c: _copy(
        c,
        **{
            "demand.competitor.mean_ratio": 0.85,
            "demand.competitor.attractiveness": max(c.demand.competitor.attractiveness, 0.0),
        },
    ),
}


def family_scenarios(family: str, cfg: Any = None) -> dict[str, Scenario]:
    """``name -> scenario`` for a family, by name (``warehouse``, ``dispatch``, ``pricing``) or registered id.

    ``cfg`` is accepted for compatibility; the scenarios do not depend on it.
    """
    return dict(get_family(family).scenario_map())
