"""The batched view of ``paretochain/DispatchEpoch-v0``: ``B`` epoch-dispatch environments stepped in one call.

Epoch dispatch runs on the host (numpy and PyVRP), one environment per object
(:class:`~paretochain.envs.dispatch.epoch.EpochDispatchEnv`), so there is no tensor copy of its
dynamics: :class:`EpochDispatchCore` holds ``B`` of those objects and offers the interface of a
batched core (``reset(seeds)``, ``step(actions)``, ``action_masks()``, ``observe()``) so that
``make_vec``, the evaluation and the agents drive it as they drive any family.

A step checks every environment's decisions, builds the routing job of each (plain data), solves
the jobs (in a pool of ``routing_workers`` processes, or one after the other in this process),
then drives the routes. PyVRP's search is deterministic for its iteration budget and seed, so
the pool changes the time a step takes, not its result (when ``routing_time_limit_s`` does not
cut a search short).

The state object holds the random keys and the epoch of each environment; the rest of an
episode (the instance, what is served, the fleet) lives in the environment objects. A state can
therefore be read but not assigned: branching simulations from a mid-episode state is not
available in this mode, and a checkpoint restores the keys only (each environment starts the
episode it was in again: see :meth:`EpochDispatchCore.load_state_dict`).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from paretochain.envs.core import BatchedCore, KPIs
from paretochain.envs.dispatch.epoch import EPOCH_KPI_NAMES, EpochDispatchConfig, EpochDispatchEnv, Trip, route_orders
from paretochain.envs.state import BatchState
from paretochain.errors import ActionError, ConfigError


class EpochDispatchCore(BatchedCore[BatchState]):
    """``num_envs`` epoch-dispatch environments stepped together; see the module docstring.

    Args:
        config: the environments' config (an :class:`EpochDispatchConfig`).
        num_envs: batch size.
        device: where observations, rewards and masks are returned (the dynamics run on the host).
        routing_workers: processes solving the environments' routing problems in parallel; 0 solves
            them in this process, one after the other; None: the config's ``epoch.routing_workers``.
    """

    fixed_horizon = False

    def __init__(
        self,
        config: EpochDispatchConfig,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        routing_workers: int | None = None,
    ) -> None:
        super().__init__(num_envs, device)
        if routing_workers is None:
            routing_workers = config.epoch.routing_workers
        if routing_workers < 0:
            raise ConfigError(f"routing_workers must be >= 0, got {routing_workers}")
        self.config = config
        self.envs = [EpochDispatchEnv(config, invalid_action="raise") for _ in range(num_envs)]
        first = self.envs[0]
        self.max_orders = first.max_orders
        self.objectives = first.objectives
        self.objective_names = list(first.objective_names)
        self.observation_layout = first.observation_layout
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.horizon = first.num_epochs
        self.unserved_penalty = first.unserved_penalty
        self.routing_workers = routing_workers
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._obs = np.zeros((num_envs, first.observation_space.shape[0]), dtype=np.float32)
        self._mask: torch.Tensor | None = None
        self._started = np.zeros(num_envs, dtype=bool)  # before its first reset an env holds no order
        self._init_state(BatchState(**self.initial_keys()))

    # ------------------------------------------------------------------ state
    @property  # type: ignore[override]
    def state(self) -> BatchState:
        """The random keys and epoch of every environment (read only: the episodes live in :attr:`envs`)."""
        return self._state

    @state.setter
    def state(self, state: BatchState) -> None:
        raise ConfigError(
            "DispatchEpoch-v0's batched view cannot take a state: its episodes live in the environment objects"
        )

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Put back the random keys of :meth:`state_dict` output and start each environment's episode again.

        A checkpoint holds the keys, not the episodes (they live in the environment objects):
        every environment replays the episode it was in (the same instance) from its first
        epoch. An agent restored from a checkpoint finds observations other than the ones it
        saved and starts its rollout afresh; a resumed run is therefore not bit-exact in this
        mode.

        Raises:
            PolicyFileError: the saved state is of another batch size or misses a field.
        """
        restored = self._saved_state(state)
        restored.t = torch.zeros_like(restored.t)
        self._state = restored.to(self.device)
        self.host_t = 0
        self.seeded = bool(state["seeded"])
        self._reset_envs(self._all_envs)

    # ------------------------------------------------------------------ reset / observe / masks
    def _reset_envs(self, mask: torch.Tensor) -> None:
        keys = self.state.stream_key.cpu().numpy()
        for i in torch.nonzero(mask).flatten().tolist():
            obs, _ = self.envs[i].start_episode(int(keys[i]))
            self._obs[i] = obs
            self._started[i] = True
        self._mask = None

    def observe(self) -> torch.Tensor:
        return torch.as_tensor(self._obs.copy(), device=self.device)

    def action_masks(self) -> torch.Tensor:
        """Bool ``(B, 2 * max_orders)``: per order slot ``[postpone allowed, dispatch allowed]``."""
        if self._mask is None:
            empty = np.tile([True, False], self.max_orders)  # no open order: every slot postpones
            masks = np.stack(
                [env.action_masks() if started else empty for env, started in zip(self.envs, self._started)]
            )
            self._mask = torch.as_tensor(masks, device=self.device)
        return self._mask

    def check_action(self, action: torch.Tensor) -> None:
        """Raise :class:`~paretochain.errors.ActionError` for actions outside the space or a masked decision,
        naming the environment and the order slot."""
        self._check_in_space(action)
        pairs = self.action_masks().reshape(self.num_envs, self.max_orders, 2)
        dispatch = action.reshape(self.num_envs, self.max_orders).to(pairs.device).long() == 1
        allowed = torch.where(dispatch, pairs[..., 1], pairs[..., 0])
        if bool(allowed.all()):
            return
        env, slot = (int(x) for x in torch.nonzero(~allowed)[0])
        what = "holds no open order" if bool(dispatch[env, slot]) else "must go now"
        raise ActionError(
            f"action[{env}, {slot}] = {int(dispatch[env, slot])} is masked: order slot {slot} of env {env} {what}"
        )

    def fallback_actions(self, action: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Lenient mode's replacement of a forbidden decision: the allowed one (must-go orders go, empty slots wait)."""
        return masks.reshape(self.num_envs, self.max_orders, 2)[..., 1].to(action.dtype)

    # ------------------------------------------------------------------ dynamics
    def _solve(self, jobs: list[Any]) -> list[list[Trip]]:
        """The trips of every routing job: in the worker pool when there is one and more than one job."""
        if self.routing_workers == 0 or len(jobs) < 2:
            return [route_orders(job) for job in jobs]
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.routing_workers, mp_context=multiprocessing.get_context("spawn")
            )
        return list(self._pool.map(route_orders, jobs))

    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, KPIs]:
        decisions = action.reshape(self.num_envs, self.max_orders).cpu().numpy()
        if not self._started.all():
            raise RuntimeError("call reset() before stepping DispatchEpoch-v0's batched view")
        live = [i for i, env in enumerate(self.envs) if not env.done]
        planned = [self.envs[i].plan_step(decisions[i]) for i in live]
        routed = self._solve([job for job, _ in planned if job.slots.size])
        k = len(self.objectives)
        reward = np.zeros((self.num_envs, k), dtype=np.float32)
        kpis = np.zeros((self.num_envs, len(EPOCH_KPI_NAMES)), dtype=np.float32)
        terminated = np.array([env.done for env in self.envs])
        trips = iter(routed)
        for i, (job, replaced) in zip(live, planned):
            obs, r, done, _, info = self.envs[i].finish_step(next(trips) if job.slots.size else [], replaced)
            self._obs[i] = obs
            reward[i] = r
            kpis[i] = [info[name] for name in EPOCH_KPI_NAMES]
            terminated[i] = done
        self._mask = None
        dev = self.device
        return (
            torch.as_tensor(reward, device=dev),
            torch.as_tensor(terminated, device=dev),
            torch.zeros(self.num_envs, dtype=torch.bool, device=dev),
            KPIs(EPOCH_KPI_NAMES, values=torch.as_tensor(kpis, device=dev)),
        )

    def snapshot(self, env_index: int = 0) -> dict[str, np.ndarray]:
        env = self.envs[env_index]
        return {
            "epoch": np.array(env.epoch),
            "served": env.served.copy(),
            "lost": env.lost.copy(),
            "vehicle_free": env.vehicle_free.copy(),
        }

    def close(self) -> None:
        """Stop the routing workers (a later step starts them again)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
