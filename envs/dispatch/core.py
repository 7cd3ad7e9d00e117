"""Batched dynamics of the Dispatch family: one dispatch decision for B fleets at once.

Event time. Each environment has a clock, the earliest time at which one of its vehicles is
free. That vehicle (ties go to the lowest index) is the *current vehicle*, and the action
chooses its next move:

- ``a < max_orders``: drive to order slot ``a`` and serve it. Arriving before the window opens,
  it waits; service starts at ``max(arrival, window start)``, and lasts the order's service time.
  Service may start up to ``max_lateness_min`` after the window closes (counted as lateness);
  later is infeasible. With ``max_lateness_min: 0`` windows are hard.
- ``a == max_orders``: drive back to the vehicle's depot, where it unloads (a new trip may start);
  when the vehicle is already at its depot, its shift ends (it parks for the rest of the episode).
- ``a == max_orders + 1``: wait ``wait_min`` where it is.

Then the clock moves to the next vehicle-free time and the orders whose release time has come
become visible. An order is feasible for the current vehicle when it is visible and unserved,
fits in the vehicle's remaining capacity, service can start before its window closes (plus the
allowed lateness), and the vehicle can still reach its depot by the shift end plus
``max_overtime_min`` afterwards. The depot move is always allowed; waiting is allowed while
orders remain open and the vehicle could still return in time afterwards. So every masked
policy respects capacities, and windows whenever lateness is disallowed. When every order is
served, vehicles at their depot park automatically.

The episode terminates when every vehicle is parked. An unserved order is counted in
``orders_unserved`` once, at the step where it is lost: when the clock passes its latest start
(its window end plus the allowed lateness; no vehicle can start it any more), or when the
episode ends with it open. The per-step counts sum to the orders left unserved at the end, and
a policy that lets orders lapse hears of it when they lapse, not only at the end. A terminated environment's further steps change nothing (its mask allows
only waiting). Times compare with a tolerance of 1e-6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from paretochain.envs import _rng
from paretochain.envs.core import BatchedCore, KPIs, ObservationLayout
from paretochain.envs.dispatch.config import DispatchConfig
from paretochain.envs.dispatch.generator import FileInstances, GeneratedInstances
from paretochain.envs.dispatch.instances import load_instance
from paretochain.envs.dispatch.reward import REWARDS, config_objectives, longest_round_trip, unserved_penalty
from paretochain.envs.dispatch.types import DispatchState
from paretochain.envs.reward import reward_weights
from paretochain.errors import ActionError, ConfigError

KPI_NAMES = (
    "travel_distance",
    "orders_served",
    "orders_on_time",
    "lateness_min",
    "vehicles_used",
    "overtime_min",
    "orders_unserved",
    "wait_min",
    "unserved_penalty",
)

ORDER_FEATURES = (
    "x",
    "y",
    "demand",
    "window_start",
    "window_end",
    "service",
    "release",
    "open",
    "served",
    "travel_time",
)
VEHICLE_FEATURES = ("x", "y", "free_in", "load", "at_depot", "parked", "current")
GLOBAL_FEATURES = ("clock", "open_orders", "served_orders", "vehicles_parked")

_EPS = 1e-6
_RESET_SALT = 0x2F6B1C3D


@dataclass(frozen=True)
class _Numbers:
    """The numbers of the rules, as 0-dim tensors on the core's device.

    An operation with a 0-dim tensor costs less than one with a Python number, which is wrapped into a new
    tensor at every call; a decision of one env makes dozens of them.
    """

    depot_move: torch.Tensor  #: the action index of the depot move (int64); smaller ones serve an order slot
    last_slot: torch.Tensor  #: the last order slot (int64)
    num_depots: torch.Tensor  #: int64; order slot ``i`` is node ``num_depots + i``
    none: torch.Tensor  #: 0 (int64)
    last_period: torch.Tensor  #: the last decision before truncation, ``horizon - 1`` (int64)
    zero: torch.Tensor  #: 0.0 (float64, as every number below)
    inf: torch.Tensor
    eps: torch.Tensor  #: the tolerance of time comparisons
    speed: torch.Tensor  #: distance units per minute
    wait: torch.Tensor  #: minutes of the wait move
    capacity: torch.Tensor  #: units per vehicle
    shift_end: torch.Tensor  #: minutes
    deadline: torch.Tensor  #: the latest return to the depot: shift end plus the allowed overtime and the tolerance
    penalty: torch.Tensor  #: the cost of one unserved order
    travel_scale: torch.Tensor  #: what an observed travel time is divided by: speed times shift end


def _and_not(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a & ~b`` for bool tensors in one operation: of two bools, only ``True > False`` holds."""
    return a > b


class DispatchCore(BatchedCore[DispatchState]):
    """Batched dispatch dynamics; see the module docstring for the rules of a decision.

    Args:
        config: the environment's config.
        num_envs: batch size.
        device: torch device for every state tensor.
    """

    fixed_horizon = False

    def __init__(self, config: DispatchConfig, num_envs: int = 1, device: str | torch.device = "cpu") -> None:
        super().__init__(num_envs, device)
        cfg = self.config = config
        dev = self.device
        f64: dict[str, Any] = dict(dtype=torch.float64, device=dev)
        if cfg.instance_source == "file":
            assert cfg.instance is not None
            inst = load_instance(cfg.instance.path, cfg.instance.format, cfg.instance.distance)
            self.instance = inst
            n_cust = inst.num_customers
            N = cfg.max_orders or n_cust
            if n_cust > N:
                raise ConfigError(f"max_orders ({N}) is smaller than the {n_cust} customers of {inst.path}")
            D = inst.num_depots
            V = cfg.num_vehicles or inst.num_vehicles or inst.min_vehicles or max(1, math.ceil(n_cust / 5))
            capacity = cfg.capacity_units or inst.capacity
            if capacity < inst.demand.max():
                raise ConfigError(
                    f"capacity_units ({capacity}) is below the largest demand ({inst.demand.max():g}) of {inst.path}"
                )
            depot_dist = inst.distance[:D, D:].min(axis=0)
            if cfg.shift_length_min is not None:
                shift_end = float(cfg.shift_length_min)
            elif math.isfinite(inst.depot_close):
                shift_end = inst.depot_close
            else:
                shift_end = float((2 * depot_dist + inst.service).sum())
            self.speed = 1.0
            self.distance_unit = "instance units"
            self.source = FileInstances(inst, cfg.release, N, shift_end, dev)
            self._matrix: torch.Tensor | None = self.source.distance
            self._matrix_t = self._matrix.t().contiguous()
            self.coord_scale = float(max(np.ptp(inst.coords, axis=0).max(), 1.0))
            self.coord_origin = torch.as_tensor(inst.coords.min(axis=0), **f64)
            distance_bound = float(2 * depot_dist.sum())
            round_trip = longest_round_trip(cfg, inst.distance[:D, D:] + inst.distance[D:, :D].T)
            n_orders = n_cust
        else:
            g = cfg.generator
            n_orders = g.num_customers
            N = cfg.max_orders or n_orders
            D, V = cfg.num_depots, cfg.generated_vehicles
            capacity = cfg.generated_capacity
            shift_end = cfg.generated_shift
            self.speed = cfg.speed_km_per_min
            self.distance_unit = "km"
            self.source = GeneratedInstances(g, cfg.release, N, D, self.speed, shift_end, dev)  # type: ignore[assignment]
            self._matrix = None
            self.coord_scale = g.area_km
            self.coord_origin = torch.zeros(2, **f64)
            distance_bound = (
                n_orders * g.area_km * math.sqrt(2) * (1.0 if D == 1 and g.depot_placement == "centre" else 2.0)
            )
            round_trip = longest_round_trip(cfg)
            self.instance = None  # type: ignore[assignment]
        #: the cost of one unserved order, distance units (the ``service_cost`` objective)
        self.unserved_penalty = unserved_penalty(cfg, round_trip)
        self.max_orders, self.num_depots, self.num_vehicles = N, D, V
        self.num_nodes = D + N
        self.shift_end = shift_end
        self.deadline = shift_end + cfg.max_overtime_min + _EPS
        self.max_lateness = cfg.max_lateness_min
        self.wait = cfg.wait_min
        self.capacity = capacity
        self.home = torch.arange(V, device=dev) % D
        self._home_b = self.home.expand(num_envs, V)
        self.horizon = 2 * N + V * (3 + math.ceil((shift_end + cfg.max_overtime_min) / cfg.wait_min))

        self.single_action_space = spaces.Discrete(N + 2)
        lay = ObservationLayout()
        lay.add(
            "orders",
            (N, len(ORDER_FEATURES)),
            "per order slot: " + ", ".join(ORDER_FEATURES) + " (zeros until released)",
        )
        lay.add("order_valid", (N,), "1 where the slot holds a released order (served or not)")
        lay.add("vehicles", (V, len(VEHICLE_FEATURES)), "per vehicle: " + ", ".join(VEHICLE_FEATURES))
        lay.add("depots", (D, 2), "depot coordinates, normalised like the orders'")
        lay.add("globals", (len(GLOBAL_FEATURES),), ", ".join(GLOBAL_FEATURES))
        self.observation_layout = lay
        # every feature is a share of the instance's extent, the capacity or the shift: in [0, 1],
        # except times, which may run past the shift end by the allowed overtime
        high = np.float32(2.0 + cfg.max_overtime_min / shift_end)
        self._obs_high = float(high)
        self.single_observation_space = spaces.Box(np.float32(0.0), high, shape=(lay.size,), dtype=np.float32)

        self.objective_names = list(cfg.objectives)
        self.objectives = config_objectives(cfg, n_orders, V, distance_bound, self.distance_unit, self.unserved_penalty)
        weights, per_order = reward_weights(REWARDS, self.objective_names, KPI_NAMES)
        self._reward_weights = torch.as_tensor(weights, dtype=torch.float64, device=dev)
        self._per_order = torch.as_tensor(per_order, device=dev)

        def number(value: float) -> torch.Tensor:
            return torch.tensor(value, **f64)

        def count(value: int) -> torch.Tensor:
            return torch.tensor(value, dtype=torch.int64, device=dev)

        self._n = _Numbers(
            depot_move=count(N),
            last_slot=count(N - 1),
            num_depots=count(D),
            none=count(0),
            last_period=count(self.horizon - 1),
            zero=number(0.0),
            inf=number(math.inf),
            eps=number(_EPS),
            speed=number(self.speed),
            wait=number(self.wait),
            capacity=number(capacity),
            shift_end=number(shift_end),
            deadline=number(self.deadline),
            penalty=number(self.unserved_penalty),
            travel_scale=number(self.speed * shift_end),
        )
        B = num_envs
        self._bidx = torch.arange(B, device=dev)
        self._vehicle_ids = torch.arange(V, device=dev)
        # what the global features are divided by: the shift end, the order slots (twice), the fleet
        self._global_scale = torch.tensor([shift_end, N, N, V], **f64)
        self._init_state(
            DispatchState(
                **self.initial_keys(),
                coords=torch.zeros((B, D + N, 2), **f64),
                order_data=torch.zeros((B, N, 4), **f64),
                release=torch.zeros((B, N), **f64),
                valid=torch.zeros((B, N), dtype=torch.bool, device=dev),
                num_orders=torch.ones(B, **f64),
                kpi_scale=torch.ones((B, len(KPI_NAMES)), **f64),
                to_depot=torch.zeros((B, D, D + N), **f64),
                node_x=torch.zeros((B, D + N), **f64),
                node_y=torch.zeros((B, D + N), **f64),
                node_xy=torch.zeros((B, D + N, 2), dtype=torch.float32, device=dev),
                order_static=torch.zeros((B, N, len(ORDER_FEATURES)), dtype=torch.float32, device=dev),
                latest_start=torch.zeros((B, N), **f64),
                visible_from=torch.zeros((B, N), **f64),
                service_return=torch.zeros((B, D, N), **f64),
                open_count=torch.zeros(B, dtype=torch.int64, device=dev),
                served=torch.zeros((B, N), dtype=torch.bool, device=dev),
                late=torch.zeros((B, N), dtype=torch.bool, device=dev),
                vehicle_node=self.home.expand(B, V).clone(),
                vehicle_state=torch.zeros((B, V, 3), **f64),
                vehicle_used=torch.zeros((B, V), dtype=torch.bool, device=dev),
                parked=torch.zeros((B, V), dtype=torch.bool, device=dev),
                clock=torch.zeros(B, **f64),
                current=torch.zeros(B, dtype=torch.int64, device=dev),
                done=torch.zeros(B, dtype=torch.bool, device=dev),
            )
        )
        self._row: torch.Tensor | None = None
        self._here: torch.Tensor | None = None
        self._mask: torch.Tensor | None = None
        self._last_obs: torch.Tensor | None = None
        self._stale_rows: torch.Tensor | None = None

    def _state_replaced(self) -> None:
        super()._state_replaced()
        self._row = self._mask = self._last_obs = self._stale_rows = None

    # ------------------------------------------------------------------ state views
    @property
    def window_start(self) -> torch.Tensor:
        """Earliest start of service per order ``(B, N)``."""
        return self.state.order_data[..., 0]

    @property
    def window_end(self) -> torch.Tensor:
        """Latest on-time start of service per order ``(B, N)``."""
        return self.state.order_data[..., 1]

    @property
    def service(self) -> torch.Tensor:
        """Service time per order ``(B, N)``."""
        return self.state.order_data[..., 2]

    @property
    def demand(self) -> torch.Tensor:
        """Units per order ``(B, N)``."""
        return self.state.order_data[..., 3]

    @property
    def vehicle_free(self) -> torch.Tensor:
        """Time each vehicle is next free ``(B, V)``."""
        return self.state.vehicle_state[..., 0]

    @property
    def vehicle_load(self) -> torch.Tensor:
        """Units delivered on each vehicle's current trip ``(B, V)``."""
        return self.state.vehicle_state[..., 1]

    @property
    def vehicle_overtime(self) -> torch.Tensor:
        """Minutes each vehicle has come back after the shift end ``(B, V)``."""
        return self.state.vehicle_state[..., 2]

    # ------------------------------------------------------------------ distances
    def _distance_row(self) -> torch.Tensor:
        """Distances ``(B, D + N)`` from the current vehicle's node to every node (cached per decision)."""
        if self._row is None:
            st = self.state
            self._here = st.vehicle_node.gather(1, st.current.unsqueeze(1))
            if self._matrix is not None:
                self._row = torch.index_select(self._matrix, 0, self._here.view(-1))
            else:
                x, y = st.node_x, st.node_y
                self._row = torch.hypot(x - x.gather(1, self._here), y - y.gather(1, self._here))
        return self._row

    def _current_node(self) -> torch.Tensor:
        """The node ``(B, 1)`` where the current vehicle is (cached per decision, with :meth:`_distance_row`)."""
        self._distance_row()
        assert self._here is not None
        return self._here

    def _service_and_return(self, to_home: torch.Tensor) -> torch.Tensor:
        """Service time plus the drive from each order to the current vehicle's depot ``(B, N)``."""
        st = self.state
        if self.num_depots == 1:
            return st.service_return[:, 0]
        return st.service_return[self._bidx, self.home[st.current]]

    def _to_home(self) -> torch.Tensor:
        """Distances ``(B, D + N)`` from every node to the current vehicle's depot."""
        st = self.state
        if self.num_depots == 1:
            return self._matrix_t[0].expand(self.num_envs, -1) if self._matrix is not None else st.to_depot[:, 0]
        home = self.home[st.current]
        if self._matrix is not None:
            return self._matrix_t[home]
        return st.to_depot[self._bidx, home]

    # ------------------------------------------------------------------ reset / observe
    def _reset_envs(self, mask: torch.Tensor) -> None:
        idx = torch.nonzero(mask).squeeze(1)
        keys = _rng.mix32(self.state.stream_key[idx] ^ _RESET_SALT)
        inst = self.source.sample(keys)
        self.state.coords[idx] = inst.coords
        self.state.order_data[idx] = torch.stack(
            [inst.window[..., 0], inst.window[..., 1], inst.service, inst.demand], dim=2
        )
        self.state.release[idx] = inst.release
        self.state.valid[idx] = inst.valid
        self.state.num_orders[idx] = inst.valid.sum(1).to(torch.float64).clamp(min=1)
        self.state.kpi_scale[idx] = torch.where(self._per_order, 1.0 / self.state.num_orders[idx].unsqueeze(1), 1.0)
        if self._matrix is None:
            depots = inst.coords[:, : self.num_depots]
            self.state.to_depot[idx] = torch.cdist(depots, inst.coords)
            self.state.node_x[idx] = inst.coords[..., 0]
            self.state.node_y[idx] = inst.coords[..., 1]
        T, D = self.shift_end, self.num_depots
        xy = ((inst.coords - self.coord_origin) / self.coord_scale).to(torch.float32)
        self.state.node_xy[idx] = xy
        self.state.order_static[idx] = torch.stack(
            [
                xy[:, D:, 0],
                xy[:, D:, 1],
                (inst.demand / self.capacity).float(),
                (inst.window[..., 0] / T).float(),
                (inst.window[..., 1] / T).float(),
                (inst.service / T).float(),
                (inst.release / T).float(),
                torch.zeros_like(xy[:, D:, 0]),
                torch.zeros_like(xy[:, D:, 0]),
                torch.zeros_like(xy[:, D:, 0]),
            ],
            dim=2,
        )
        self.state.open_count[idx] = inst.valid.sum(1)
        self.state.latest_start[idx] = inst.window[..., 1] + (self.max_lateness + _EPS)
        self.state.visible_from[idx] = torch.where(inst.valid, inst.release - _EPS, math.inf)
        to_depot = (
            self._matrix_t[:D].expand(idx.shape[0], -1, -1) if self._matrix is not None else self.state.to_depot[idx]
        )
        self.state.service_return[idx] = inst.service.unsqueeze(1) + to_depot[:, :, D:] / self.speed
        V = self.num_vehicles
        self.state.served[idx] = False
        self.state.late[idx] = False
        self.state.vehicle_node[idx] = self.home.expand(idx.shape[0], V)
        self.state.vehicle_state[idx] = 0.0
        self.state.vehicle_used[idx] = False
        self.state.parked[idx] = False
        self.state.clock[idx] = 0.0
        self.state.current[idx] = 0
        self.state.done[idx] = False
        self._row = None
        self._mask = None
        self._stale_rows = idx

    def check_action(self, action: torch.Tensor) -> None:
        """Raise :class:`ActionError` for a wrong shape, an index outside the space or a masked-out move.

        The same checks as the base class, in fewer tensor operations (the single env runs this every step).
        """
        n = self.max_orders + 2
        if tuple(action.shape) != (self.num_envs,):
            raise ActionError(f"action has shape {tuple(action.shape)}, expected ({self.num_envs},) for Discrete({n})")
        if action.is_floating_point() and bool((action != action.round()).any()):
            raise ActionError(f"Discrete actions must be integers, got {action}")
        a = action.long()
        allowed = self.action_masks().gather(1, a.clamp(0, n - 1).unsqueeze(1)).squeeze(1) & (a >= 0) & (a < n)
        if bool(allowed.all()):
            return
        env = int(torch.nonzero(~allowed)[0])
        value = int(a[env])
        if not 0 <= value < n:
            raise ActionError(f"action {value} of env {env} is outside Discrete({n})")
        raise ActionError(f"action {value} of env {env} is not allowed by its action mask")

    def action_masks(self) -> torch.Tensor:
        """Bool ``(B, max_orders + 2)``: feasible orders, then the depot move, then waiting."""
        if self._mask is None:
            self._mask = self._compute_masks()
        return self._mask

    def fallback_actions(self, action: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Lenient mode's replacement of a forbidden move: wait where waiting is allowed, else the depot move
        (always allowed while the episode runs)."""
        wait = self.max_orders + 1
        return torch.where(masks[:, wait], wait, self.max_orders)

    def _compute_masks(self) -> torch.Tensor:
        # per-row values are (B, 1) columns, broadcast against the (B, N) rows of the orders
        st, n = self.state, self._n
        D = self.num_depots
        cur = st.current.unsqueeze(1)
        done = st.done.unsqueeze(1)
        row = self._distance_row()
        to_home = self._to_home()
        now = st.clock.unsqueeze(1)
        arrive = now + (row[:, D:] / n.speed if self.speed != 1.0 else row[:, D:])
        start = torch.maximum(arrive, self.window_start)
        room = n.capacity - self.vehicle_load.gather(1, cur) + n.eps
        ok = _and_not(st.visible_from <= now, st.served)
        ok &= self.demand <= room
        ok &= start <= st.latest_start
        ok &= start + self._service_and_return(to_home) <= n.deadline
        ok = _and_not(ok, done)
        back = to_home.gather(1, self._current_node()) / n.speed
        wait_ok = ((st.open_count.unsqueeze(1) > n.none) & (now + n.wait + back <= n.deadline)) | done
        return torch.cat([ok, ~done, wait_ok], dim=1)

    def observe(self) -> torch.Tensor:
        # After a partial reset only the restarted rows change: recompute those, copy the rest.
        rows = self._stale_rows
        self._stale_rows = None
        if rows is not None and self._last_obs is not None and rows.numel() < self.num_envs:
            obs = self._last_obs.clone()
            obs[rows] = self._observe(rows)
        else:
            obs = self._observe(None)
        self._last_obs = obs
        return obs

    def _observe(self, rows: torch.Tensor | None) -> torch.Tensor:
        """Observations of all environments, or of the environments ``rows``."""
        st = self.state

        def sel(x: torch.Tensor) -> torch.Tensor:
            return x if rows is None else x[rows]

        N, V, D = self.max_orders, self.num_vehicles, self.num_depots
        served, parked, clock, node = (
            sel(st.served),
            sel(st.parked),
            sel(st.clock),
            sel(st.vehicle_node),
        )
        B = clock.shape[0]
        now = clock.unsqueeze(1)
        node_xy = sel(st.node_xy)
        visible_f = (sel(st.visible_from) <= now).to(torch.float32)
        served_f = served.to(torch.float32)  # a served order is always visible
        travel = sel(self._distance_row())[:, D:] / self._n.travel_scale  # from the current vehicle
        out = torch.empty((B, self.observation_layout.size), dtype=torch.float32, device=self.device)
        width = N * len(ORDER_FEATURES)
        orders = out[:, :width].view(B, N, len(ORDER_FEATURES))
        torch.mul(sel(st.order_static), visible_f.unsqueeze(2), out=orders)  # the last three features are set below
        orders[..., 7] = visible_f - served_f
        orders[..., 8] = served_f
        orders[..., 9] = travel.clamp(max=self._obs_high).to(torch.float32) * visible_f
        state = sel(st.vehicle_state)
        free_in = torch.where(parked, self._n.zero, state[..., 0] - now) / self._n.shift_end
        is_current = _and_not(self._vehicle_ids == sel(st.current).unsqueeze(1), sel(st.done).unsqueeze(1))
        vehicles = torch.stack(  # mixed dtypes promote to float64, converted once
            [
                node_xy[..., 0].gather(1, node),
                node_xy[..., 1].gather(1, node),
                free_in,
                state[..., 1] / self._n.capacity,
                node == self.home,
                parked,
                is_current,
            ],
            dim=2,
        ).to(torch.float32)
        served_count = sel(st.num_orders) - sel(st.open_count)  # served orders are all visible
        counts = torch.stack(
            [clock, visible_f.sum(1) - served_count, served_count, parked.sum(1, dtype=torch.float64)], dim=1
        )
        torch.cat(
            [
                visible_f,
                vehicles.view(B, V * len(VEHICLE_FEATURES)),
                node_xy[:, :D].reshape(B, D * 2),
                (counts / self._global_scale).to(torch.float32),
            ],
            dim=1,
            out=out[:, width:],
        )
        return out

    # ------------------------------------------------------------------ dynamics
    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, KPIs]:
        # per-row values are (B, 1) columns: gathered from and scattered into the (B, V) and (B, N) rows as they
        # are, and joined into the (B, k) KPIs with one cat
        st, n = self.state, self._n
        vi = st.current.unsqueeze(1)
        a = action.reshape(-1, 1).long()
        live = ~st.done.unsqueeze(1)
        row = self._distance_row()
        pos = self._current_node()
        home = self._home_b.gather(1, vi)
        is_order = (a < n.depot_move) & live
        is_depot = (a == n.depot_move) & live
        is_wait = (a > n.depot_move) & live
        order_f = is_order.to(torch.float64)
        slot = torch.minimum(a, n.last_slot)
        order = st.order_data.gather(1, slot.unsqueeze(2).expand(-1, 1, 4))
        window_start, window_end, service, demand = order.unbind(2)
        vi3 = vi.unsqueeze(2).expand(-1, 1, 3)
        _, load_v, overtime_v = st.vehicle_state.gather(1, vi3).unbind(2)
        target = torch.where(is_order, slot + n.num_depots, torch.where(is_depot, home, pos))
        dist = row.gather(1, target) * live
        now = st.clock.unsqueeze(1)
        arrive = now + (dist / n.speed if self.speed != 1.0 else dist)
        start = torch.where(is_order, torch.maximum(arrive, window_start), arrive)
        lateness = (start - window_end).clamp(min=0.0) * order_f
        finish = torch.where(is_wait, now + n.wait, start + service * order_f)
        new_load = torch.where(is_depot, n.zero, load_v + demand * order_f)
        new_overtime = torch.where(is_depot, torch.maximum(overtime_v, arrive - n.shift_end), overtime_v)
        late = lateness > n.eps  # only a service has lateness
        used_v = st.vehicle_used.gather(1, vi)

        st.vehicle_state.scatter_(1, vi3, torch.stack([finish, new_load, new_overtime], dim=2))
        st.vehicle_node.scatter_(1, vi, target)
        st.vehicle_used.scatter_(1, vi, used_v | is_order)
        st.parked.scatter_(1, vi, st.parked.gather(1, vi) | (is_depot & (pos == home)))
        st.served.scatter_(1, slot, st.served.gather(1, slot) | is_order)
        st.late.scatter_(1, slot, st.late.gather(1, slot) | late)
        st.open_count = st.open_count - is_order.sum(1)
        st.parked |= (st.open_count == n.none).unsqueeze(1) & (st.vehicle_node == self.home)

        next_clock, nxt = torch.where(st.parked, n.inf, self.vehicle_free).min(dim=1)
        done = st.parked.all(1)
        st.current = torch.where(done, st.current, nxt)
        st.clock = torch.where(done, st.clock, next_clock)
        st.done = done
        self._row = self._here = self._mask = self._last_obs = None

        truncated = _and_not(st.t >= n.last_period, done)
        end = (done | truncated).unsqueeze(1) & live
        # orders lost at this step: the clock (the earliest a vehicle is free) passed their latest start, or the
        # episode ended. The clock never runs back, so an unserved order is counted once: in the step whose clock
        # interval [now, new clock) holds its latest start, or in the last step if that is still ahead. (A
        # terminated environment's clock stands still, so it loses none.)
        still_open = _and_not(st.valid, st.served) & (st.latest_start >= now)
        lapsed = (st.latest_start < st.clock.unsqueeze(1)) | end
        lost = (still_open & lapsed).sum(1, keepdim=True).to(torch.float64)
        kpis = torch.cat(  # in the order of KPI_NAMES
            [
                dist,
                order_f,
                torch.where(late, n.zero, order_f),
                lateness,
                torch.where(used_v, n.zero, order_f),
                new_overtime - overtime_v,
                lost,
                torch.where(is_wait, n.wait, (start - arrive) * order_f),
                lost * n.penalty,
            ],
            dim=1,
        )
        reward = ((kpis * st.kpi_scale) @ self._reward_weights).to(torch.float32)
        return reward, done.clone(), truncated, KPIs(KPI_NAMES, values=kpis.to(torch.float32))

    def snapshot(self, env_index: int = 0) -> dict[str, np.ndarray]:
        i = env_index
        visible = self.state.valid[i] & (self.state.release[i] <= self.state.clock[i] + _EPS)
        return {
            "t": np.array(int(self.state.t[i])),
            "clock": np.array(float(self.state.clock[i])),
            "coords": self.state.coords[i].cpu().numpy().copy(),
            "num_depots": np.array(self.num_depots),
            "valid": self.state.valid[i].cpu().numpy().copy(),
            "visible": visible.cpu().numpy().copy(),
            "served": self.state.served[i].cpu().numpy().copy(),
            "late": self.state.late[i].cpu().numpy().copy(),
            "demand": self.demand[i].cpu().numpy().copy(),
            "window": torch.stack([self.window_start[i], self.window_end[i]], dim=1).cpu().numpy().copy(),
            "vehicle_node": self.state.vehicle_node[i].cpu().numpy().copy(),
            "vehicle_free": self.vehicle_free[i].cpu().numpy().copy(),
            "vehicle_load": self.vehicle_load[i].cpu().numpy().copy(),
            "parked": self.state.parked[i].cpu().numpy().copy(),
            "current": np.array(int(self.state.current[i])),
            "done": np.array(bool(self.state.done[i])),
            "capacity": np.array(self.capacity),
            "shift_end": np.array(self.shift_end),
        }
