"""The Pricing objectives: each one's per-step reward as an expression of the period's KPIs, and its
declaration (unit, meaning, reference point). A new objective over existing KPIs is one entry in each.

**Customer satisfaction** of a period is::

    satisfaction = 1 - jump_weight * jump - gap_weight * gap - stockout_weight * stockout

- ``jump``: mean over SKUs and channels of ``|price_t - price_{t-1}| / list_price``
  (the season starts from list price, so opening at a discount counts as a jump);
- ``gap``: mean over SKUs of ``(max_c price - min_c price) / list_price``, the
  spread of one SKU's price across channels (0 with one channel);
- ``stockout``: share of the period's units asked for that could not be served.

The per-step reward is ``satisfaction / horizon``, so an episode's return is the
mean satisfaction of its periods: 1 for a season without price changes, channel
gaps or stock-outs.
"""

from __future__ import annotations

from paretochain.envs.objectives import Objective, ObjectiveSet, select_objectives
from paretochain.envs.reward import HORIZON, RewardExpression, kpi

#: The per-step reward of every objective of the catalogue (costs negated).
REWARDS: dict[str, RewardExpression] = {
    "gross_margin": kpi("gross_margin"),
    "customer_satisfaction": kpi("satisfaction") / HORIZON,
    "leftover_inventory": -kpi("leftover_value"),
    "revenue": kpi("revenue"),
    "units_sold": kpi("sales_units"),
    "promotion_spend": -kpi("promotion_spend"),
}


def build_objectives(
    names: list[str], scale: dict[str, float], horizon: int, overrides: dict[str, float]
) -> ObjectiveSet:
    """Declare the chosen objectives with reference points sized to the instance.

    Args:
        names: objectives chosen in the config, in reward order.
        scale: magnitudes of the instance: ``stock_value`` (cost of every unit that can
            be on hand in a season: initial stock plus the largest re-orders),
            ``promotion`` (largest promotion spend per period), ``fixed`` (largest
            order-line costs per period), ``holding`` (holding cost of the initial
            stock per period), ``worst_satisfaction`` (the lowest per-period score).
        horizon: periods per season.
        overrides: reference values given in the config, by objective name.
    """
    T = float(horizon)
    worst_margin = -(scale["stock_value"] + T * (scale["promotion"] + scale["fixed"] + scale["holding"]))
    catalogue = {
        "gross_margin": Objective(
            "gross_margin",
            "currency per season",
            "revenue net of channel commissions minus cost of goods sold, promotion spend, holding and order-line costs",
            worst_margin,
        ),
        "customer_satisfaction": Objective(
            "customer_satisfaction",
            "score per period (mean over the season)",
            "1 minus weighted penalties for price jumps, cross-channel price gaps and stock-outs (1 = none)",
            scale["worst_satisfaction"],
        ),
        "leftover_inventory": Objective(
            "leftover_inventory",
            "currency (negated)",
            "minus the cost value of the units on hand or on order when the season ends",
            -scale["stock_value"],
        ),
        "revenue": Objective(
            "revenue", "currency per season", "selling price times units sold, before channel commissions", 0.0
        ),
        "units_sold": Objective("units_sold", "units per season", "units sold over all SKUs and channels", 0.0),
        "promotion_spend": Objective(
            "promotion_spend",
            "currency per season (negated)",
            "minus the promotion budgets spent",
            -T * scale["promotion"],
        ),
    }
    for name, value in overrides.items():
        if name not in catalogue:
            raise ValueError(f"reference_point: unknown objective {name!r}; the catalogue has {sorted(catalogue)}")
        o = catalogue[name]
        catalogue[name] = Objective(o.name, o.unit, o.description, float(value))
    return select_objectives(catalogue, names, "objectives")
