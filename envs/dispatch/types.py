"""Data types of the Dispatch family: a static routing instance and the action layout."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np


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

    def route_cost(self, routes: list[list[int]]) -> float:
        """Total distance of depot-to-depot routes given as customer numbers ``1..N`` (the ``.sol`` numbering), from depot 0."""
        total = 0.0
        for route in routes:
            nodes = [0, *[self.num_depots + c - 1 for c in route], 0]
            total += float(sum(self.distance[a, b] for a, b in itertools.pairwise(nodes)))
        return total


#: Meaning of the action index ``a`` of an environment with ``max_orders`` order slots:
#: ``a < max_orders`` serve order slot ``a``; ``a == max_orders`` go to the depot
#: (end the shift when already there); ``a == max_orders + 1`` wait.
def depot_action(max_orders: int) -> int:
    """Index of the return-to-depot move."""
    return max_orders


def wait_action(max_orders: int) -> int:
    """Index of the wait move."""
    return max_orders + 1
