"""Baselines for ``paretochain/Dispatch-v0``, all following the policy contract ``act(obs, preference, action_mask)``.

- :class:`NearestNeighbourPolicy`: the current vehicle serves the nearest feasible order; with
  none, it returns to the depot, or waits there while orders may still come. Reads only the
  observation and the mask.
- :class:`SavingsPolicy`: Clarke-Wright parallel savings over all the instance's orders (the
  static case: capacities only, windows and release times ignored when planning), then follows
  the routes.
- :class:`PyVRPHindsightPolicy`: solves the whole shift with PyVRP knowing every order in
  advance (release times as trip release dates, windows hard, multiple trips per vehicle)
  and follows the plan: what a dispatcher with perfect foresight achieves, the yardstick for
  online policies (a bound up to PyVRP's optimality gap and its release-date model).
- :class:`PyVRPRollingPolicy`: at every decision epoch re-solves the released, unserved orders
  with PyVRP from the vehicles' current positions, loads and free times, warm-started from the
  previous plan and time-limited, and sends the current vehicle to the first stop of its route.
- :class:`ReplayPolicy`: follows given routes (for instance a ``.sol`` file), one route per
  vehicle in turn.

The plan-following policies need the instance, so they take the environment (or its core)
at construction and read the current vehicle from it; a new plan is made whenever an
environment of the batch starts an episode.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from paretochain.envs.dispatch.core import DispatchCore

#: Marker of a return to the depot inside a vehicle's list of stops.
DEPOT = -1


def _core_of(env: Any) -> DispatchCore:
    """The :class:`DispatchCore` behind an env, a vector env or a core."""
    core = getattr(getattr(env, "unwrapped", env), "core", env)
    if not isinstance(core, DispatchCore):
        raise TypeError(f"expected a Dispatch environment or core, got {type(env).__name__}")
    return core


def distance_matrix(core: DispatchCore, env_index: int) -> np.ndarray:
    """Distances ``(D + N, D + N)`` between the nodes of one environment's instance."""
    if core._matrix is not None:
        return core._matrix.cpu().numpy()
    xy = core.state.coords[env_index].cpu().numpy()
    return np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))


class NearestNeighbourPolicy:
    """Nearest feasible order for the current vehicle (straight-line distance in the observation).

    Args:
        env: the environment, vector env or core (only its observation layout is used).
    """

    def __init__(self, env: Any) -> None:
        core = _core_of(env)
        self.layout = core.observation_layout
        self.max_orders = core.max_orders

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        if action_mask is None:
            raise ValueError("NearestNeighbourPolicy needs the action mask")
        N = self.max_orders
        blocks = self.layout.unflatten(obs)
        orders, vehicles = blocks["orders"], blocks["vehicles"]
        current = vehicles[..., 6:7]  # one-hot of the current vehicle
        here = (vehicles[..., 0:2] * current).sum(1)  # (B, 2)
        at_depot = (vehicles[..., 4] * current[..., 0]).sum(1) > 0.5
        dist = (orders[..., 0:2] - here.unsqueeze(1)).square().sum(-1)
        allowed = action_mask[:, :N].to(torch.bool)
        dist = torch.where(allowed, dist, torch.full_like(dist, math.inf))
        best = dist.argmin(1)
        any_order = allowed.any(1)
        wait_ok = action_mask[:, N + 1].to(torch.bool)
        fallback = torch.where(at_depot & wait_ok, N + 1, N)
        return torch.where(any_order, best, fallback)


class RoutePlanPolicy(ABC):
    """Follows a per-vehicle list of stops (order slots, :data:`DEPOT` for a return to the depot).

    Subclasses implement :meth:`plan`, called when an environment starts an episode. A stop
    that is not released yet is waited for (at the depot, or in place while waiting is
    allowed, else after returning to the depot); a stop that can no longer be served
    (window, capacity, shift end) is dropped.

    Args:
        env: the environment, vector env or core whose batch this policy drives.
    """

    def __init__(self, env: Any) -> None:
        self.core = _core_of(env)
        self.stops: list[list[list[int]]] = [
            [[] for _ in range(self.core.num_vehicles)] for _ in range(self.core.num_envs)
        ]
        #: per environment, the earliest time to leave the depot for a trip's first stop (where the plan has one)
        self.departures: list[dict[int, float]] = [{} for _ in range(self.core.num_envs)]

    @abstractmethod
    def plan(self, env_index: int) -> list[list[int]]:
        """Stops per vehicle for a new episode of environment ``env_index``."""

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        core = self.core
        mask = (action_mask if action_mask is not None else core.action_masks()).cpu().numpy()
        t = core.state.t.cpu().numpy()
        done = core.state.done.cpu().numpy()
        current = core.state.current.cpu().numpy()
        node = core.state.vehicle_node.cpu().numpy()
        home = core.home.cpu().numpy()
        released = (core.state.release <= core.state.clock.unsqueeze(1) + 1e-6).cpu().numpy()
        clock = core.state.clock.cpu().numpy()
        N = core.max_orders
        actions = np.full(core.num_envs, N + 1, dtype=np.int64)
        for b in range(core.num_envs):
            if t[b] == 0:
                self.departures[b] = {}
                self.stops[b] = [list(s) for s in self.plan(b)]
            if done[b]:
                continue
            v = int(current[b])
            at_depot = bool(node[b, v] == home[v])
            actions[b] = self._next(
                self.stops[b][v], mask[b], at_depot, released[b], N, self.departures[b], float(clock[b]) + core.wait
            )
        return torch.as_tensor(actions, device=core.device)

    @staticmethod
    def _next(
        stops: list[int],
        mask: np.ndarray,
        at_depot: bool,
        released: np.ndarray,
        N: int,
        departures: dict[int, float],
        after_wait: float,
    ) -> int:
        while stops:
            s = stops[0]
            if s == DEPOT:
                stops.pop(0)
                if not at_depot:
                    return N
                continue
            if at_depot and departures.get(s, 0.0) >= after_wait - 1e-6 and mask[N + 1]:
                return N + 1  # the plan leaves for this trip after the next wait would end
            if mask[s]:
                stops.pop(0)
                return s
            if not released[s]:
                if mask[N + 1]:
                    return N + 1
                return N  # back to the depot (already there: no time is left to wait, so the shift ends)
            stops.pop(0)  # can no longer be served by this vehicle
        return N


class ReplayPolicy(RoutePlanPolicy):
    """Replays fixed routes: route ``r`` goes to vehicle ``r % num_vehicles`` (later routes are further trips).

    Args:
        env: the environment, vector env or core.
        routes: depot-to-depot routes as customer numbers ``1..N`` (the ``.sol`` numbering), the same for every environment.
    """

    def __init__(self, env: Any, routes: Sequence[Sequence[int]]) -> None:
        super().__init__(env)
        V = self.core.num_vehicles
        per_vehicle: list[list[int]] = [[] for _ in range(V)]
        for r, route in enumerate(routes):
            stops = per_vehicle[r % V]
            if stops:
                stops.append(DEPOT)
            stops.extend(int(c) - 1 for c in route)
        self._plan = per_vehicle

    def plan(self, env_index: int) -> list[list[int]]:
        return self._plan


def savings_routes(
    dist: np.ndarray, demand: np.ndarray, customers: Sequence[int], capacity: float, depot: int = 0
) -> list[list[int]]:
    """Clarke-Wright parallel savings: routes (lists of node indices) from ``depot`` under a capacity.

    Args:
        dist: distances between nodes.
        demand: demand per node (depots 0).
        customers: the nodes to route.
        capacity: vehicle capacity.
        depot: the depot node.
    """
    routes: dict[int, list[int]] = {c: [c] for c in customers}
    route_of = {c: c for c in customers}
    load = {c: float(demand[c]) for c in customers}
    cs = np.asarray(customers)
    if cs.size < 2:
        return [[int(c)] for c in cs]
    i_idx, j_idx = np.triu_indices(cs.size, k=1)
    i_nodes, j_nodes = cs[i_idx], cs[j_idx]
    saving = dist[depot, i_nodes] + dist[depot, j_nodes] - dist[i_nodes, j_nodes]
    for k in np.argsort(-saving, kind="stable"):
        if saving[k] <= 0:
            break
        i, j = int(i_nodes[k]), int(j_nodes[k])
        ri, rj = route_of[i], route_of[j]
        if ri == rj or load[ri] + load[rj] > capacity + 1e-9:
            continue
        a, b = routes[ri], routes[rj]
        if a[-1] == i and b[0] == j:
            merged = a + b
        elif a[0] == i and b[-1] == j:
            merged = b + a
        elif a[-1] == i and b[-1] == j:
            merged = a + b[::-1]
        elif a[0] == i and b[0] == j:
            merged = a[::-1] + b
        else:
            continue
        routes[ri] = merged
        load[ri] += load.pop(rj)
        del routes[rj]
        for c in b:
            route_of[c] = ri
    return [[int(c) for c in r] for r in routes.values()]


def _assign(routes: list[list[int]], num_vehicles: int) -> list[list[int]]:
    """Stops per vehicle: routes dealt out in turn, with depot returns between a vehicle's trips."""
    per_vehicle: list[list[int]] = [[] for _ in range(num_vehicles)]
    for r, route in enumerate(routes):
        stops = per_vehicle[r % num_vehicles]
        if stops:
            stops.append(DEPOT)
        stops.extend(route)
    return per_vehicle


class SavingsPolicy(RoutePlanPolicy):
    """Clarke-Wright savings routes over all the instance's orders from the first depot, then followed.

    The static case: the plan uses capacities and distances only; stops whose window or
    release does not fit are waited for or dropped by :class:`RoutePlanPolicy`.
    """

    def plan(self, env_index: int) -> list[list[int]]:
        core = self.core
        D = core.num_depots
        dist = distance_matrix(core, env_index)
        demand = np.concatenate([np.zeros(D), core.demand[env_index].cpu().numpy()])
        customers = [D + i for i in np.flatnonzero(core.state.valid[env_index].cpu().numpy())]
        routes = savings_routes(dist, demand, customers, core.capacity)
        routes.sort(key=lambda r: -sum(demand[c] for c in r))
        return _assign([[c - D for c in r] for r in routes], core.num_vehicles)


# ---------------------------------------------------------------------------------------------- PyVRP
def _scales(core: DispatchCore) -> tuple[float, float]:
    """Integer scales for PyVRP: (distance units per env unit, time units per minute)."""
    conv = core.instance.convention if core.instance is not None else "exact"
    if conv == "round":
        return 1.0, 1.0
    if conv == "trunc1":
        return 10.0, 10.0
    return 1000.0, 100.0


class PyVRPHindsightPolicy(RoutePlanPolicy):
    """PyVRP's solution of the whole shift with every order known in advance, then followed.

    The plan has hard windows (on time, or within the env's allowed lateness with
    ``allow_lateness``), release times as PyVRP release dates (a trip leaves once its orders are
    known), one vehicle type per depot with reloads there (multiple trips), and optional orders
    with a prize far above any route cost (an order is left out only when no route can serve it).
    The follower leaves the depot for each trip at the planned time (to within one wait move).

    The plan is a **time-limited upper bound** on the cost of the best anticipative plan, not
    the best-known cost: PyVRP stops at its time limit, and on P-n101-k4, X-n101-k25, R101 and
    RC201 its 2-10 s plans were 0.2-3% above the best-known solutions. A policy within that
    margin of it may be as good as the hindsight optimum.

    Args:
        env: the environment, vector env or core.
        time_limit_s: PyVRP's run time per instance.
        seed: PyVRP's seed.
        allow_lateness: plan with the env's allowed lateness (serves more orders, fewer on time).
    """

    def __init__(self, env: Any, time_limit_s: float = 2.0, seed: int = 0, allow_lateness: bool = False) -> None:
        super().__init__(env)
        self.time_limit_s = time_limit_s
        self.seed = seed
        self.allow_lateness = allow_lateness
        self.last_cost: list[float] = [math.nan] * self.core.num_envs

    def plan(self, env_index: int) -> list[list[int]]:
        from pyvrp import solve
        from pyvrp.stop import MaxRuntime

        core = self.core
        slots = np.flatnonzero(core.state.valid[env_index].cpu().numpy())
        data, dscale = build_problem(core, env_index, slots, use_release=True, allow_lateness=self.allow_lateness)
        result = solve(data, stop=MaxRuntime(self.time_limit_s), seed=self.seed, display=False, collect_stats=False)
        self.last_cost[env_index] = result.best.distance() / dscale
        return routes_to_stops(result.best, slots, core, env_index, departures=self.departures[env_index])


def build_problem(
    core: DispatchCore,
    env_index: int,
    slots: np.ndarray,
    use_release: bool,
    vehicles: list[dict[str, float]] | None = None,
    allow_lateness: bool = False,
) -> tuple[Any, float]:
    """A PyVRP ``ProblemData`` for the orders in ``slots`` of one environment.

    Args:
        core: the batched core.
        env_index: which environment of the batch.
        slots: order slots to include.
        use_release: give clients their release times (hindsight); otherwise all are available now.
        vehicles: per vehicle ``node``, ``free`` (time), ``load`` and ``home``: one vehicle type each,
            starting at its node (rolling horizon); ``None``: the whole fleet at its depots at time 0.
        allow_lateness: let the plan start services up to the env's ``max_lateness_min`` after the
            window closes (PyVRP does not charge it); by default plans are on time.

    Returns:
        The problem and the distance scale (PyVRP distance per env distance unit).
    """
    from pyvrp import Client, Depot, Location, ProblemData, VehicleType

    dscale, tscale = _scales(core)
    D = core.num_depots
    b = env_index
    dist = distance_matrix(core, b)
    xy = core.state.coords[b].cpu().numpy()
    deadline = core.shift_end + core.config.max_overtime_min
    node_of_loc: list[int] = list(range(D))
    depots: list[Any] = [Depot(location=d, tw_late=math.floor(deadline * tscale)) for d in range(D)]
    vehicle_types: list[Any] = []
    cap = math.floor(core.capacity + 1e-9)
    if vehicles is None:
        counts = np.bincount(core.home.cpu().numpy(), minlength=D)
        for d in range(D):
            if counts[d]:
                vehicle_types.append(
                    VehicleType(
                        num_available=int(counts[d]),
                        capacity=[cap],
                        start_depot=d,
                        end_depot=d,
                        reload_depots=[d],
                        tw_late=math.floor(deadline * tscale),
                    )
                )
    else:
        for veh in vehicles:
            node, home = int(veh["node"]), int(veh["home"])
            start = home
            if node != home:
                start = len(depots)
                node_of_loc.append(node)
                depots.append(Depot(location=len(node_of_loc) - 1))
            vehicle_types.append(
                VehicleType(
                    num_available=1,
                    capacity=[cap],
                    start_depot=start,
                    end_depot=home,
                    reload_depots=[home],
                    tw_early=math.ceil(veh["free"] * tscale),
                    tw_late=math.floor(deadline * tscale),
                    initial_load=[round(veh["load"])],
                )
            )
    first_client_loc = len(node_of_loc)
    node_of_loc.extend(int(D + s) for s in slots)
    demand = core.demand[b].cpu().numpy()
    service = core.service[b].cpu().numpy()
    ws, we = core.window_start[b].cpu().numpy(), core.window_end[b].cpu().numpy()
    release = core.state.release[b].cpu().numpy()
    prize = int(10 * (dist.max() + 1) * dscale * (len(slots) + 1))
    late = core.max_lateness if allow_lateness else 0.0
    clients = [
        Client(
            location=first_client_loc + k,
            delivery=[round(demand[s])],
            service_duration=math.ceil(service[s] * tscale),
            tw_early=math.ceil(ws[s] * tscale - 1e-6),
            tw_late=math.floor((we[s] + late) * tscale + 1e-6),
            release_time=math.ceil(release[s] * tscale - 1e-6) if use_release else 0,
            prize=prize,
            required=False,
        )
        for k, s in enumerate(slots)
    ]
    nodes = np.asarray(node_of_loc)
    sub = dist[np.ix_(nodes, nodes)]
    dmat = np.rint(sub * dscale).astype(np.int64)
    tmat = np.ceil(sub / core.speed * tscale - 1e-6).astype(np.int64)
    locations = [Location(float(xy[n, 0]), float(xy[n, 1])) for n in nodes]
    return ProblemData(locations, clients, depots, vehicle_types, [dmat], [tmat]), dscale


def routes_to_stops(
    solution: Any,
    slots: np.ndarray,
    core: DispatchCore,
    env_index: int,
    vehicle_ids: list[int] | None = None,
    departures: dict[int, float] | None = None,
) -> list[list[int]]:
    """Stops per vehicle from a PyVRP solution (reload visits become :data:`DEPOT`).

    ``vehicle_ids[t]`` is the env vehicle of vehicle type ``t`` (rolling horizon); ``None``
    deals each type's routes to the vehicles of its depot in turn. ``departures``, when given,
    receives the planned time of leaving the depot for the first stop of every trip.
    """
    tscale = _scales(core)[1]
    V = core.num_vehicles
    stops: list[list[int]] = [[] for _ in range(V)]
    home = core.home.cpu().numpy()
    pools = {d: [v for v in range(V) if home[v] == d] for d in range(core.num_depots)}
    used = dict.fromkeys(pools, 0)
    for route in solution.routes():
        vt = route.vehicle_type()
        if vehicle_ids is not None:
            v = vehicle_ids[vt]
        else:
            d = route.start_depot()
            v = pools[d][used[d] % len(pools[d])]
            used[d] += 1
            if stops[v]:
                stops[v].append(DEPOT)
        sched = list(route.schedule())
        leave = sched[0].end_time / tscale
        for act in sched[1:-1]:
            if act.is_client():
                if departures is not None and leave is not None:
                    departures[int(slots[act.idx])] = leave
                leave = None
                stops[v].append(int(slots[act.idx]))
            elif act.is_depot():
                stops[v].append(DEPOT)
                leave = act.end_time / tscale
    return stops


class PyVRPRollingPolicy:
    """Rolling re-optimisation: re-solve the released, unserved orders with PyVRP at every decision.

    Each vehicle that has not parked is one vehicle type starting where it is (at the time it is
    free, with its current load occupying capacity until it reloads at its depot). The previous
    plan, restricted to the orders still open, warm-starts the search; each solve stops after
    ``time_limit_s``. The current vehicle goes to the first stop of its route; with an empty
    route it returns to the depot, or waits there while orders may still come.

    Args:
        env: the environment, vector env or core.
        time_limit_s: PyVRP's run time per decision.
        seed: PyVRP's seed.
        allow_lateness: plan with the env's allowed lateness (serves more orders, fewer on time).
    """

    def __init__(self, env: Any, time_limit_s: float = 0.1, seed: int = 0, allow_lateness: bool = False) -> None:
        self.core = _core_of(env)
        self.time_limit_s = time_limit_s
        self.seed = seed
        self.allow_lateness = allow_lateness
        self._previous: list[dict[int, list[int]]] = [{} for _ in range(self.core.num_envs)]

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        core = self.core
        mask = (action_mask if action_mask is not None else core.action_masks()).cpu().numpy()
        N = core.max_orders
        actions = np.full(core.num_envs, N + 1, dtype=np.int64)
        done = core.state.done.cpu().numpy()
        for b in range(core.num_envs):
            if int(core.state.t[b]) == 0:
                self._previous[b] = {}
            if not done[b]:
                actions[b] = self._decide(b, mask[b])
        return torch.as_tensor(actions, device=core.device)

    def _decide(self, b: int, mask: np.ndarray) -> int:
        from pyvrp import Solution, solve
        from pyvrp.stop import MaxRuntime

        core = self.core
        N = core.max_orders
        v_cur = int(core.state.current[b])
        at_depot = int(core.state.vehicle_node[b, v_cur]) == int(core.home[v_cur])
        clock = float(core.state.clock[b])
        feasible = np.flatnonzero(mask[:N])
        open_now = np.flatnonzero(
            ((core.state.valid[b] & ~core.state.served[b]) & (core.state.release[b] <= clock + 1e-6)).cpu().numpy()
        )
        if feasible.size == 0:
            return N + 1 if at_depot and mask[N + 1] else N
        parked = core.state.parked[b].cpu().numpy()
        vehicle_ids = [v for v in range(core.num_vehicles) if not parked[v]]
        vehicles = [
            {
                "node": int(core.state.vehicle_node[b, v]),
                "free": max(float(core.vehicle_free[b, v]), clock),
                "load": float(core.vehicle_load[b, v]),
                "home": int(core.home[v]),
            }
            for v in vehicle_ids
        ]
        data, _ = build_problem(
            core, b, open_now, use_release=False, vehicles=vehicles, allow_lateness=self.allow_lateness
        )
        initial = None
        previous = self._previous[b]
        if previous:
            position = {int(s): k for k, s in enumerate(open_now)}
            routes = [[position[s] for s in previous.get(v, []) if s in position] for v in vehicle_ids]
            try:
                from pyvrp import Route

                initial = Solution(data, [Route(data, r, t) for t, r in enumerate(routes) if r])
            except Exception:  # a stale plan that no longer fits the problem: start cold
                initial = None
        result = solve(
            data,
            stop=MaxRuntime(self.time_limit_s),
            seed=self.seed,
            display=False,
            collect_stats=False,
            initial_solution=initial,
        )
        stops = routes_to_stops(result.best, open_now, core, b, vehicle_ids=list(range(len(vehicle_ids))))
        self._previous[b] = {vehicle_ids[t]: [s for s in stops[t] if s != DEPOT] for t in range(len(vehicle_ids))}
        mine = stops[vehicle_ids.index(v_cur)]
        for s in mine:
            if s == DEPOT:
                return N if not at_depot else (N + 1 if mask[N + 1] else N)
            if mask[s]:
                return int(s)
        if not at_depot:
            return N
        return N + 1 if mask[N + 1] else N
