"""Baselines for ``paretochain/DispatchEpoch-v0``, all following the policy contract ``act(obs, preference, action_mask)``.

Each returns, per environment of the batch, one 0/1 decision per order slot (1: dispatch now).

- :class:`GreedyEpochPolicy`: dispatch every open order at once. Reads only the mask.
- :class:`LazyEpochPolicy`: dispatch only the must-go orders. Reads only the mask.
- :class:`RandomEpochPolicy`: must-go orders, and each other open order with probability ``p``.
- :class:`RolloutEpochPolicy`: scenario sampling. Draws future orders from the instance
  distribution, routes the open and the sampled orders together with PyVRP (future orders
  released at the epoch they would appear), and dispatches the open orders that at least a
  ``threshold`` share of the sampled plans send out before the next epoch.
- :class:`HindsightEpochPolicy`: the oracle. Knows every order of the episode in advance and
  routes them all at once with PyVRP (an order cannot leave before the epoch at which it is
  released); ``bound_distance`` is that plan's distance, a bound for online policies up to
  PyVRP's optimality gap. Played, it dispatches each order at the epoch its planned trip leaves.

The last two need the instance: they take the environment at construction and read its state.
:class:`PerEnvironmentPolicy` runs one of them per environment of a batched view
(``make_vec("paretochain/DispatchEpoch-v0", B)``), which is how ``paretochain evaluate`` builds them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from paretochain.envs.dispatch.epoch import EpochDispatchEnv, EpochInstance, routing_problem, solve_routing


def _env_of(env: Any) -> EpochDispatchEnv:
    unwrapped = getattr(env, "unwrapped", env)
    if not isinstance(unwrapped, EpochDispatchEnv):
        raise TypeError(f"expected a DispatchEpoch-v0 environment, got {type(env).__name__}")
    return unwrapped


def epoch_envs(env: Any) -> list[EpochDispatchEnv]:
    """The environments of a ``DispatchEpoch-v0`` env, its batched view (``make_vec``) or batched core, in batch order.

    Raises:
        TypeError: ``env`` is none of those.
    """
    unwrapped = getattr(env, "unwrapped", env)
    if isinstance(unwrapped, EpochDispatchEnv):
        return [unwrapped]
    envs = getattr(getattr(env, "core", env), "envs", None)
    if isinstance(envs, list) and envs and all(isinstance(e, EpochDispatchEnv) for e in envs):
        return list(envs)
    raise TypeError(f"expected a DispatchEpoch-v0 environment or batched view, got {type(env).__name__}")


class PerEnvironmentPolicy:
    """One single-environment policy per environment of a batch, each deciding its own row.

    Args:
        env: a ``DispatchEpoch-v0`` env, batched view or batched core.
        make: builds the policy of one environment (``lambda e: HindsightEpochPolicy(e, ...)``).
    """

    def __init__(self, env: Any, make: Callable[[EpochDispatchEnv], Any]) -> None:
        self.policies = [make(e) for e in epoch_envs(env)]

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        if obs.shape[0] != len(self.policies):
            raise ValueError(f"a batch of {obs.shape[0]} observations for {len(self.policies)} environments")
        rows = [
            policy.act(obs[i : i + 1], None, None if action_mask is None else action_mask[i : i + 1])
            for i, policy in enumerate(self.policies)
        ]
        return torch.cat([torch.as_tensor(r).reshape(1, -1) for r in rows]).to(obs.device)


def _split_mask(action_mask: torch.Tensor | np.ndarray | None, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(postpone_allowed, dispatch_allowed)``, each ``(B, N)`` bool, from a flat ``(B, 2N)`` or ``(2N,)`` mask."""
    if action_mask is None:
        raise ValueError(f"{name} needs the action mask")
    mask = torch.as_tensor(action_mask).to(torch.bool)
    if mask.dim() == 1:
        mask = mask.unsqueeze(0)
    pairs = mask.reshape(mask.shape[0], -1, 2)
    return pairs[..., 0], pairs[..., 1]


class GreedyEpochPolicy:
    """Dispatch every open order at once (every slot whose mask allows dispatching)."""

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        _, dispatch_ok = _split_mask(action_mask, "GreedyEpochPolicy")
        return dispatch_ok.to(torch.int64)


class LazyEpochPolicy:
    """Dispatch only the must-go orders (the slots whose mask forbids postponing)."""

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        postpone_ok, _ = _split_mask(action_mask, "LazyEpochPolicy")
        return (~postpone_ok).to(torch.int64)


class RandomEpochPolicy:
    """Must-go orders, and each other open order with probability ``p``.

    Args:
        p: chance of dispatching an order that may wait.
        seed: seed of the policy's own generator.
    """

    def __init__(self, p: float = 0.5, seed: int = 0) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = p
        self.generator = torch.Generator().manual_seed(seed)

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        postpone_ok, dispatch_ok = _split_mask(action_mask, "RandomEpochPolicy")
        coin = torch.rand(dispatch_ok.shape, generator=self.generator) < self.p
        free = postpone_ok & dispatch_ok
        return torch.where(free, coin, dispatch_ok).to(torch.int64)


def trip_departures(solution: Any, tscale: float) -> dict[int, float]:
    """The planned departure from the depot (minutes) of the trip carrying each client index of a PyVRP solution."""
    out: dict[int, float] = {}
    for route in solution.routes():
        schedule = list(route.schedule())
        leave = schedule[0].end_time / tscale
        for act in schedule[1:-1]:
            if act.is_client():
                out[int(act.idx)] = leave
            elif act.is_depot():
                leave = act.end_time / tscale
    return out


def _epoch_release(env: EpochDispatchEnv, release: np.ndarray) -> np.ndarray:
    """Earliest departure of an order released at ``release``: that of the first epoch at or after it."""
    epoch = np.ceil(release / env.config.epoch.epoch_min - 1e-9)
    return epoch * env.config.epoch.epoch_min + env.config.epoch.dispatch_margin_min


class HindsightEpochPolicy:
    """Every order of the episode known in advance, routed at once, then dispatched when its planned trip leaves.

    The plan is a **time-limited upper bound** on the cost of the best anticipative plan, not
    the best-known cost: PyVRP stops at its time limit, and on P-n101-k4, X-n101-k25, R101 and
    RC201 its 2-10 s plans were 0.2-3% above the best-known solutions. A policy within that
    margin of it may be as good as the hindsight optimum.

    Args:
        env: the ``DispatchEpoch-v0`` environment it plays (one episode at a time).
        iterations: PyVRP iterations of the plan.
        time_limit_s: PyVRP's run time cap.
        seed: PyVRP's seed.
    """

    def __init__(self, env: Any, iterations: int = 2_000, time_limit_s: float = 10.0, seed: int = 0) -> None:
        self.env = _env_of(env)
        self.iterations, self.time_limit_s, self.seed = iterations, time_limit_s, seed
        #: the distance of the current episode's plan: the bound
        self.bound_distance = math.nan
        self._planned_for: int | None = None
        self._departure = np.zeros(0)

    def plan(self) -> None:
        """Route every order of the current episode, each released at its release epoch."""
        env = self.env
        inst = env.instance
        assert inst is not None
        slots = np.flatnonzero(inst.valid)
        data, _ = routing_problem(
            inst,
            slots,
            np.full(env.num_vehicles, env.departure_time(0)),
            release=_epoch_release(env, inst.release[slots]),
            capacity=env.capacity,
            deadline=env.deadline,
            lateness=env.lateness_allowed,
            scales=env.scales,
        )
        best = solve_routing(data, self.iterations, self.time_limit_s, self.seed)
        self.bound_distance = best.distance() / env.scales[0]
        self._departure = np.full(env.max_orders, math.inf)
        for k, leave in trip_departures(best, env.scales[1]).items():
            self._departure[slots[k]] = leave
        self._planned_for = env.stream_key

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        env = self.env
        if env.epoch == 0 and self._planned_for != env.stream_key:
            self.plan()
        mask = env.action_masks() if action_mask is None else torch.as_tensor(action_mask).cpu().numpy()
        pairs = np.asarray(mask, dtype=bool).reshape(-1, 2)
        leaves_now = self._departure < env.departure_time(env.epoch + 1) - 1e-6
        decision = np.where(pairs[:, 0] & pairs[:, 1], leaves_now, pairs[:, 1])
        return torch.as_tensor(decision.astype(np.int64)).unsqueeze(0)


class RolloutEpochPolicy:
    """Scenario sampling: dispatch the open orders that most sampled full plans send out before the next epoch.

    Each scenario draws an instance from the environment's instance distribution (its generator,
    or the file's customers with freshly drawn release times) and keeps the orders it releases
    after the current epoch: the future requests. The open orders and those are routed together
    by PyVRP with the fleet as it is (a future order cannot leave before the epoch at which it
    appears). An open order counts as "dispatched now" in a scenario when its planned trip leaves
    before the next epoch's departure time.

    Args:
        env: the ``DispatchEpoch-v0`` environment it plays.
        num_scenarios: scenarios per decision.
        threshold: share of scenarios above which (inclusive) an optional order is dispatched.
        iterations: PyVRP iterations per scenario.
        time_limit_s: PyVRP's run time cap per scenario.
        seed: seed of the scenarios and of PyVRP.
    """

    def __init__(
        self,
        env: Any,
        num_scenarios: int = 4,
        threshold: float = 0.5,
        iterations: int = 200,
        time_limit_s: float = 1.0,
        seed: int = 0,
    ) -> None:
        if num_scenarios < 1:
            raise ValueError(f"num_scenarios must be >= 1, got {num_scenarios}")
        self.env = _env_of(env)
        self.num_scenarios, self.threshold = num_scenarios, threshold
        self.iterations, self.time_limit_s, self.seed = iterations, time_limit_s, seed
        self.rng = np.random.default_rng(seed)
        #: share of the last decision's scenarios that dispatched each order slot now
        self.last_share = np.zeros(self.env.max_orders)

    def _scenario(self, open_slots: np.ndarray) -> tuple[EpochInstance, np.ndarray]:
        """The open orders followed by one draw of future orders, and every order's earliest departure."""
        env = self.env
        inst = env.instance
        assert inst is not None
        D = env.num_depots
        key = torch.tensor([int(self.rng.integers(0, 2**32))], dtype=torch.int64)
        draw = env.source.sample(key)
        future = np.flatnonzero(draw.valid[0].numpy() & (draw.release[0].numpy() > env.clock + 1e-6))
        window = draw.window[0].numpy()
        if env.explicit_distance is not None:
            nodes = np.concatenate([np.arange(D), D + open_slots, D + future])
            distance = env.explicit_distance[np.ix_(nodes, nodes)]
            coords = inst.coords[nodes]
        else:
            coords = np.concatenate([inst.coords[:D], inst.coords[D + open_slots], draw.coords[0].numpy()[D + future]])
            distance = np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1))

        def both(now: np.ndarray, later: np.ndarray) -> np.ndarray:
            return np.concatenate([now, later])

        merged = EpochInstance(
            coords=coords,
            distance=distance,
            travel=distance / env.speed,
            demand=both(inst.demand[open_slots], draw.demand[0].numpy()[future]),
            service=both(inst.service[open_slots], draw.service[0].numpy()[future]),
            window_start=both(inst.window_start[open_slots], window[future, 0]),
            window_end=both(inst.window_end[open_slots], window[future, 1]),
            release=both(np.full(open_slots.size, env.clock), draw.release[0].numpy()[future]),
            valid=np.ones(open_slots.size + future.size, dtype=bool),
            home=inst.home,
        )
        departure = _epoch_release(env, merged.release)
        return merged, departure

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        env = self.env
        mask = env.action_masks() if action_mask is None else torch.as_tensor(action_mask).cpu().numpy()
        pairs = np.asarray(mask, dtype=bool).reshape(-1, 2)
        optional = np.flatnonzero(pairs[:, 0] & pairs[:, 1])
        share = np.zeros(env.max_orders)
        if optional.size:
            open_slots = np.flatnonzero(pairs[:, 1])
            next_departure = env.departure_time(env.epoch + 1) - 1e-6
            for _ in range(self.num_scenarios):
                merged, departure = self._scenario(open_slots)
                data, _ = routing_problem(
                    merged,
                    np.arange(len(merged.valid)),
                    env.vehicle_starts(),
                    release=departure,
                    capacity=env.capacity,
                    deadline=env.deadline,
                    lateness=env.lateness_allowed,
                    scales=env.scales,
                )
                best = solve_routing(data, self.iterations, self.time_limit_s, int(self.rng.integers(0, 2**31 - 1)))
                for k, leave in trip_departures(best, env.scales[1]).items():
                    if k < open_slots.size and leave < next_departure:
                        share[open_slots[k]] += 1.0 / self.num_scenarios
        self.last_share = share
        decision = np.where(pairs[:, 0] & pairs[:, 1], share >= self.threshold - 1e-9, pairs[:, 1])
        return torch.as_tensor(decision.astype(np.int64)).unsqueeze(0)
