"""The Warehouse objectives: each one's per-step reward as an expression of the period's KPIs, and its
declaration (unit, meaning, reference point). A new objective over existing KPIs is one entry in each."""

from __future__ import annotations

import numpy as np

from paretochain.envs.objectives import Objective, ObjectiveSet, select_objectives
from paretochain.envs.reward import HORIZON, RewardExpression, kpi

#: The per-step reward of every objective of the catalogue (costs negated). ``fill_rate`` is divided
#: by the horizon, so that an episode's return is the mean per-period fill rate.
REWARDS: dict[str, RewardExpression] = {
    "profit": kpi("profit"),
    "fill_rate": kpi("fill_rate") / HORIZON,
    "holding_cost": -kpi("holding_cost"),
    "ordering_cost": -kpi("ordering_cost"),
    "shortage_units": -kpi("shortage_units"),
    "waste_units": -kpi("waste_units"),
    "total_cost": -kpi("total_cost"),
}


def build_objectives(
    names: list[str], scale: dict[str, float], horizon: int, overrides: dict[str, float]
) -> ObjectiveSet:
    """Declare the chosen objectives with reference points sized to the instance.

    Args:
        names: objectives chosen in the config, in reward order.
        scale: per-period magnitudes of the instance: ``demand`` (units), ``revenue``,
            ``holding`` (cost of holding a generous stock), ``ordering``, ``shortage``
            (penalty of losing all demand), ``stock`` (units of a generous stock).
        horizon: periods per episode.
        overrides: reference values given in the config, by objective name.
    """
    T = float(horizon)
    worst_cost = scale["holding"] + scale["ordering"] + scale["shortage"] + scale["waste"]
    catalogue = {
        "profit": Objective(
            "profit",
            "currency per episode",
            "revenue minus purchase, ordering, holding, shortage, waste and overflow costs",
            -T * worst_cost,
        ),
        "fill_rate": Objective(
            "fill_rate",
            "share of demand",
            "mean over periods of the share of demand served from stock in the period (1 = all)",
            0.0,
        ),
        "holding_cost": Objective(
            "holding_cost",
            "currency per episode (negated)",
            "minus the cost of stock on hand at the end of each period",
            -T * scale["holding"],
        ),
        "ordering_cost": Objective(
            "ordering_cost",
            "currency per episode (negated)",
            "minus purchase, transfer and fixed order costs",
            -T * scale["ordering"],
        ),
        "shortage_units": Objective(
            "shortage_units",
            "units per episode (negated)",
            "minus units lost (lost sales) or backordered at period end (backorders)",
            -T * scale["demand"] * (1.0 if scale["lost"] else 5.0),
        ),
        "waste_units": Objective(
            "waste_units", "units per episode (negated)", "minus units expired (perishable stock)", -T * scale["stock"]
        ),
        "total_cost": Objective(
            "total_cost",
            "currency per episode (negated)",
            "minus all costs: purchase, ordering, holding, shortage penalty, waste, overflow",
            -T * worst_cost,
        ),
    }
    return select_objectives(catalogue, names, "objectives", overrides)


def per_period_scale(
    mean: np.ndarray,
    price: np.ndarray,
    unit_cost: np.ndarray,
    holding: np.ndarray,
    penalty: np.ndarray,
    lead: float,
    lost: bool,
) -> dict[str, float]:
    """Magnitudes used for reference points (see :func:`build_objectives`)."""
    demand = float(mean.sum())
    per_sku = mean.sum(axis=0)
    stock = per_sku * (lead + 2) * 4
    return {
        "demand": demand,
        "revenue": float((price * per_sku).sum()),
        "holding": float((holding * stock).sum()),
        "ordering": float((unit_cost * per_sku * 2).sum()),
        "shortage": float((penalty * per_sku).sum()) * (1.0 if lost else 5.0),
        "waste": 0.0,
        "stock": float(stock.sum()),
        "lost": lost,
    }
