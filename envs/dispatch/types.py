"""Data types of the Dispatch family: a static routing instance, the action layout and the batch state."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from paretochain.envs.state import BatchState


@dataclass
class StaticInstance:
    """One routing instance with the depots first: node ``d < num_depots`` is depot ``d``, node ``num_depots + i`` is customer ``i``.

    Attributes:
        name: instance name (from the file's NAME, or the file stem).
        coords: node coordinates ``(M, 2)``, depots first (zeros when the file has only a matrix).
        distance: travel distance between nodes ``(M, M)``, after the distance convention; travel time equals distance.
        demand: units per customer ``(N,)``.
        service: service time per customer ``(N,)``.
        window: earliest and latest start of service per customer ``(N, 2)``.
        capacity: vehicle capacity in units.
        num_depots: depots at the head of ``coords``.
        depot_close: the depots' closing time (the shift end); ``inf`` when the file has none.
        num_vehicles: fleet size from the file (``VEHICLES``), or ``None``.
        min_vehicles: the ``k`` of a CVRPLIB name such as ``A-n32-k5``, or ``None``.
        convention: how distances were made: ``round``, ``trunc1``, ``exact`` or ``explicit``.
        file_node: for each node, its 0-based position in the file (depots may be listed anywhere there).
        path: the file read.
    """

    name: str
    coords: np.ndarray
    distance: np.ndarray
    demand: np.ndarray
    service: np.ndarray
    window: np.ndarray
    capacity: float
    num_depots: int
    depot_close: float
    num_vehicles: int | None
    min_vehicles: int | None
    convention: str
    file_node: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    path: str = ""

    @property
    def num_customers(self) -> int:
        return int(self.demand.shape[0])


@dataclass
class DispatchState(BatchState):
    """Everything that changes within an episode of ``B`` fleets, besides the keys and decision counts of
    :class:`~paretochain.envs.state.BatchState` (``t`` counts decisions).

    ``N`` order slots, ``D`` depots, ``V`` vehicles; nodes are the depots first, then the order slots.
    Times are minutes from the shift start, distances in the instance's unit (km for generated
    instances); quantities in units of load.

    The instance of the episode, drawn at reset:

    Attributes:
        coords: node coordinates, float64 ``(B, D + N, 2)``.
        order_data: per order slot: window start, window end (latest on-time start of service),
            service time, demand, float64 ``(B, N, 4)``.
        release: time each order becomes visible, float64 ``(B, N)``.
        valid: the slot holds an order (episodes may have fewer orders than slots), bool ``(B, N)``.
        num_orders: orders in the episode (at least 1), float64 ``(B,)``.
        kpi_scale: per KPI column, 1 / ``num_orders`` for the per-order KPIs and 1 for the others,
            float64 ``(B, len(KPI_NAMES))``.
        to_depot: distance from every node to each depot (generated instances; zeros for files, which
            read the instance's matrix), float64 ``(B, D, D + N)``.
        node_x: node x coordinates (generated instances), float64 ``(B, D + N)``.
        node_y: node y coordinates (generated instances), float64 ``(B, D + N)``.
        node_xy: node coordinates normalised to the unit square, as observed, float32 ``(B, D + N, 2)``.
        order_static: the observed order features that do not change within the episode,
            float32 ``(B, N, len(ORDER_FEATURES))``.
        latest_start: the latest feasible start of service per order (window end plus the allowed
            lateness and the tolerance), float64 ``(B, N)``.
        visible_from: release time minus the tolerance, +inf for empty slots, float64 ``(B, N)``.
        service_return: service time plus the drive from each order back to each depot, in minutes,
            float64 ``(B, D, N)``.

    What the decisions change:

    Attributes:
        open_count: orders neither served nor lost, int64 ``(B,)``.
        served: the order was served, bool ``(B, N)``.
        late: the order was served after its window end, bool ``(B, N)``.
        vehicle_node: node where each vehicle is or is heading, int64 ``(B, V)``.
        vehicle_state: per vehicle: time it is next free, units delivered on its current trip,
            minutes of overtime so far, float64 ``(B, V, 3)``.
        vehicle_used: the vehicle served an order this episode, bool ``(B, V)``.
        parked: the vehicle ended its shift, bool ``(B, V)``.
        clock: the earliest time a vehicle is free (the decision's time), float64 ``(B,)``.
        current: the vehicle that decides next, int64 ``(B,)``.
        done: every vehicle is parked, bool ``(B,)``.
    """

    coords: torch.Tensor
    order_data: torch.Tensor
    release: torch.Tensor
    valid: torch.Tensor
    num_orders: torch.Tensor
    kpi_scale: torch.Tensor
    to_depot: torch.Tensor
    node_x: torch.Tensor
    node_y: torch.Tensor
    node_xy: torch.Tensor
    order_static: torch.Tensor
    latest_start: torch.Tensor
    visible_from: torch.Tensor
    service_return: torch.Tensor
    open_count: torch.Tensor
    served: torch.Tensor
    late: torch.Tensor
    vehicle_node: torch.Tensor
    vehicle_state: torch.Tensor
    vehicle_used: torch.Tensor
    parked: torch.Tensor
    clock: torch.Tensor
    current: torch.Tensor
    done: torch.Tensor
