"""The Dispatch objective catalogue and how each is computed from a decision step's KPIs."""

from __future__ import annotations

import torch

from paretochain.envs.objectives import Objective, ObjectiveSet, select_objectives

#: Per-step reward of each catalogue objective: (KPI of the step, sign, divided by the
#: number of orders of the instance). ``on_time_rate`` is divided by the number of
#: orders so that an episode's return is the share of all orders served within their
#: window, in [0, 1]; the costs are negated.
REWARD_FROM_KPIS: dict[str, tuple[str, float, bool]] = {
    "travel_distance": ("travel_distance", -1.0, False),
    "on_time_rate": ("orders_on_time", 1.0, True),
    "unserved_orders": ("orders_unserved", -1.0, False),
    "lateness_min": ("lateness_min", -1.0, False),
    "vehicles_used": ("vehicles_used", -1.0, False),
    "overtime_min": ("overtime_min", -1.0, False),
}

CATALOGUE_NAMES = sorted(REWARD_FROM_KPIS)


def build_objectives(
    names: list[str],
    num_orders: int,
    num_vehicles: int,
    distance_bound: float,
    max_lateness: float,
    max_overtime: float,
    unit: str,
    overrides: dict[str, float],
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
        "travel_distance": Objective(
            "travel_distance",
            f"{unit} per episode (negated)",
            "minus the distance driven by all vehicles",
            -distance_bound,
        ),
        "on_time_rate": Objective(
            "on_time_rate", "share of orders", "share of all orders served within their delivery window (1 = all)", 0.0
        ),
        "unserved_orders": Objective(
            "unserved_orders",
            "orders per episode (negated)",
            "minus the orders not served by the episode's end (each counted when it is lost)",
            -float(num_orders),
        ),
        "lateness_min": Objective(
            "lateness_min",
            "minutes per episode (negated)",
            "minus the minutes by which services started after their window closed",
            -num_orders * max(max_lateness, 1.0),
        ),
        "vehicles_used": Objective(
            "vehicles_used",
            "vehicles per episode (negated)",
            "minus the vehicles that served at least one order",
            -float(num_vehicles),
        ),
        "overtime_min": Objective(
            "overtime_min",
            "minutes per episode (negated)",
            "minus the minutes vehicles came back after the shift end",
            -num_vehicles * max(max_overtime, 1.0),
        ),
    }
    return select_objectives(catalogue, names, "objectives", overrides)


def reward_weights(
    names: list[str], kpi_names: tuple[str, ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The linear map from a step's KPI matrix to its reward vector.

    Returns:
        ``weights`` float64 ``(n_kpis, k)`` with the sign of each objective's KPI, and ``per_order``
        bool ``(n_kpis,)``: the KPI columns to divide by the number of orders first.
    """
    weights = torch.zeros((len(kpi_names), len(names)), dtype=torch.float64, device=device)
    per_order = torch.zeros(len(kpi_names), dtype=torch.bool, device=device)
    for j, name in enumerate(names):
        kpi, sign, divide = REWARD_FROM_KPIS[name]
        weights[kpi_names.index(kpi), j] = sign
        per_order[kpi_names.index(kpi)] |= divide
    return weights, per_order
