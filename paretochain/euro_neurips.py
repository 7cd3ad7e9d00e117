"""A solver speaking the EURO Meets NeurIPS 2022 dynamic VRPTW controller protocol, with a paretochain epoch policy.

The controller starts the solver as a subprocess. The solver writes one JSON request per line
to its stdout and reads the controller's answer, one JSON line, from its stdin:

- ``{"action": "reset", "data": null}`` is answered by ``{"observation": ..., "info": ...}``;
  ``info`` holds ``epoch_tlim`` (seconds per epoch), ``start_epoch``, ``end_epoch``,
  ``num_epochs`` and ``dynamic_context`` (the static instance: ``coords``, ``demands``,
  ``capacity``, ``time_windows``, ``service_times``, ``duration_matrix``, ``is_depot``).
- ``{"action": "step", "data": ROUTES}`` (each route a list of request ids, one trip from the
  depot) is answered by ``{"observation": ..., "reward": ..., "done": ..., "info": {"error": ...}}``.

An observation holds ``current_epoch``, ``current_time``, ``planning_starttime`` (seconds) and
``epoch_instance``: the depot (row 0) and the open requests, with ``request_idx``,
``coords``, ``demands``, ``capacity``, ``time_windows`` (relative to ``planning_starttime``),
``service_times``, ``duration_matrix`` and ``must_dispatch``.

Per epoch this solver builds the ``DispatchEpoch-v0`` observation and mask of the open
requests (slots in ``request_idx`` order, padded to ``max_orders``; requests beyond it are
dispatched when must-go and postponed otherwise), asks the policy which to dispatch, routes
those with PyVRP (one trip per vehicle, as many vehicles as needed, windows hard, must-go
requests required; iteration budget, seed, and a time cap inside the epoch's limit) and
answers with the routes. Logs go to stderr.

Run it under the controller as ``python controller.py --instance FILE -- python -m
paretochain.euro_neurips --policy greedy``, or with a trained epoch policy, ``--policy
runs/RUN/policy.pt`` (exported from a ``DispatchEpoch-v0`` run): the observation then takes
the policy file's layout (its order slots and fleet rows). :func:`write_instance` writes
generated instances in the competition's file format.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from paretochain.errors import ParetochainError, PolicyFileError

#: Observation layout parameters of the adapter: order slots and fleet rows (every vehicle available).
DEFAULT_MAX_ORDERS = 500
FLEET_ROWS = 1
#: Seconds between two epochs of the controller (its environment's fixed ``EPOCH_DURATION``).
EPOCH_DURATION_S = 3600.0
POLICIES = ("greedy", "lazy", "random")
EPOCH_ENV_ID = "paretochain/DispatchEpoch-v0"


class ProtocolError(ParetochainError):
    """The controller sent something the protocol does not allow, or reported an error."""


def make_policy(name: str, seed: int = 0) -> Any:
    """A mask-reading epoch baseline by name (``greedy``, ``lazy`` or ``random``), or a policy file by its path.

    Raises:
        PolicyFileError: a path that is not a readable paretochain policy file of ``DispatchEpoch-v0``.
        ProtocolError: neither a baseline's name nor a ``.pt`` / ``.pt2`` path.
    """
    from paretochain.agents.baselines.epoch import GreedyEpochPolicy, LazyEpochPolicy, RandomEpochPolicy

    if name == "greedy":
        return GreedyEpochPolicy()
    if name == "lazy":
        return LazyEpochPolicy()
    if name == "random":
        return RandomEpochPolicy(seed=seed)
    if Path(name).suffix in (".pt", ".pt2"):
        from paretochain.agents.export import load_policy

        policy = load_policy(name)
        if policy.metadata.get("env_id") != EPOCH_ENV_ID:
            raise PolicyFileError(
                f"{name} is a policy of {policy.metadata.get('env_id')!r}; the controller needs one of {EPOCH_ENV_ID!r}"
            )
        return policy
    raise ProtocolError(f"unknown policy {name!r}; choose one of {list(POLICIES)} or the path of a policy.pt")


@dataclass(frozen=True)
class EpochLayout:
    """The observation layout the adapter builds: order slots, fleet rows and depots."""

    max_orders: int = DEFAULT_MAX_ORDERS
    fleet_rows: int = FLEET_ROWS
    num_depots: int = 1

    @classmethod
    def of_policy(cls, policy: Any, max_orders: int = DEFAULT_MAX_ORDERS) -> EpochLayout:
        """A policy file's own layout (from its metadata); ``max_orders`` slots for a baseline, which reads any.

        Raises:
            PolicyFileError: a policy trained with more than one depot (the competition has one).
        """
        metadata = getattr(policy, "metadata", None)
        if not isinstance(metadata, dict):
            return cls(max_orders=max_orders)
        blocks = metadata["observation"]["layout"]
        layout = cls(
            max_orders=int(blocks["orders"]["shape"][0]),
            fleet_rows=int(blocks["vehicles"]["shape"][0]),
            num_depots=int(blocks["depots"]["shape"][0]),
        )
        if layout.num_depots != 1:
            raise PolicyFileError(
                f"{getattr(policy, 'path', 'the policy')} was trained with {layout.num_depots} depots; "
                "the controller's instances have one"
            )
        return layout


class EpochAdapter:
    """Turns controller observations into ``DispatchEpoch-v0`` observations and decisions into routes.

    Args:
        policy: anything with ``act(obs, preference, action_mask)`` over ``DispatchEpoch-v0`` layouts; a
            loaded policy file fixes the layout (:meth:`EpochLayout.of_policy`).
        max_orders: order slots of the observation, for a policy that reads any layout (the baselines).
        routing_iterations: PyVRP iterations per epoch.
        seed: PyVRP's seed.
        preference: the preference ``(k,)`` a policy file is played at (None: the one its metadata names).
    """

    def __init__(
        self,
        policy: Any,
        max_orders: int = DEFAULT_MAX_ORDERS,
        routing_iterations: int = 1_000,
        seed: int = 0,
        preference: Sequence[float] | None = None,
    ):
        self.policy = policy
        self.layout = EpochLayout.of_policy(policy, max_orders)
        self.max_orders = self.layout.max_orders
        self.preference = None if preference is None else torch.tensor([list(preference)], dtype=torch.float32)
        self.routing_iterations = routing_iterations
        self.seed = seed
        self.static: dict[str, np.ndarray] = {}
        self.epoch_tlim = 60.0
        self.start_epoch = self.end_epoch = 0
        self.dispatched_so_far = 0

    def start(self, info: dict[str, Any]) -> None:
        """Read the episode's settings from the reset answer's ``info``."""
        context = info.get("dynamic_context")
        if not isinstance(context, dict):
            raise ProtocolError("reset info has no dynamic_context (the static problem is not supported)")
        self.static = {k: np.asarray(v) for k, v in context.items()}
        self.epoch_tlim = float(info.get("epoch_tlim", 60))
        self.start_epoch, self.end_epoch = int(info["start_epoch"]), int(info["end_epoch"])
        self.dispatched_so_far = 0

    def decide(self, observation: dict[str, Any]) -> np.ndarray:
        """Which requests of the epoch instance (rows after the depot) to dispatch: a bool array."""
        inst = observation["epoch_instance"]
        n_open = len(inst["request_idx"]) - 1
        N = self.max_orders
        must = np.asarray(inst["must_dispatch"], dtype=bool)[1:]
        shown = min(n_open, N)
        open_now = np.zeros(N, dtype=bool)
        open_now[:shown] = True
        must_slots = np.zeros(N, dtype=bool)
        must_slots[:shown] = must[:shown]
        obs = self.observation(observation, open_now, must_slots)
        mask = np.stack([~must_slots, open_now], axis=1).reshape(1, -1)
        action = self.policy.act(torch.as_tensor(obs)[None], self.preference, torch.as_tensor(mask))
        chosen = np.asarray(torch.as_tensor(action).reshape(-1).cpu().numpy()[:shown], dtype=bool)
        decision = must.copy()
        decision[:shown] |= chosen
        return decision

    def observation(self, observation: dict[str, Any], open_now: np.ndarray, must: np.ndarray) -> np.ndarray:
        """The ``DispatchEpoch-v0`` observation of an epoch instance (times and distances in the file's units)."""
        from paretochain.envs.dispatch.epoch import latest_departures, observation_vector, waiting_orders

        inst = observation["epoch_instance"]
        N, shown = self.max_orders, int(open_now.sum())
        coords_all = self.static["coords"].astype(np.float64)
        origin = coords_all.min(0)
        scale = float(max(np.ptp(coords_all, axis=0).max(), 1.0))
        T = float(self.static["time_windows"][0, 1])
        matrix = np.asarray(inst["duration_matrix"], dtype=np.float64)
        dist_scale = float(max(self.static["duration_matrix"].max(), 1.0))
        start = float(observation["planning_starttime"])
        rows = np.arange(1, shown + 1)
        nodes = np.concatenate([[0], rows, np.zeros(N - shown, dtype=np.int64)])
        xy = (np.asarray(inst["coords"], dtype=np.float64)[nodes] - origin) / scale
        distance = matrix[np.ix_(nodes, nodes)] / dist_scale
        tw = np.asarray(inst["time_windows"], dtype=np.float64)
        order_data = np.zeros((N, 5))
        order_data[:shown] = np.stack(
            [
                np.asarray(inst["demands"], dtype=np.float64)[rows] / float(inst["capacity"]),
                (tw[rows, 0] + start) / T,
                (tw[rows, 1] + start) / T,
                np.asarray(inst["service_times"], dtype=np.float64)[rows] / T,
                np.full(shown, float(observation["current_time"]) / T),
            ],
            axis=1,
        )
        vehicles = np.tile(np.array([0.0, 1.0, 0.0]), (self.layout.fleet_rows, 1))  # every vehicle free at the depot
        epoch = int(observation["current_epoch"])
        num_epochs = self.end_epoch - self.start_epoch + 1
        # the latest departure from the depot that still serves each request, as DispatchEpoch-v0 computes it
        service = np.asarray(inst["service_times"], dtype=np.float64)[rows]
        latest = latest_departures(tw[rows, 0], tw[rows, 1], service, matrix[:1, rows], matrix[rows, :1].T, tw[0, 1])
        slack = np.zeros(N)
        due_next = 0
        if epoch < self.end_epoch:
            wait, due = waiting_orders(
                latest, ~must[:shown], EPOCH_DURATION_S, EPOCH_DURATION_S, epoch + 1 >= self.end_epoch
            )
            slack[:shown] = wait / T
            due_next = int(due.sum())
        globals_ = np.array(
            [
                float(observation["current_time"]) / T,
                (self.end_epoch - epoch + 1) / num_epochs,
                float(epoch == self.end_epoch),
                shown / N,
                self.dispatched_so_far / max(self.dispatched_so_far + shown, 1),
                due_next / N,
                float(epoch < self.end_epoch),  # every vehicle is back by the next epoch
            ]
        )
        obs = observation_vector(xy, distance, order_data, open_now, must, slack, 1, vehicles, globals_, 2.0)
        expected = getattr(self.policy, "obs_dim", obs.shape[0])
        if obs.shape[0] != expected:
            raise PolicyFileError(
                f"{getattr(self.policy, 'path', 'the policy')} reads observations of {expected} values; "
                f"the controller's epoch gives {obs.shape[0]} in its layout"
            )
        return obs

    def routes(self, observation: dict[str, Any], dispatch: np.ndarray, time_limit_s: float) -> list[list[int]]:
        """PyVRP routes (request ids) for the dispatched rows of the epoch instance."""
        inst = observation["epoch_instance"]
        rows = 1 + np.flatnonzero(dispatch)
        request_idx = np.asarray(inst["request_idx"], dtype=np.int64)
        if rows.size == 0:
            return []
        from pyvrp import Client, Depot, Location, ProblemData, VehicleType

        from paretochain.envs.dispatch.epoch import solve_routing

        tw = np.asarray(inst["time_windows"], dtype=np.int64)
        matrix = np.asarray(inst["duration_matrix"], dtype=np.int64)
        coords = np.asarray(inst["coords"], dtype=np.float64)
        demands = np.asarray(inst["demands"], dtype=np.int64)
        service = np.asarray(inst["service_times"], dtype=np.int64)
        nodes = np.concatenate([[0], rows])
        depot = Depot(location=0, tw_early=int(tw[0, 0]), tw_late=int(tw[0, 1]))
        vehicles = VehicleType(num_available=int(rows.size), capacity=[int(inst["capacity"])], tw_late=int(tw[0, 1]))
        clients = [
            Client(
                location=k + 1,
                delivery=[int(demands[r])],
                service_duration=int(service[r]),
                tw_early=int(tw[r, 0]),
                tw_late=int(tw[r, 1]),
            )
            for k, r in enumerate(rows)
        ]
        sub = matrix[np.ix_(nodes, nodes)]
        locations = [Location(float(coords[n, 0]), float(coords[n, 1])) for n in nodes]
        data = ProblemData(locations, clients, [depot], [vehicles], [sub], [sub])
        best = solve_routing(data, self.routing_iterations, time_limit_s, self.seed)
        if not best.is_feasible():  # every request is feasible alone (the controller samples only such requests)
            return [[int(request_idx[r])] for r in rows]
        return [
            [int(request_idx[rows[act.idx]]) for act in route.schedule() if act.is_client()] for route in best.routes()
        ]

    def epoch(self, observation: dict[str, Any]) -> list[list[int]]:
        """The routes to send for one epoch observation."""
        dispatch = self.decide(observation)
        time_limit = max(0.1, min(0.5 * self.epoch_tlim, self.epoch_tlim - 2.0))
        routes = self.routes(observation, dispatch, time_limit)
        self.dispatched_so_far += sum(len(r) for r in routes)
        return routes


def run(adapter: EpochAdapter, read: IO[str], write: IO[str], log: IO[str]) -> float:
    """Play one controller episode over the two pipes; the total reward the controller reported."""

    def request(action: str, data: Any) -> dict[str, Any]:
        write.write(json.dumps({"action": action, "data": data}) + "\n")
        write.flush()
        line = read.readline()
        if not line:
            raise ProtocolError(f"the controller closed the pipe after a {action!r} request")
        try:
            answer = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ProtocolError(f"the controller's answer to {action!r} is not JSON: {exc}") from None
        if not isinstance(answer, dict) or "observation" not in answer:
            raise ProtocolError(f"the controller's answer to {action!r} has no observation")
        return answer

    answer = request("reset", None)
    with _malformed("reset"):
        adapter.start(answer.get("info") or {})
    observation = answer["observation"]
    total, done, epoch = 0.0, False, None
    while not done:
        with _malformed("reset" if epoch is None else f"step of epoch {epoch}"):
            epoch = observation["current_epoch"]
            routes = adapter.epoch(observation)
        answer = request("step", routes)
        error = (answer.get("info") or {}).get("error")
        if error:
            raise ProtocolError(f"the controller refused the routes of epoch {epoch}: {error}")
        with _malformed(f"step of epoch {epoch}"):
            total += float(answer["reward"])
            done = bool(answer["done"])
        log.write(
            f"epoch {observation['current_epoch']}: {sum(len(r) for r in routes)} requests in {len(routes)} routes, "
            f"reward {answer['reward']}\n"
        )
        observation = answer["observation"]
    return total


@contextlib.contextmanager
def _malformed(where: str) -> Iterator[None]:
    """Turn a missing or ill-typed field of the controller's answer into one :class:`ProtocolError`."""
    try:
        yield
    except KeyError as exc:
        raise ProtocolError(f"the controller's answer to the {where} lacks the field {exc}") from None
    except (TypeError, ValueError, IndexError) as exc:
        raise ProtocolError(f"the controller's answer to the {where} is malformed: {exc}") from None


def write_instance(path: str | Path, instance: dict[str, np.ndarray], name: str = "generated") -> None:
    """Write a static instance in the competition's VRPLIB format (explicit integer duration matrix, depot node 1).

    Args:
        path: the file to write.
        instance: ``coords`` ``(n + 1, 2)``, ``demands`` ``(n + 1,)``, ``capacity``, ``time_windows``
            ``(n + 1, 2)``, ``service_times`` ``(n + 1,)`` and ``duration_matrix`` ``(n + 1, n + 1)``, all integers,
            the depot first.
    """
    coords = np.asarray(instance["coords"], dtype=np.int64)
    n = len(coords)
    lines = [
        f"NAME : {name}",
        "COMMENT : generated by paretochain",
        "TYPE : VRPTW",
        f"DIMENSION : {n}",
        "EDGE_WEIGHT_TYPE : EXPLICIT",
        "EDGE_WEIGHT_FORMAT : FULL_MATRIX",
        f"CAPACITY : {int(instance['capacity'])}",
        "EDGE_WEIGHT_SECTION",
        *("\t".join(str(int(v)) for v in row) for row in np.asarray(instance["duration_matrix"])),
        "NODE_COORD_SECTION",
        *(f"{i + 1}\t{x}\t{y}" for i, (x, y) in enumerate(coords)),
        "DEMAND_SECTION",
        *(f"{i + 1}\t{int(d)}" for i, d in enumerate(instance["demands"])),
        "DEPOT_SECTION",
        "1",
        "-1",
        "SERVICE_TIME_SECTION",
        *(f"{i + 1}\t{int(s)}" for i, s in enumerate(instance["service_times"])),
        "TIME_WINDOW_SECTION",
        *(f"{i + 1}\t{int(a)}\t{int(b)}" for i, (a, b) in enumerate(instance["time_windows"])),
        "EOF",
    ]
    Path(path).write_text("\n".join(lines) + "\n")


def generated_instance(
    num_customers: int, seed: int, area: int = 10_000, horizon_s: int = 36_000
) -> dict[str, np.ndarray]:
    """A random static instance in the competition's units (integer coordinates and seconds).

    Customers uniform on a square of side ``area``, durations the rounded Euclidean distances
    (one unit per second), windows of 1-3 hours reachable from the depot, demands 1-10,
    capacity 50, service 5-10 minutes.
    """
    rng = np.random.default_rng(seed)
    n = num_customers + 1
    coords = rng.integers(0, area, size=(n, 2))
    coords[0] = area // 2
    durations = np.rint(np.sqrt(((coords[:, None] - coords[None]) ** 2).sum(-1))).astype(np.int64)
    service = np.concatenate([[0], rng.integers(300, 600, size=num_customers)])
    demands = np.concatenate([[0], rng.integers(1, 11, size=num_customers)])
    width = rng.integers(3_600, 10_800, size=num_customers)
    latest = horizon_s - service[1:] - durations[1:, 0]
    early = durations[0, 1:] + (rng.random(num_customers) * np.maximum(latest - width - durations[0, 1:], 0)).astype(
        np.int64
    )
    late = np.minimum(early + width, latest)
    windows = np.concatenate([[[0, horizon_s]], np.stack([early, late], axis=1)])
    return {
        "is_depot": np.arange(n) == 0,
        "coords": coords,
        "demands": demands,
        "capacity": np.array(50),
        "time_windows": windows,
        "service_times": service,
        "duration_matrix": durations,
    }


def _preference(text: str | None) -> list[float] | None:
    """``--preference``'s weights, finite and not negative, not all zero."""
    if text is None:
        return None
    try:
        weights = [float(part) for part in text.split(",")]
    except ValueError:
        raise ProtocolError(f"--preference {text!r}: give comma-separated numbers, e.g. 1,0,0") from None
    if not all(np.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise ProtocolError(f"--preference {text!r}: weights must be finite, not negative and not all zero")
    return weights


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``python -m paretochain.euro_neurips --policy greedy`` under the competition's controller."""
    parser = argparse.ArgumentParser(prog="python -m paretochain.euro_neurips", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--policy",
        default="greedy",
        help="the epoch policy: greedy (default), lazy, random, or the path of a DispatchEpoch-v0 policy.pt",
    )
    parser.add_argument(
        "--max-orders",
        type=int,
        default=DEFAULT_MAX_ORDERS,
        help="order slots of the observation, for the baselines (a policy file has its own)",
    )
    parser.add_argument(
        "--preference",
        help="comma-separated weights a policy file is played at, one per objective (default: its metadata's)",
    )
    parser.add_argument("--routing-iterations", type=int, default=1_000, help="PyVRP iterations per epoch")
    parser.add_argument("--seed", type=int, default=0, help="seed of the policy and of PyVRP")
    args = parser.parse_args(argv)
    if args.max_orders < 1 or args.routing_iterations < 1:
        sys.stderr.write("error: --max-orders and --routing-iterations must be at least 1\n")
        return 2
    try:
        preference = _preference(args.preference)
        policy = make_policy(args.policy, args.seed)
        adapter = EpochAdapter(policy, args.max_orders, args.routing_iterations, args.seed, preference)
        total = run(adapter, sys.stdin, sys.stdout, sys.stderr)
    except ParetochainError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    sys.stderr.write(f"total reward {total:g}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
