"""The Dispatch objectives: each one's per-step reward as an expression of the decision step's KPIs, and
its declaration (unit, meaning, reference point). A new objective over existing KPIs is one entry in each."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from paretochain.envs.objectives import Objective, ObjectiveSet, select_objectives
from paretochain.envs.reward import ORDERS, RewardExpression, kpi
from paretochain.errors import ConfigError

if TYPE_CHECKING:
    from paretochain.envs.dispatch.config import DispatchConfig

#: The per-step reward of every objective of the catalogue (costs negated). ``on_time_rate`` is
#: divided by the episode's orders, so that its return is the share of all orders served within
#: their window, in [0, 1]. ``service_cost`` charges every lost order its penalty (KPI
#: ``unserved_penalty``, in distance units) beside the distance driven, so that leaving an order
#: unserved always costs more than driving to it: under any weights, parking the fleet is never
#: the best policy.
REWARDS: dict[str, RewardExpression] = {
    "service_cost": -kpi("travel_distance") - kpi("unserved_penalty"),
    "travel_distance": -kpi("travel_distance"),
    "on_time_rate": kpi("orders_on_time") / ORDERS,
    "unserved_orders": -kpi("orders_unserved"),
    "lateness_min": -kpi("lateness_min"),
    "vehicles_used": -kpi("vehicles_used"),
    "overtime_min": -kpi("overtime_min"),
}


def longest_round_trip(cfg: DispatchConfig, round_trips: np.ndarray | None = None) -> float:
    """The longest depot -> customer -> depot drive an instance of ``cfg`` can hold, in distance units.

    Args:
        cfg: the config.
        round_trips: for an instance file, every depot -> customer -> depot distance (any shape);
            None for generated instances, whose bound is the square's: from a single centre depot
            to a corner and back (``sqrt(2) * area_km``), from depots anywhere along the diagonal
            and back (``2 * sqrt(2) * area_km``).
    """
    if round_trips is not None:
        return float(np.max(round_trips)) if round_trips.size else 0.0
    g = cfg.generator
    centred = cfg.num_depots == 1 and g.depot_placement == "centre"
    return g.area_km * math.sqrt(2) * (1.0 if centred else 2.0)


def unserved_penalty(cfg: DispatchConfig, round_trip: float) -> float:
    """The cost of one order left unserved (distance units): ``cfg.unserved_penalty``, or twice ``round_trip``.

    Twice the longest round trip (:func:`longest_round_trip`): serving any order on a trip of its
    own costs at most half its penalty, which leaves room for the detour of a vehicle already out.
    """
    if cfg.unserved_penalty is not None:
        return float(cfg.unserved_penalty)
    return 2.0 * max(round_trip, 1e-9)


def build_objectives(
    names: list[str],
    num_orders: int,
    num_vehicles: int,
    distance_bound: float,
    max_lateness: float,
    max_overtime: float,
    unit: str,
    overrides: dict[str, float],
    penalty: float = 0.0,
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
        penalty: the cost of one unserved order in distance units (:func:`unserved_penalty`).
    """
    catalogue = {
        "service_cost": Objective(
            "service_cost",
            f"{unit} per episode (negated)",
            f"minus the distance driven plus {penalty:.4g} {unit} for every order left unserved "
            "(twice the longest depot-customer-depot round trip unless the config sets unserved_penalty)",
            -(distance_bound + num_orders * penalty),
        ),
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


def config_objectives(
    cfg: DispatchConfig, num_orders: int, num_vehicles: int, distance_bound: float, unit: str, penalty: float
) -> ObjectiveSet:
    """The objectives a Dispatch config chooses, declared for its instance (both decision modes use it).

    ``penalty`` is the cost of one unserved order (:func:`unserved_penalty`).

    Raises:
        ConfigError: an objective or reference point the catalogue does not have.
    """
    try:
        return build_objectives(
            list(cfg.objectives),
            num_orders,
            num_vehicles,
            distance_bound,
            cfg.max_lateness_min,
            cfg.max_overtime_min,
            unit,
            cfg.reference_point,
            penalty,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
