"""The Dispatch objective catalogue and how each is computed from a decision step's KPIs."""

from __future__ import annotations

import torch

from paretochain.envs.objectives import Objective, ObjectiveSet, select_objectives

#: Per-step reward of each catalogue objective from the step's KPI tensors and the
#: number of orders of each environment's instance (``(B,)``). ``on_time_rate`` is
#: divided by the number of orders so that an episode's return is the share of all
#: orders served within their window, in [0, 1].
REWARD_FROM_KPIS = {
    "travel_distance": lambda k, n: -k["travel_distance"],
    "on_time_rate": lambda k, n: k["orders_on_time"] / n,
    "unserved_orders": lambda k, n: -k["orders_unserved"],
    "lateness_min": lambda k, n: -k["lateness_min"],
    "vehicles_used": lambda k, n: -k["vehicles_used"],
    "overtime_min": lambda k, n: -k["overtime_min"],
}

CATALOGUE_NAMES = sorted(REWARD_FROM_KPIS)


def build_objectives(
    names: list[str], num_orders: int, num_vehicles: int, distance_bound: float, max_lateness: float, max_overtime: float, unit: str, overrides: dict[str, float]
) -> ObjectiveSet:
    """Declare the chosen objectives with reference points sized to the instance.

    Args:
        names: objectives chosen in the config, in reward order.
        num_orders: orders per episode.
        num_vehicles: fleet size.
        distance_bound: a worst plausible travel distance (every order as its own round trip).
        max_lateness: the most lateness one service may have.
        max_overtime: the most overtime one vehicle may have.
        unit: the distance unit (``"km"`` or ``"instance units"``).
        overrides: reference values given in the config, by objective name.
    """
    catalogue = {
        "travel_distance": Objective("travel_distance", f"{unit} per episode (negated)", "minus the distance driven by all vehicles", -distance_bound),
        "on_time_rate": Objective("on_time_rate", "share of orders", "share of all orders served within their delivery window (1 = all)", 0.0),
        "unserved_orders": Objective("unserved_orders", "orders per episode (negated)", "minus the orders not served when the episode ends", -float(num_orders)),
        "lateness_min": Objective("lateness_min", "minutes per episode (negated)", "minus the minutes by which services started after their window closed", -num_orders * max(max_lateness, 1.0)),
        "vehicles_used": Objective("vehicles_used", "vehicles per episode (negated)", "minus the vehicles that served at least one order", -float(num_vehicles)),
        "overtime_min": Objective("overtime_min", "minutes per episode (negated)", "minus the minutes vehicles came back after the shift end", -num_vehicles * max(max_overtime, 1.0)),
    }
    for name, value in overrides.items():
        if name not in catalogue:
            raise ValueError(f"reference_point: unknown objective {name!r}; the catalogue has {sorted(catalogue)}")
        o = catalogue[name]
        catalogue[name] = Objective(o.name, o.unit, o.description, float(value))
    return select_objectives(catalogue, names, "objectives")


def reward_vector(names: list[str], kpis: dict[str, torch.Tensor], num_orders: torch.Tensor) -> torch.Tensor:
    """Stack the chosen objectives' per-step rewards into float32 ``(B, k)``."""
    return torch.stack([REWARD_FROM_KPIS[n](kpis, num_orders) for n in names], dim=1).to(torch.float32)
