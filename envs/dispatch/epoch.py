"""``paretochain/DispatchEpoch-v0``: epoch dispatch, the Dispatch family's second decision mode.

Every ``epoch.epoch_min`` minutes of the shift the policy decides, for every released order
not yet served, whether to **dispatch it now** or **postpone** it to the next epoch. The
dispatched orders are routed by PyVRP with the fleet (each vehicle from its depot, from the
moment it is back there), and the routes are driven at once; postponed orders wait for the
next epoch. An order is *must-go* when a vehicle leaving the depot at the next epoch could
not serve it on time (or not be back by the shift end plus the allowed overtime); at the last
epoch every open order is must-go. The mask forces them.

Rules, in the order a step applies them:

1. The decisions are checked against the mask (``invalid_action``: ``"raise"`` or the
   lenient ``"fallback"``, which forces must-go orders to go and keeps the rest of the
   decisions; the number of replaced decisions is ``info["actions_replaced"]``).
2. The dispatched orders are routed: PyVRP, one vehicle type per group of vehicles with the
   same depot and start time (``max(back at depot, epoch + dispatch_margin_min)``), reloads
   at the depot (several trips per vehicle), windows hard (or up to ``max_lateness_min`` late
   with ``epoch.allow_lateness``), return by the shift end plus ``max_overtime_min``. The
   search stops after ``epoch.routing_iterations`` iterations (deterministic for a seed) or
   ``epoch.routing_time_limit_s`` seconds, whichever comes first. A dispatched order that no
   route can take stays open for the next epoch.
3. The routes are driven in continuous time (leaving at the planned start, waiting at a
   customer whose window has not opened); their distance, services, lateness, vehicles used
   and overtime are the step's KPIs.
4. The clock moves to the next epoch. Open orders that can no longer be served from there are
   lost (``orders_unserved``, counted once, in the step where they are lost); after the last
   epoch every order not served is lost, so at the episode's end every order is served or
   counted unserved.

Instances come from the Dispatch family's generator or instance file, drawn from the same keys:
an episode of this env and one of ``paretochain/Dispatch-v0`` with the same seed and config
have the same orders. The dynamics run on the host (numpy and PyVRP), one environment per object;
:class:`~paretochain.envs.dispatch.epoch_core.EpochDispatchCore` steps a batch of them (``make_vec``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from pydantic import Field

from paretochain.envs import _rng
from paretochain.envs.config import ConfigModel
from paretochain.envs.core import ObservationLayout
from paretochain.envs.dispatch.config import DispatchConfig
from paretochain.envs.dispatch.core import KPI_NAMES
from paretochain.envs.dispatch.generator import FileInstances, GeneratedInstances
from paretochain.envs.dispatch.instances import load_instance
from paretochain.envs.dispatch.reward import REWARDS, config_objectives, longest_round_trip, unserved_penalty
from paretochain.envs.reward import reward_weights
from paretochain.envs.views import check_invalid_action_mode, refuse_non_numeric
from paretochain.errors import ActionError, ConfigError

ORDER_FEATURES = (
    "x",
    "y",
    "demand",
    "window_start",
    "window_end",
    "service",
    "release",
    "must_go",
    "depot_distance",
    "nearest_open_distance",
    "wait_slack",
)
VEHICLE_FEATURES = ("available_in", "available_now", "used")
GLOBAL_FEATURES = (
    "clock",
    "epochs_left",
    "last_epoch",
    "open_orders",
    "served_orders",
    "due_next_epoch",
    "vehicles_back_next_epoch",
)
#: KPIs of a step: the per-stop mode's, plus the decisions replaced by the fallback.
EPOCH_KPI_NAMES = (*KPI_NAMES, "actions_replaced")

_EPS = 1e-6
_RESET_SALT = 0x2F6B1C3D  # the per-stop core's: the same seed gives the same instance in both modes


class EpochConfig(ConfigModel):
    """Epochs and routing of the epoch decision mode."""

    epoch_min: float = Field(default=60.0, ge=1, le=100_000, description="minutes between two decisions")
    dispatch_margin_min: float = Field(
        default=0.0, ge=0, le=100_000, description="a route dispatched at an epoch leaves the depot this much later"
    )
    routing_iterations: int = Field(
        default=500, ge=1, le=10_000_000, description="PyVRP iterations per routing (deterministic for a seed)"
    )
    routing_time_limit_s: float = Field(
        default=2.0, gt=0, le=3_600, description="PyVRP run time cap per routing, seconds (stops earlier)"
    )
    routing_seed: int = Field(default=0, ge=0, le=2**31 - 1, description="PyVRP's seed")
    allow_lateness: bool = Field(
        default=False, description="routes may start services up to max_lateness_min after a window closes"
    )
    routing_workers: int = Field(
        default=0,
        ge=0,
        le=256,
        description="batched view (make_vec): processes routing the environments of a step in parallel; 0 routes "
        "them one after the other in this process (the results are the same)",
    )


class EpochDispatchConfig(DispatchConfig):
    """A Dispatch config with the epoch decision mode's settings under ``epoch``."""

    epoch: EpochConfig = Field(default_factory=EpochConfig)


@dataclass
class EpochInstance:
    """One episode's orders and fleet, numpy on the host (float64; D depots, then N order slots).

    Attributes:
        coords: ``(D + N, 2)`` node coordinates, depots first.
        distance: ``(D + N, D + N)`` distances; ``travel``: the same in minutes.
        demand, service, window_start, window_end, release: ``(N,)`` per order slot.
        valid: ``(N,)`` slots holding an order.
        home: ``(V,)`` each vehicle's depot.
    """

    coords: np.ndarray
    distance: np.ndarray
    travel: np.ndarray
    demand: np.ndarray
    service: np.ndarray
    window_start: np.ndarray
    window_end: np.ndarray
    release: np.ndarray
    valid: np.ndarray
    home: np.ndarray


@dataclass
class Trip:
    """One dispatched trip: vehicle, order slots in visiting order, departure and return (minutes)."""

    vehicle: int
    orders: list[int]
    depart: float
    back: float


def solve_routing(data: Any, iterations: int, time_limit_s: float, seed: int) -> Any:
    """PyVRP's best solution of ``data``: at most ``iterations`` iterations (deterministic for a seed),
    capped by ``time_limit_s`` seconds."""
    from pyvrp import solve
    from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria

    stop = MultipleCriteria([MaxIterations(iterations), MaxRuntime(time_limit_s)])
    return solve(data, stop=stop, seed=seed, display=False, collect_stats=False).best


@dataclass
class RoutingJob:
    """One epoch's routing, in plain data (numpy and numbers): what :func:`route_orders` solves.

    A worker process receives it as it is (the batched view routes its environments in a pool).

    Attributes:
        instance: the episode's instance.
        slots: ``(n,)`` the order slots to route.
        vehicle_starts: ``(V,)`` earliest departure of each vehicle, minutes.
        capacity, deadline, lateness, scales: as :func:`routing_problem` takes them.
        iterations, time_limit_s, seed: as :func:`solve_routing` takes them.
    """

    instance: EpochInstance
    slots: np.ndarray
    vehicle_starts: np.ndarray
    capacity: float
    deadline: float
    lateness: float
    scales: tuple[float, float]
    iterations: int
    time_limit_s: float
    seed: int


def route_orders(job: RoutingJob) -> list[Trip]:
    """The trips of PyVRP's best routes for ``job`` (none when it holds no order)."""
    if job.slots.size == 0:
        return []
    data, groups = routing_problem(
        job.instance,
        job.slots,
        job.vehicle_starts,
        release=None,
        capacity=job.capacity,
        deadline=job.deadline,
        lateness=job.lateness,
        scales=job.scales,
    )
    best = solve_routing(data, job.iterations, job.time_limit_s, job.seed)
    return solution_trips(best, job.slots, groups, job.scales[1])


class _BatchedView:
    """``EpochDispatchEnv.core_cls``: the batched view's class, imported on first use (its module imports this one)."""

    def __get__(self, instance: object, owner: type) -> type:
        from paretochain.envs.dispatch.epoch_core import EpochDispatchCore

        return EpochDispatchCore


class EpochDispatchEnv(gym.Env):
    """A shift of deliveries decided epoch by epoch: dispatch each released order now or later.

    ## Description
    The orders, fleet and objectives of ``paretochain/Dispatch-v0`` (generated instances or an
    instance file, release times during the shift). At each epoch (every ``epoch.epoch_min``
    minutes from 0, until the first epoch at or after the last possible release time) the
    policy chooses which open orders to dispatch; PyVRP routes them with the fleet and the
    routes are driven (see :mod:`paretochain.envs.dispatch.epoch` for the rules).

    ## Action space
    ``MultiDiscrete([2] * max_orders)``: 1 dispatches the order in that slot now, 0 postpones
    it (the only choice for a slot without an open order). The mask (``info["action_mask"]``,
    ``env.action_masks()``) is flat, ``2 * max_orders`` booleans, slot by slot ``[postpone
    allowed, dispatch allowed]`` (the sb3-contrib layout): must-go orders allow only 1, slots
    without an open order only 0. What a masked-out decision does is ``invalid_action``:
    ``"fallback"`` (default) replaces it by the allowed one and counts it in
    ``info["actions_replaced"]``; ``"raise"`` raises :class:`~paretochain.errors.ActionError`.
    Values other than 0 and 1, a wrong shape, ``None`` or text raise ``ActionError`` in both.

    ## Observation space
    A flat float32 ``Box``; ``env.observation_layout`` gives each block's slice and shape. N
    order slots, V vehicles, D depots. Coordinates are shifted and divided by the instance's
    extent, times by the shift end, distances by the largest distance of a generated square
    (or of the file's matrix).

    | block | shape | content |
    | --- | --- | --- |
    | ``orders`` | N x 11 | x, y, demand / capacity, window start, window end, service time, release time, must-go (1/0), distance to the nearest depot, distance to the nearest other open order (to the depot when alone), wait slack (how long after the next epoch's departure a vehicle can still leave for it; 0 when must-go); zeros for slots without an open order |
    | ``order_valid`` | N | 1 where the slot holds an open order (released, not served, not lost): the padding mask for an attention encoder |
    | ``vehicles`` | V x 3 | time until back at its depot, back now (1/0), used so far (1/0) |
    | ``depots`` | D x 2 | depot coordinates |
    | ``globals`` | 7 | clock, share of epochs left, last epoch (1/0), open orders / N, served orders / N, orders due at the next epoch / N (open orders that will be must-go there if postponed now), vehicles back at their depot by the next epoch / V |

    ## Rewards
    The Dispatch catalogue (``objectives``, default ``[service_cost, on_time_rate,
    unserved_orders]``), each entry "higher is better", per epoch: minus the distance of the
    routes dispatched plus ``unserved_penalty`` per order lost (``service_cost``; the penalty as
    in ``Dispatch-v0``), minus the distance alone, the on-time services / orders, minus the orders lost, minus the lateness
    minutes, minus the vehicles used for the first time, minus the added overtime. ``info``
    carries the step's KPIs (those of ``Dispatch-v0`` plus ``actions_replaced``), the
    dispatched ``trips`` (:class:`Trip`), ``orders_routed`` (dispatched and routed) and the
    next ``action_mask``.

    ## Starting state
    A new instance per episode, drawn from the seed exactly as ``Dispatch-v0`` draws it; every
    vehicle empty at its depot; the clock at 0.

    ## Episode end
    Termination after the last epoch's step (everything open is dispatched there). No
    truncation.

    ## Arguments
    ``gymnasium.make("paretochain/DispatchEpoch-v0", config=None, render_mode=None,
    invalid_action="fallback", **overrides)``: ``config`` is a packaged Dispatch config
    name, a YAML path, a mapping or an :class:`EpochDispatchConfig`; ``overrides`` replace its
    top-level fields (``epoch={"epoch_min": 30}``). ``render_mode`` ``"ansi"`` gives a status line.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"]}  # noqa: RUF012 (Gymnasium's attribute)
    config_cls = EpochDispatchConfig
    #: the batched view (``make_vec``): :class:`~paretochain.envs.dispatch.epoch_core.EpochDispatchCore`
    core_cls = _BatchedView()

    def __init__(
        self,
        config: Any = None,
        render_mode: str | None = None,
        invalid_action: str = "fallback",
        **overrides: Any,
    ) -> None:
        cfg = self.config = EpochDispatchConfig.load(config, **overrides)
        self.invalid_action = check_invalid_action_mode(invalid_action)
        if render_mode not in (None, "ansi"):
            raise ConfigError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        cpu = torch.device("cpu")
        if cfg.instance_source == "file":
            assert cfg.instance is not None
            inst = load_instance(cfg.instance.path, cfg.instance.format, cfg.instance.distance)
            n_cust = inst.num_customers
            N = cfg.max_orders or n_cust
            if n_cust > N:
                raise ConfigError(f"max_orders ({N}) is smaller than the {n_cust} customers of {inst.path}")
            D = inst.num_depots
            V = cfg.num_vehicles or inst.num_vehicles or inst.min_vehicles or max(1, math.ceil(n_cust / 5))
            capacity = float(cfg.capacity_units or inst.capacity)
            if capacity < inst.demand.max():
                raise ConfigError(
                    f"capacity_units ({capacity}) is below the largest demand ({inst.demand.max():g}) of {inst.path}"
                )
            depot_dist = inst.distance[:D, D:].min(axis=0)
            if cfg.shift_length_min is not None:
                shift_end = float(cfg.shift_length_min)
            elif math.isfinite(inst.depot_close):
                shift_end = float(inst.depot_close)
            else:
                shift_end = float((2 * depot_dist + inst.service).sum())
            self.speed = 1.0
            self.distance_unit = "instance units"
            self.source: GeneratedInstances | FileInstances = FileInstances(inst, cfg.release, N, shift_end, cpu)
            #: the file's distances between all nodes (padding slots included); None for generated instances
            self.explicit_distance: np.ndarray | None = self.source.distance.numpy()
            self.coord_scale = float(max(np.ptp(inst.coords, axis=0).max(), 1.0))
            self.coord_origin = inst.coords.min(axis=0)
            self.distance_scale = float(max(inst.distance.max(), 1e-9))
            distance_bound = float(2 * depot_dist.sum())
            round_trip = longest_round_trip(cfg, inst.distance[:D, D:] + inst.distance[D:, :D].T)
            self.scales = {"round": (1.0, 1.0), "trunc1": (10.0, 10.0)}.get(inst.convention, (1000.0, 100.0))
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
            self.source = GeneratedInstances(g, cfg.release, N, D, self.speed, shift_end, cpu)
            self.explicit_distance = None
            self.coord_scale = g.area_km
            self.coord_origin = np.zeros(2)
            self.distance_scale = g.area_km * math.sqrt(2)
            distance_bound = n_orders * g.area_km * math.sqrt(2) * 2.0
            round_trip = longest_round_trip(cfg)
            self.scales = (1000.0, 100.0)
        self.max_orders, self.num_depots, self.num_vehicles = N, D, V
        self.capacity, self.shift_end = capacity, shift_end
        self.deadline = shift_end + cfg.max_overtime_min
        ep = cfg.epoch
        self.lateness_allowed = cfg.max_lateness_min if ep.allow_lateness else 0.0
        last_release = cfg.release.release_end_fraction * shift_end
        self.num_epochs = math.ceil(last_release / ep.epoch_min - 1e-9) + 1
        self.home = np.arange(V) % D

        lay = ObservationLayout()
        lay.add("orders", (N, len(ORDER_FEATURES)), "per order slot: " + ", ".join(ORDER_FEATURES))
        lay.add("order_valid", (N,), "1 where the slot holds an open order")
        lay.add("vehicles", (V, len(VEHICLE_FEATURES)), "per vehicle: " + ", ".join(VEHICLE_FEATURES))
        lay.add("depots", (D, 2), "depot coordinates, normalised like the orders'")
        lay.add("globals", (len(GLOBAL_FEATURES),), ", ".join(GLOBAL_FEATURES))
        self.observation_layout = lay
        self._obs_high = float(np.float32(2.0 + cfg.max_overtime_min / shift_end))
        self.observation_space = spaces.Box(np.float32(0.0), np.float32(self._obs_high), (lay.size,), np.float32)
        self.action_space = spaces.MultiDiscrete(np.full(N, 2, dtype=np.int64))
        #: the cost of one unserved order, distance units (the ``service_cost`` objective)
        self.unserved_penalty = unserved_penalty(cfg, round_trip)
        self.objective_names = list(cfg.objectives)
        self.objectives = config_objectives(cfg, n_orders, V, distance_bound, self.distance_unit, self.unserved_penalty)
        self.reward_dim = len(self.objective_names)
        # the family's reward expressions over the KPIs an epoch reports (the same table as the per-stop mode)
        self._kpi_names = sorted({name for o in self.objective_names for name, _ in REWARDS[o].terms})
        self._reward_weights, self._per_order = reward_weights(REWARDS, self.objective_names, self._kpi_names)
        self.reward_space = spaces.Box(-np.inf, np.inf, (self.reward_dim,), np.float32)
        self._key_lo, self._key_hi, self._episode = 0, 0, 0
        self.stream_key = 0
        self.instance: EpochInstance | None = None

    # ------------------------------------------------------------------ episode state
    def _draw_instance(self, stream_key: int) -> EpochInstance:
        keys = torch.tensor([_rng.mix32(stream_key ^ _RESET_SALT)], dtype=torch.int64)
        batch = self.source.sample(keys)
        coords = batch.coords[0].numpy().copy()
        if self.explicit_distance is not None:
            distance = self.explicit_distance
        else:
            distance = np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1))
        window = batch.window[0].numpy()
        return EpochInstance(
            coords=coords,
            distance=distance,
            travel=distance / self.speed,
            demand=batch.demand[0].numpy().copy(),
            service=batch.service[0].numpy().copy(),
            window_start=window[:, 0].copy(),
            window_end=window[:, 1].copy(),
            release=batch.release[0].numpy().copy(),
            valid=batch.valid[0].numpy().copy(),
            home=self.home,
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start a new episode: the seed's instance (or the stream's next one), the clock at epoch 0."""
        super().reset(seed=seed)
        if seed is not None:
            self._key_lo, self._key_hi = _rng.split_seed(int(seed))
            self._episode = 0
        else:
            self._key_lo, self._key_hi = _rng.next_episode_seed(self._key_lo, self._key_hi, self._episode + 1)
            self._episode += 1
        self.stream_key = int(_rng.derive_key(self._key_lo, self._key_hi))
        return self.start_episode(self.stream_key)

    def start_episode(self, stream_key: int) -> tuple[np.ndarray, dict]:
        """Start the episode of the random stream ``stream_key`` (what :meth:`reset` does once it has the key).

        The batched view (:class:`~paretochain.envs.dispatch.epoch_core.EpochDispatchCore`) starts its
        environments' episodes from the stream keys of its state, so a seed plays the same episode there.
        """
        self.stream_key = int(stream_key)
        inst = self.instance = self._draw_instance(self.stream_key)
        N, V = self.max_orders, self.num_vehicles
        self.epoch = 0
        self.served = np.zeros(N, dtype=bool)
        self.lost = np.zeros(N, dtype=bool)
        self.late = np.zeros(N, dtype=bool)
        self.vehicle_free = np.zeros(V)
        self.vehicle_used = np.zeros(V, dtype=bool)
        self.vehicle_overtime = np.zeros(V)
        self.trips: list[tuple[int, Trip]] = []
        self.done = False
        # orders a vehicle leaving at the first epoch already cannot serve: lost, reported by the first step
        lost_now = self.open_orders() & ~self.servable_from(self.departure_time(0))
        self.lost |= lost_now
        self._pending_lost = int(lost_now.sum())
        assert inst is not None
        return self._observe(), {"action_mask": self.action_masks()}

    @property
    def clock(self) -> float:
        """Time of the current epoch, minutes."""
        return self.epoch * self.config.epoch.epoch_min

    @property
    def is_last_epoch(self) -> bool:
        return self.epoch >= self.num_epochs - 1

    def departure_time(self, epoch: int) -> float:
        """Earliest time a route dispatched at ``epoch`` leaves the depot."""
        return epoch * self.config.epoch.epoch_min + self.config.epoch.dispatch_margin_min

    def open_orders(self) -> np.ndarray:
        """``(N,)`` orders released by the current epoch, neither served nor lost."""
        inst = self._instance()
        return inst.valid & (inst.release <= self.clock + _EPS) & ~self.served & ~self.lost

    def servable_from(self, depart: float) -> np.ndarray:
        """``(N,)`` orders that a vehicle leaving a depot at ``depart`` serves within its window and returns in time."""
        inst = self._instance()
        depots = np.unique(self.home)
        arrive = depart + inst.travel[depots][:, self.num_depots :]  # (depots, N)
        start = np.maximum(arrive, inst.window_start)
        back = start + inst.service + inst.travel[self.num_depots :, depots].T
        ok = (start <= inst.window_end + self.lateness_allowed + _EPS) & (back <= self.deadline + _EPS)
        return ok.any(0)

    def latest_departure(self) -> np.ndarray:
        """``(N,)`` the latest time a vehicle can leave a depot and still serve each order in its window and return
        in time (the best depot's; ``-inf`` for an order no departure serves)."""
        inst = self._instance()
        depots = np.unique(self.home)
        return latest_departures(
            inst.window_start,
            inst.window_end + self.lateness_allowed,
            inst.service,
            inst.travel[depots][:, self.num_depots :],
            inst.travel[self.num_depots :, depots].T,
            self.deadline,
        )

    def must_go(self) -> np.ndarray:
        """``(N,)`` open orders that cannot wait for the next epoch (every open order at the last epoch)."""
        open_now = self.open_orders()
        if self.is_last_epoch:
            return open_now
        return open_now & ~self.servable_from(self.departure_time(self.epoch + 1))

    def action_masks(self) -> np.ndarray:
        """Flat ``(2 * max_orders,)`` bool mask, slot by slot ``[postpone allowed, dispatch allowed]``."""
        open_now = self.open_orders() if not self.done else np.zeros(self.max_orders, dtype=bool)
        must = self.must_go() if not self.done else open_now
        return np.stack([~must, open_now], axis=1).reshape(-1)

    def _instance(self) -> EpochInstance:
        if self.instance is None:
            raise RuntimeError("call reset() before using the environment")
        return self.instance

    # ------------------------------------------------------------------ step
    def _decisions(self, action: Any) -> tuple[np.ndarray, int]:
        """The checked 0/1 decision per slot and how many the fallback replaced."""
        refuse_non_numeric(action, self.action_space)
        arr = np.asarray(action.cpu() if isinstance(action, torch.Tensor) else action)
        N = self.max_orders
        if arr.shape != (N,):
            raise ActionError(f"action must have shape ({N},) (one 0/1 decision per order slot), got {arr.shape}")
        if not np.all((arr == 0) | (arr == 1)):
            bad = int(np.flatnonzero((arr != 0) & (arr != 1))[0])
            raise ActionError(f"action[{bad}] = {arr[bad]!r}: decisions must be 0 (postpone) or 1 (dispatch)")
        dispatch = arr.astype(bool)
        mask = self.action_masks().reshape(N, 2)
        allowed = np.where(dispatch, mask[:, 1], mask[:, 0])
        if allowed.all():
            return dispatch, 0
        if self.invalid_action == "raise":
            slot = int(np.flatnonzero(~allowed)[0])
            what = "must go now" if dispatch[slot] == 0 else "holds no open order"
            raise ActionError(f"action[{slot}] = {int(dispatch[slot])} is masked: order slot {slot} {what}")
        return np.where(allowed, dispatch, mask[:, 1]), int((~allowed).sum())

    def step(self, action: Any) -> tuple[np.ndarray, np.ndarray, bool, bool, dict[str, Any]]:
        """Dispatch the chosen orders, route and drive them, and move to the next epoch."""
        job, replaced = self.plan_step(action)
        trips = self._route(job.slots) if job.slots.size else []
        return self.finish_step(trips, replaced)

    def plan_step(self, action: Any) -> tuple[RoutingJob, int]:
        """The first half of :meth:`step`: check the decisions; the routing job of the dispatched orders
        and how many decisions the fallback replaced. Nothing changes until :meth:`finish_step`."""
        if self.done:
            raise RuntimeError("the episode has ended; call reset()")
        dispatch, replaced = self._decisions(action)
        return self.routing_job(np.flatnonzero(dispatch)), replaced

    def routing_job(self, slots: np.ndarray) -> RoutingJob:
        """The routing of the order ``slots`` with the fleet as it is now, as plain data (:func:`route_orders`)."""
        ep = self.config.epoch
        return RoutingJob(
            self._instance(),
            np.asarray(slots, dtype=np.int64),
            self.vehicle_starts(),
            self.capacity,
            self.deadline,
            self.lateness_allowed,
            self.scales,
            ep.routing_iterations,
            ep.routing_time_limit_s,
            ep.routing_seed,
        )

    def finish_step(
        self, trips: list[Trip], replaced: int = 0
    ) -> tuple[np.ndarray, np.ndarray, bool, bool, dict[str, Any]]:
        """The second half of :meth:`step`: drive the routed ``trips``, move to the next epoch; ``step``'s result."""
        if self.done:
            raise RuntimeError("the episode has ended; call reset()")
        inst = self._instance()
        kpis = dict.fromkeys(EPOCH_KPI_NAMES, 0.0)
        kpis["actions_replaced"] = float(replaced)
        for trip in trips:
            self._drive(trip, kpis)
        self.trips.extend((self.epoch, trip) for trip in trips)
        routed = [s for trip in trips for s in trip.orders]

        self.epoch += 1
        lost_count = self._pending_lost
        self._pending_lost = 0
        if self.epoch >= self.num_epochs:
            self.done = True
            newly_lost = inst.valid & ~self.served & ~self.lost
        else:
            newly_lost = self.open_orders() & ~self.servable_from(self.departure_time(self.epoch))
        self.lost |= newly_lost
        kpis["orders_unserved"] = float(lost_count + newly_lost.sum())
        kpis["unserved_penalty"] = kpis["orders_unserved"] * self.unserved_penalty
        reward = self._reward(kpis)
        info: dict[str, Any] = dict(kpis)
        info["trips"] = trips
        info["orders_routed"] = routed
        info["action_mask"] = self.action_masks()
        return self._observe(), reward, self.done, False, info

    def _reward(self, kpis: dict[str, float]) -> np.ndarray:
        orders = max(float(self._instance().valid.sum()), 1.0)
        values = np.array([kpis[name] for name in self._kpi_names], dtype=np.float64)
        values = np.where(self._per_order, values / orders, values)
        return (values @ self._reward_weights).astype(np.float32)

    def vehicle_starts(self) -> np.ndarray:
        """``(V,)`` earliest departure of each vehicle for a route dispatched now."""
        return np.maximum(self.vehicle_free, self.departure_time(self.epoch))

    def _route(self, slots: np.ndarray) -> list[Trip]:
        """PyVRP routes for the order ``slots`` with the fleet as it is now."""
        return route_orders(self.routing_job(slots))

    def _drive(self, trip: Trip, kpis: dict[str, float]) -> None:
        """Drive one vehicle's planned stops (a -1 is a reload at its depot) and add what it costs to ``kpis``."""
        inst = self._instance()
        D = self.num_depots
        v = trip.vehicle
        home = int(self.home[v])
        now = max(trip.depart, float(self.vehicle_free[v]), self.departure_time(self.epoch))
        node = home
        for s in trip.orders:
            if s < 0:  # reload at the depot
                kpis["travel_distance"] += inst.distance[node, home]
                now += inst.travel[node, home]
                node = home
                continue
            target = D + s
            kpis["travel_distance"] += inst.distance[node, target]
            arrive = now + inst.travel[node, target]
            start = max(arrive, inst.window_start[s])
            lateness = max(start - inst.window_end[s], 0.0)
            kpis["wait_min"] += start - arrive
            kpis["lateness_min"] += lateness
            kpis["orders_served"] += 1
            on_time = lateness <= _EPS
            kpis["orders_on_time"] += float(on_time)
            self.served[s] = True
            self.late[s] = not on_time
            now = start + inst.service[s]
            node = target
        kpis["travel_distance"] += inst.distance[node, home]
        now += inst.travel[node, home]
        if not self.vehicle_used[v] and any(s >= 0 for s in trip.orders):
            kpis["vehicles_used"] += 1
            self.vehicle_used[v] = True
        overtime = max(now - self.shift_end, 0.0)
        kpis["overtime_min"] += max(overtime - self.vehicle_overtime[v], 0.0)
        self.vehicle_overtime[v] = max(self.vehicle_overtime[v], overtime)
        self.vehicle_free[v] = now
        trip.back = float(now)

    # ------------------------------------------------------------------ observation
    def _observe(self) -> np.ndarray:
        inst = self._instance()
        D, N, V, T = self.num_depots, self.max_orders, self.num_vehicles, self.shift_end
        done = self.done
        open_now = self.open_orders() if not done else np.zeros(N, dtype=bool)
        must = self.must_go() if not done else open_now
        clock = self.clock
        vehicles = np.stack(
            [
                np.maximum(self.vehicle_free - clock, 0.0) / T,
                (self.vehicle_free <= clock + _EPS).astype(np.float64),
                self.vehicle_used.astype(np.float64),
            ],
            axis=1,
        )
        # how long each order can still wait after the next epoch, and the load the next epoch must carry
        latest = self.latest_departure()
        waiting = open_now & ~must
        if self.is_last_epoch or done:
            slack = np.zeros(N)
            due_next = np.zeros(N, dtype=bool)
            back_next = 0.0
        else:
            next_departure = self.departure_time(self.epoch + 1)
            next_is_last = self.epoch + 1 >= self.num_epochs - 1
            slack, due_next = waiting_orders(latest, waiting, next_departure, self.config.epoch.epoch_min, next_is_last)
            back_next = float((self.vehicle_free <= next_departure + _EPS).sum())
        globals_ = np.array(
            [
                clock / T,
                max(self.num_epochs - self.epoch, 0) / self.num_epochs,
                float(self.is_last_epoch and not done),
                open_now.sum() / N,
                self.served.sum() / max(float(inst.valid.sum()), 1.0),
                due_next.sum() / N,
                back_next / V,
            ]
        )
        return observation_vector(
            (inst.coords - self.coord_origin) / self.coord_scale,
            inst.distance / self.distance_scale,
            np.stack(
                [
                    inst.demand / self.capacity,
                    inst.window_start / T,
                    inst.window_end / T,
                    inst.service / T,
                    inst.release / T,
                ],
                axis=1,
            ),
            open_now,
            must,
            slack / T,
            D,
            vehicles,
            globals_,
            self._obs_high,
        )

    def report_figures(self, history: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """No route maps for this mode yet: evaluation reports skip its trajectory figures."""
        return {}

    def render(self) -> str | None:  # type: ignore[override]
        if self.render_mode != "ansi":
            return None
        open_now = int(self.open_orders().sum()) if not self.done else 0
        return (
            f"epoch {self.epoch}/{self.num_epochs} (t={self.clock:g} min): {int(self.served.sum())} served, "
            f"{open_now} open, {int(self.lost.sum())} lost, {len(self.trips)} trips"
        )


def latest_departures(
    window_start: np.ndarray,
    window_end: np.ndarray,
    service: np.ndarray,
    travel_out: np.ndarray,
    travel_back: np.ndarray,
    deadline: float,
) -> np.ndarray:
    """``(N,)`` the latest departure from a depot that still serves each order (``-inf`` where none does).

    Args:
        window_start, window_end, service: ``(N,)`` per order (``window_end`` with any lateness allowed).
        travel_out, travel_back: ``(depots, N)`` travel times from each depot to each order and back.
        deadline: latest return to the depot.
    """
    latest_start = np.minimum(window_end, deadline - service - travel_back)
    return np.where(latest_start >= window_start, latest_start - travel_out, -np.inf).max(0)


def waiting_orders(
    latest: np.ndarray, waiting: np.ndarray, next_departure: float, epoch_length: float, next_is_last: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Wait slack and due-next flags of the orders that may wait (``waiting``), from their :func:`latest_departures`.

    Returns:
        ``(N,)`` how long after ``next_departure`` a vehicle can still leave for each waiting order (0 for the
        others), and ``(N,)`` the waiting orders due at the next epoch: those a departure one epoch later no
        longer serves, or all of them when the next epoch is the last.
    """
    slack = np.where(waiting, np.maximum(latest - next_departure, 0.0), 0.0)
    due = waiting & (next_is_last | (latest < next_departure + epoch_length - _EPS))
    return slack, due


def observation_vector(
    xy: np.ndarray,
    distance: np.ndarray,
    order_data: np.ndarray,
    open_now: np.ndarray,
    must_go: np.ndarray,
    wait_slack: np.ndarray,
    num_depots: int,
    vehicles: np.ndarray,
    globals_: np.ndarray,
    high: float,
) -> np.ndarray:
    """The flat observation of ``DispatchEpoch-v0`` (see the env's table) from normalised parts.

    Args:
        xy: ``(D + N, 2)`` normalised coordinates, depots first.
        distance: ``(D + N, D + N)`` normalised distances.
        order_data: ``(N, 5)`` demand / capacity, window start, window end, service time and release time / shift end.
        open_now: ``(N,)`` slots with an open order; ``must_go``: ``(N,)`` those that cannot wait.
        wait_slack: ``(N,)`` normalised time an order can still wait after the next epoch's departure (0 for a
            must-go order).
        num_depots: ``D`` (every depot counts for the depot distance).
        vehicles: ``(V, 3)`` the fleet block; ``globals_``: ``(7,)`` the globals block.
        high: the observation space's upper bound (values are clipped to ``[0, high]``).
    """
    D = num_depots
    depot_dist = distance[:D, D:].min(0)
    between = distance[D:, D:].copy()
    between[:, ~open_now] = np.inf
    np.fill_diagonal(between, np.inf)
    nearest = between.min(1)
    nearest = np.where(np.isfinite(nearest), nearest, depot_dist)
    orders = (
        np.concatenate(
            [
                xy[D:],
                order_data,
                must_go[:, None].astype(np.float64),
                depot_dist[:, None],
                nearest[:, None],
                wait_slack[:, None],
            ],
            axis=1,
        )
        * open_now[:, None]
    )
    parts = [orders.reshape(-1), open_now.astype(np.float64), vehicles.reshape(-1), xy[:D].reshape(-1), globals_]
    return np.clip(np.concatenate(parts), 0.0, high).astype(np.float32)


def routing_problem(
    inst: EpochInstance,
    slots: np.ndarray,
    vehicle_starts: np.ndarray,
    release: np.ndarray | None,
    capacity: float,
    deadline: float,
    lateness: float,
    scales: tuple[float, float],
) -> tuple[Any, list[list[int]]]:
    """A PyVRP problem routing the order ``slots`` with vehicles leaving their depots at ``vehicle_starts``.

    Args:
        inst: the episode's instance.
        slots: order slots to route (optional clients with a prize above any route's cost: left out only when no
            route can take them).
        vehicle_starts: ``(V,)`` earliest departure of each vehicle, minutes; vehicles with the same depot and start
            share a vehicle type.
        release: ``(len(slots),)`` earliest departure of a trip carrying each order (``None``: all known now).
        capacity: per vehicle, units.
        deadline: latest return to the depot, minutes.
        lateness: minutes a service may start after its window closes.
        scales: integer scales (distance units per instance unit, time units per minute).

    Returns:
        The problem and the vehicles of each vehicle type.
    """
    from pyvrp import Client, Depot, Location, ProblemData, VehicleType

    dscale, tscale = scales
    D = len(inst.coords) - len(inst.valid)
    late = math.floor(deadline * tscale)
    depots = [Depot(location=d, tw_late=late) for d in range(D)]
    groups: dict[tuple[int, int], list[int]] = {}
    for v, start in enumerate(vehicle_starts):
        groups.setdefault((int(inst.home[v]), math.ceil(start * tscale - 1e-6)), []).append(v)
    cap = math.floor(capacity + 1e-9)
    vehicle_types = [
        VehicleType(
            num_available=len(vs),
            capacity=[cap],
            start_depot=home,
            end_depot=home,
            reload_depots=[home],
            tw_early=min(start, late),
            tw_late=late,
        )
        for (home, start), vs in groups.items()
    ]
    nodes = np.concatenate([np.arange(D), D + np.asarray(slots, dtype=np.int64)])
    sub = inst.distance[np.ix_(nodes, nodes)]
    prize = int(10 * (sub.max() + 1) * dscale * (len(slots) + 1))
    clients = [
        Client(
            location=D + k,
            delivery=[round(inst.demand[s])],
            service_duration=math.ceil(inst.service[s] * tscale - 1e-6),
            tw_early=math.ceil(inst.window_start[s] * tscale - 1e-6),
            tw_late=math.floor((inst.window_end[s] + lateness) * tscale + 1e-6),
            release_time=0 if release is None else math.ceil(release[k] * tscale - 1e-6),
            prize=prize,
            required=False,
        )
        for k, s in enumerate(slots)
    ]
    dmat = np.rint(sub * dscale).astype(np.int64)
    tmat = np.ceil(inst.travel[np.ix_(nodes, nodes)] * tscale - 1e-6).astype(np.int64)
    locations = [Location(float(inst.coords[n, 0]), float(inst.coords[n, 1])) for n in nodes]
    return ProblemData(locations, clients, depots, vehicle_types, [dmat], [tmat]), list(groups.values())


def solution_trips(solution: Any, slots: np.ndarray, groups: list[list[int]], tscale: float) -> list[Trip]:
    """The routes of a PyVRP solution as :class:`Trip` records (a -1 in ``orders`` marks a reload at the depot)."""
    used = [0] * len(groups)
    trips = []
    for route in solution.routes():
        vt = route.vehicle_type()
        vehicle = groups[vt][used[vt]]
        used[vt] += 1
        orders: list[int] = []
        for act in list(route.schedule())[1:-1]:
            if act.is_client():
                orders.append(int(slots[act.idx]))
            elif act.is_depot():
                orders.append(-1)
        trips.append(Trip(vehicle, orders, route.start_time() / tscale, route.end_time() / tscale))
    return trips
