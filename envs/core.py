"""The batched core every environment family builds on.

A core holds the state of ``num_envs`` environments as tensors with a leading
batch dimension and steps all of them in one call, on the CPU or a GPU. The
family's dynamics are written once, here-shaped; the Gymnasium single view and
the vector view in :mod:`paretochain.envs.views` only convert and reset.

Randomness is counter-based (:mod:`paretochain.envs._rng`): environment ``i``
of a batch seeded with ``s`` follows exactly the episode of a single
environment seeded with ``s``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from gymnasium import spaces

from paretochain.envs import _rng
from paretochain.envs.checks import check_finite, finite_check_requested
from paretochain.envs.objectives import ObjectiveSet
from paretochain.envs.state import BatchState
from paretochain.errors import ActionError, PolicyFileError


class KPIs(Mapping[str, torch.Tensor]):
    """The business figures of a step: a read-only mapping name -> ``(B,)`` tensor.

    Backed by one ``(B, n)`` matrix (``values``) so that cores build it with one
    reduction and views convert it with one copy.
    """

    __slots__ = ("_map", "_raw", "_values", "names")

    def __init__(
        self,
        names: Sequence[str],
        values: torch.Tensor | None = None,
        raw: torch.Tensor | None = None,
        linear_map: torch.Tensor | None = None,
    ) -> None:
        self.names = tuple(names)
        self._values = values
        self._raw, self._map = raw, linear_map

    @property
    def values(self) -> torch.Tensor:  # type: ignore[override]  # the KPI matrix, not Mapping's view of values
        """The ``(B, n)`` matrix (computed on first access when built from raw sums and a linear map)."""
        if self._values is None:
            assert self._raw is not None and self._map is not None
            self._values = self._raw @ self._map
        return self._values

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self.values[:, self.names.index(name)]
        except ValueError:
            raise KeyError(f"no KPI {name!r}; this environment reports {list(self.names)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def kpi_matrix(kpis: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The ``(B, n)`` matrix of a step's KPIs, in their order (:attr:`KPIs.values`, or a dict's columns stacked)."""
    return kpis.values if isinstance(kpis, KPIs) else torch.stack(list(kpis.values()), dim=1)


def nearest_allowed(action: torch.Tensor, masks: torch.Tensor, nvec: np.ndarray) -> torch.Tensor:
    """Per dimension of MultiDiscrete ``action`` ``(B, D)``, the choice allowed by ``masks`` ``(B, sum(nvec))``
    nearest to the one asked for (ties: the higher); ``(B, D)`` int64."""
    device = action.device
    sizes = torch.as_tensor(np.asarray(nvec, dtype=np.int64), device=device)
    offsets = torch.cumsum(sizes, 0) - sizes
    level = torch.arange(int(sizes.max()), device=device)
    real = level.unsqueeze(0) < sizes.unsqueeze(1)  # (D, W): levels that exist in each dimension
    columns = offsets.unsqueeze(1) + torch.minimum(level.unsqueeze(0), sizes.unsqueeze(1) - 1)
    allowed = masks[:, columns] & real  # (B, D, W)
    asked = action.unsqueeze(2)
    # twice the distance, plus one below the asked level: the nearest first, the higher of two equally near
    rank = 2 * (level - asked).abs() + (level < asked).long()
    return torch.where(allowed, rank, torch.iinfo(torch.int64).max).argmin(2)


@dataclass
class StepOutput:
    """What one batched step returns; every tensor has the batch as first dimension.

    Attributes:
        obs: observations after the step, float32 ``(B, obs_dim)``.
        reward: vector rewards, float32 ``(B, k)``, one column per objective.
        terminated: episode reached a terminal state, bool ``(B,)``.
        truncated: episode was cut by its horizon, bool ``(B,)``.
        kpis: the business figures behind the reward, float32 ``(B,)`` each
            (a plain dict, or :class:`KPIs` backed by one matrix).
    """

    obs: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    kpis: Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Segment:
    """Where one named block of the flat observation lies and how it is shaped per environment."""

    start: int
    stop: int
    shape: tuple[int, ...]
    description: str


class ObservationLayout:
    """Named blocks of a flat observation vector, built in order."""

    def __init__(self) -> None:
        self.segments: dict[str, Segment] = {}
        self.size = 0

    def add(self, name: str, shape: tuple[int, ...], description: str) -> None:
        numel = int(np.prod(shape)) if shape else 1
        self.segments[name] = Segment(self.size, self.size + numel, shape, description)
        self.size += numel

    def to_dict(self) -> dict[str, dict[str, object]]:
        return {
            name: {"start": s.start, "stop": s.stop, "shape": list(s.shape), "description": s.description}
            for name, s in self.segments.items()
        }

    def unflatten(self, obs: np.ndarray | torch.Tensor) -> dict[str, np.ndarray | torch.Tensor]:
        """Split ``(..., obs_dim)`` observations into named arrays of their documented shapes."""
        lead = tuple(obs.shape[:-1])
        return {name: obs[..., s.start : s.stop].reshape(lead + s.shape) for name, s in self.segments.items()}


StateT = TypeVar("StateT", bound=BatchState)


class BatchedCore(ABC, Generic[StateT]):
    """Base class of the batched dynamics of one environment family.

    Subclasses set ``objectives``, ``observation_layout``, ``single_observation_space``,
    ``single_action_space`` and ``horizon`` in their constructor, build their state object
    (a :class:`~paretochain.envs.state.BatchState` subclass, starting from :meth:`initial_keys`)
    with :meth:`_init_state`, then implement :meth:`_reset_envs`, :meth:`_step` and :meth:`observe`.

    Everything that changes within an episode lives in :attr:`state`; what the core keeps
    besides is the instance (constants of the config) and caches derived from the state
    (the step keys of the current episodes, the masks of the current period), rebuilt
    whenever a state is assigned.

    Args:
        num_envs: batch size ``B``.
        device: torch device holding every state tensor.
    """

    objectives: ObjectiveSet
    observation_layout: ObservationLayout
    single_observation_space: spaces.Box
    single_action_space: spaces.Space
    horizon: int
    #: True when every episode lasts exactly ``horizon`` steps, so the views know
    #: when episodes end without reading the ``done`` flags back from the device.
    fixed_horizon: bool = True
    #: True when the action masks are the same in every period of every episode, so the
    #: single-env view reads them once.
    masks_fixed: bool = False

    def __init__(self, num_envs: int, device: str | torch.device = "cpu") -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device='cuda' was requested but torch sees no CUDA device")
        self.seeded = False  # some env was reset with a seed (else a view seeds the first reset itself)
        #: Steps since the last full reset, counted on the host: with a fixed horizon, the loops of the views
        #: and agents know when every episode ends without reading ``t`` back from the device.
        self.host_t = 0
        #: every step key of the current episodes (fixed horizon), period-major ``(T + 1, B)``
        self._episode_keys: torch.Tensor | None = None
        self._keys_source: torch.Tensor | None = None  # the stream keys the table was made from
        self._draw: _rng.StepDraw | None = None  # the current period's randomness handle, see step_draw
        self._draw_source: tuple[torch.Tensor, torch.Tensor] | None = None  # the period and keys it was made from
        self._counter_hashes: torch.Tensor | None = None
        self._rows = torch.arange(num_envs, device=self.device)
        self._one_env_on_cpu = num_envs == 1 and self.device.type == "cpu"
        self._period_of: torch.Tensor | None = None  # the state's ``t`` that ``_period`` was read from
        self._period = 0
        self._one_period = torch.ones((), dtype=torch.int64, device=self.device)
        self._draw_sites: list[_rng.DrawSite] = []
        self._all_envs = torch.ones(num_envs, dtype=torch.bool, device=self.device)  # the mask of a full reset
        #: raise on a NaN or infinite observation or reward (``PARETOCHAIN_CHECK_FINITE=1``; :mod:`~paretochain.envs.checks`)
        self.check_finite = finite_check_requested()

    # ------------------------------------------------------------------ state
    def initial_keys(self) -> dict[str, torch.Tensor]:
        """The shared fields of a fresh state (:class:`~paretochain.envs.state.BatchState`): zeros ``(B,)`` int64."""
        return {
            name: torch.zeros(self.num_envs, dtype=torch.int64, device=self.device) for name in BatchState.field_names()
        }

    def _init_state(self, state: StateT) -> None:
        """Set the state a family's constructor built (no caches to rebuild yet)."""
        self._state = state

    @property
    def state(self) -> StateT:
        """The batch's state, read and written by the dynamics.

        Assign a state to replace it (a copy is kept, on this core's device, and the caches
        derived from it are rebuilt): ``core.state = other.state[rows].repeat(k)``. To change
        some rows, write them into a copy and assign the copy (``s = core.state.clone();
        s[rows] = x; core.state = s``), not into the live state.

        Raises (on assignment):
            TypeError: a state of another family.
            ValueError: a batch of another size than ``num_envs``.
        """
        return self._state

    @state.setter
    def state(self, state: StateT) -> None:
        if type(state) is not type(self._state):
            raise TypeError(f"{type(self).__name__} takes a {type(self._state).__name__}, got {type(state).__name__}")
        if state.batch_size != self.num_envs:
            raise ValueError(f"the state holds {state.batch_size} environments, this core steps {self.num_envs}")
        self._state = state.to(self.device)
        # a fixed horizon's episodes end together: the host count follows the furthest env
        self.host_t = int(self._state.t.max())
        self._state_replaced()

    def _state_replaced(self) -> None:
        """Rebuild what the core derives from its state (a family adds its own caches)."""
        self._episode_keys = None
        self._period_of = None
        self._prepare_episode(None)

    # ------------------------------------------------------------------ seeding and reset
    def reset(self, seeds: Sequence[int] | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Start new episodes and return the observations of the whole batch.

        Args:
            seeds: one seed per environment in the batch (or per masked environment);
                ``None`` continues each environment's stream with its next episode.
            mask: bool ``(B,)`` selecting which environments start over; ``None`` means all.
        """
        if mask is None and seeds is None:  # every env starts its next episode
            self.host_t = 0
            return self._finite(self._next_episodes(), "reset")
        full = mask is None  # every env starts over: the new values replace the old without a select
        if mask is None:
            mask = self._all_envs
            self.host_t = 0
        st = self.state
        if seeds is not None:
            seeds = list(seeds)
            idx = torch.nonzero(mask).flatten()
            if len(seeds) != idx.numel():
                raise ValueError(f"got {len(seeds)} seeds for {idx.numel()} environments to reset")
            halves = [_rng.split_seed(int(s)) for s in seeds]
            lo = torch.tensor([h[0] for h in halves], dtype=torch.int64, device=self.device)
            hi = torch.tensor([h[1] for h in halves], dtype=torch.int64, device=self.device)
            # out of place: the keys may be inference tensors created under torch.inference_mode
            st.key_lo = st.key_lo.index_put((idx,), lo)
            st.key_hi = st.key_hi.index_put((idx,), hi)
            st.episode = st.episode.index_put((idx,), torch.zeros_like(lo))
            self.seeded = True
        else:
            lo, hi = _rng.next_episode_seed(st.key_lo, st.key_hi, st.episode + 1)
            st.key_lo = torch.where(mask, lo, st.key_lo)
            st.key_hi = torch.where(mask, hi, st.key_hi)
            st.episode = torch.where(mask, st.episode + 1, st.episode)
        stream_key = _rng.derive_key(st.key_lo, st.key_hi)
        st.stream_key = stream_key if full else torch.where(mask, stream_key, st.stream_key)
        st.t = torch.zeros_like(st.t) if full else torch.where(mask, torch.zeros_like(st.t), st.t)
        self._prepare_episode(None if full else mask)
        self._reset_envs(mask)
        return self._finite(self.observe(), "reset")

    def _next_episodes(self) -> torch.Tensor:
        """Every env starts the next episode of its stream; the observations."""
        self._next_keys()
        return self._start_episodes()

    def _next_keys(self) -> None:
        """Every env's keys move on to its next episode."""
        st = self.state
        if self.num_envs == 1 and self.device.type == "cpu":
            # one env: the same hashes on Python ints, a fraction of the cost of their dozens of tensor operations
            keys = _rng.next_episodes_on_host(int(st.key_lo), int(st.key_hi), int(st.episode), 1)
            st.key_lo, st.key_hi, st.episode, st.stream_key = torch.tensor(keys).view(4, 1).clone().unbind(0)
            return
        st.key_lo, st.key_hi = _rng.next_episode_seed(st.key_lo, st.key_hi, st.episode + 1)
        st.episode = st.episode + 1
        st.stream_key = _rng.derive_key(st.key_lo, st.key_hi)

    def _start_episodes(self) -> torch.Tensor:
        """Every env starts the episode of its ``stream_key``; the observations."""
        self.state.t = torch.zeros_like(self.state.t)
        self._prepare_episode(None)
        self._reset_envs(self._all_envs)
        return self.observe()

    def register_draw_sites(self, *sites: _rng.DrawSite) -> None:
        """Declare the draw sites of the dynamics, so fixed-horizon cores can cache their episodes at reset."""
        self._draw_sites.extend(sites)

    def step_draw(self) -> _rng.StepDraw:
        """The randomness handle of the current step, passed to every ``DrawSite.uniform`` in :meth:`_step`.

        One handle serves every call of a period: it is made again when the state's period or stream keys
        are new tensors (every step, reset or assigned state replaces them).
        """
        st = self.state
        if self.fixed_horizon and self._keys_source is not st.stream_key:
            self._prepare_episode(None)  # the stream keys were replaced since the table was made
        source = self._draw_source
        if self._draw is not None and source is not None and source[0] is st.t and source[1] is st.stream_key:
            return self._draw
        period = self.host_period() if self._one_env_on_cpu else None
        if self._episode_keys is not None:
            # the keys are looked up in the table only if a site without a cache asks for them
            draw = _rng.StepDraw(None, st.t, self._episode_keys, self._rows, period)
        else:
            draw = _rng.StepDraw(_rng.step_keys(st.stream_key, st.t), st.t, period=period)
        self._draw, self._draw_source = draw, (st.t, st.stream_key)
        return draw

    def period_rows(self, table: torch.Tensor) -> torch.Tensor:
        """Row ``t`` of a per-period ``table`` ``(T + 1, ...)`` for every env, ``(B, ...)``, whatever their periods.

        A new tensor, or (one env on the CPU, whose period is read as a number) a view of ``table``: callers do
        not write into it.
        """
        if self._one_env_on_cpu:
            period = self.host_period()
            return table[period : period + 1]
        return table.index_select(0, self.state.t)

    def host_period(self) -> int:
        """The period of a batch of one, read on the host once per period: every step, reset and assigned
        state makes ``t`` a new tensor, and the first call after it reads the value."""
        t = self.state.t
        if self._period_of is not t:
            self._period, self._period_of = int(t), t
        return self._period

    def _prepare_episode(self, mask: torch.Tensor | None) -> None:
        """Fixed horizon: compute every step key of the new episodes (and cached draws) in one pass.

        ``mask`` selects the envs that start over; ``None`` means all of them.
        """
        if not self.fixed_horizon:
            return
        if self._counter_hashes is None:  # the same for every episode: hashed once
            self._counter_hashes = _rng.counter_hashes(self.horizon + 1, self.device).unsqueeze(1)
        keys = _rng.mix32(self.state.stream_key.unsqueeze(0) ^ self._counter_hashes)  # (T + 1, B)
        if self._episode_keys is None or mask is None:
            self._episode_keys = keys
        else:
            self._episode_keys = torch.where(mask.unsqueeze(0), keys, self._episode_keys)
        self._keys_source = self.state.stream_key
        self._draw = None  # its table of step keys is new
        for site in self._draw_sites:
            site.prepare(self._episode_keys, mask)

    def step(self, action: torch.Tensor, check: bool = True) -> StepOutput:
        """Advance every environment by one period.

        Args:
            action: batched actions in the layout of ``single_action_space``.
            check: validate the actions (and masks) first; agents that build actions
                from the masks by construction may skip it to avoid a device sync.
        """
        self._check_not_ended()
        if not isinstance(action, torch.Tensor) or action.device != self.device:
            action = torch.as_tensor(action, device=self.device)
        if check:
            self.check_action(action)
        reward, terminated, truncated, kpis = self._step(action)
        self.state.t = self.state.t + self._one_period  # a 0-dim tensor: cheaper to add than the number 1
        self.host_t += 1
        self._stepped()
        return self._finite_step(StepOutput(self.observe(), reward, terminated, truncated, kpis))

    def _finite(self, obs: torch.Tensor, doing: str) -> torch.Tensor:
        """``obs``, checked first when :attr:`check_finite` is on."""
        if self.check_finite:
            check_finite(self, doing, obs)
        return obs

    def _finite_step(self, out: StepOutput) -> StepOutput:
        """``out``, checked first when :attr:`check_finite` is on."""
        if self.check_finite:
            check_finite(self, "step", out.obs, out.reward)
        return out

    def _check_not_ended(self) -> None:
        if self.fixed_horizon and self.host_t >= self.horizon:
            raise RuntimeError(f"the episodes ended after {self.horizon} periods: call reset() before stepping again")

    def _stepped(self) -> None:
        """Called after every step (a core may drop what it kept for the period just ended)."""

    # ------------------------------------------------------------------ actions
    def action_masks(self) -> torch.Tensor | None:
        """Bool mask of allowed actions, ``(B, n)`` for Discrete, ``(B, sum(nvec))`` for MultiDiscrete; None if all allowed."""
        return None

    def check_action(self, action: torch.Tensor) -> None:
        """Raise :class:`ActionError` naming the first offending environment and entry."""
        self._check_in_space(action)
        space = self.single_action_space
        if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
            masks = self.action_masks()
            if masks is not None:
                self._check_mask(action.long(), masks)

    def _check_in_space(self, action: torch.Tensor) -> None:
        """Raise :class:`ActionError` for actions outside the space (shape, integers, bounds); masks are not read."""
        space = self.single_action_space
        b = self.num_envs
        if isinstance(space, spaces.Discrete):
            expected: tuple[int, ...] = (b,)
        else:
            expected = (b, *(space.shape or ()))
        if tuple(action.shape) != expected:
            raise ActionError(f"action has shape {tuple(action.shape)}, expected {expected} for {space}")
        if isinstance(space, spaces.Box):
            low = torch.as_tensor(space.low, device=self.device)
            high = torch.as_tensor(space.high, device=self.device)
            bad = ~torch.isfinite(action) | (action < low) | (action > high)
            if bool(bad.any()):
                env, *entry = (int(i) for i in torch.nonzero(bad)[0])
                value = float(action[env][tuple(entry)])
                problem = (
                    f"is outside [{float(space.low[tuple(entry)])}, {float(space.high[tuple(entry)])}]"
                    if math.isfinite(value)
                    else "is not finite"
                )
                raise ActionError(f"action of env {env} at index {entry}: {value} {problem}")
            return
        if action.is_floating_point() and bool((action != action.round()).any()):
            raise ActionError(f"{type(space).__name__} actions must be integers, got {action}")
        if isinstance(space, spaces.Discrete):
            high_d = torch.full((b,), space.n - 1, device=self.device)
        elif isinstance(space, spaces.MultiDiscrete):
            high_d = torch.as_tensor(space.nvec - 1, device=self.device).expand(expected)
        else:
            return
        bad = (action < 0) | (action > high_d)
        if bool(bad.any()):
            where = [int(i) for i in torch.nonzero(bad)[0]]
            raise ActionError(
                f"action {action[tuple(where)].item()} of env {where[0]} (entry {where[1:]}) is outside {space}"
            )

    def replace_disallowed(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The lenient counterpart of :meth:`check_action` (``invalid_action="fallback"``).

        An action the masks forbid is replaced by the family's fallback (:meth:`fallback_actions`);
        a Box entry outside the bounds is clipped to them. Returns the actions to step and the
        number of entries replaced or clipped per env, float32 ``(B,)``.

        Raises:
            ActionError: the actions do not fit the space at all: a wrong shape, values that are not
                integers (Discrete, MultiDiscrete), an index outside the space, a value that is not finite.
        """
        space = self.single_action_space
        none = torch.zeros(self.num_envs, dtype=torch.float32, device=self.device)
        if isinstance(space, spaces.Box):
            if tuple(action.shape) != (self.num_envs, *space.shape) or not bool(torch.isfinite(action).all()):
                self._check_in_space(action)  # names the shape expected or the entry that is not finite
            low = torch.as_tensor(space.low, device=self.device)
            high = torch.as_tensor(space.high, device=self.device)
            asked = action.to(low.dtype)  # (a float64 value counts as asked once in the space's dtype)
            clipped = torch.minimum(torch.maximum(asked, low), high)
            changed = (clipped != asked).reshape(self.num_envs, -1).sum(1)
            return clipped, changed.to(torch.float32)
        self._check_in_space(action)
        masks = self.action_masks()
        if masks is None:
            return action, none
        chosen = action.long()
        if isinstance(space, spaces.Discrete):
            allowed = masks.gather(1, chosen.view(-1, 1)).squeeze(1)
            if bool(allowed.all()):
                return chosen, none
            return torch.where(allowed, chosen, self.fallback_actions(chosen, masks)), (~allowed).to(torch.float32)
        assert isinstance(space, spaces.MultiDiscrete)
        offsets = torch.as_tensor(np.concatenate([[0], np.cumsum(space.nvec)[:-1]]), device=self.device)
        allowed_md = masks.gather(1, chosen + offsets)
        if bool(allowed_md.all()):
            return chosen, none
        replaced = torch.where(allowed_md, chosen, self.fallback_actions(chosen, masks))
        return replaced, (~allowed_md).sum(1).to(torch.float32)

    def fallback_actions(self, action: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """What replaces a forbidden action in lenient mode, for every env (the caller keeps the allowed entries).

        The default: for ``Discrete`` the lowest allowed index; for ``MultiDiscrete``, per dimension, the allowed
        choice nearest to the one asked for (ties: the higher). Families document their own fallback.
        """
        space = self.single_action_space
        if isinstance(space, spaces.Discrete):
            return masks.to(torch.int8).argmax(1)
        assert isinstance(space, spaces.MultiDiscrete)
        return nearest_allowed(action, masks, space.nvec)

    def _check_mask(self, action: torch.Tensor, masks: torch.Tensor) -> None:
        space = self.single_action_space
        if isinstance(space, spaces.Discrete):
            allowed = masks.gather(1, action.view(-1, 1)).squeeze(1)
        else:
            assert isinstance(space, spaces.MultiDiscrete)
            offsets = torch.as_tensor(np.concatenate([[0], np.cumsum(space.nvec)[:-1]]), device=self.device)
            allowed = masks.gather(1, action + offsets).all(dim=1)
        if not bool(allowed.all()):
            env = int(torch.nonzero(~allowed)[0])
            raise ActionError(f"action {action[env].tolist()} of env {env} is not allowed by its action mask")

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def _reset_envs(self, mask: torch.Tensor) -> None:
        """Put the environments selected by ``mask`` in their starting state."""

    @abstractmethod
    def _step(
        self, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Mapping[str, torch.Tensor]]:
        """One period of the dynamics for the whole batch (``self.state.t`` is the period being played).

        Returns the reward ``(B, k)``, terminated and truncated flags ``(B,)`` (judged
        after the period, i.e. at ``t + 1``) and the KPI tensors; the base class then
        advances ``t`` and observes.
        """

    @abstractmethod
    def observe(self) -> torch.Tensor:
        """Observations of the whole batch, float32 ``(B, obs_dim)``."""

    def observation_scale(self) -> np.ndarray | None:
        """Typical magnitude of each observation feature, float32 ``(obs_dim,)``, or None if not declared.

        Agents that scale observations (MO-PPO's ``obs_scale="env"``) divide by it: a
        fixed scale keeps what a state means, where running statistics drift with the
        states an untrained policy happens to visit.
        """
        return None

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The state's fields (copies of tensors) and the host counters, for exact resume: tensors and plain data only."""
        return {
            "fields": self.state.to_dict(),
            "num_envs": self.num_envs,
            "host_t": self.host_t,
            "seeded": self.seeded,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Put :meth:`state_dict` output back into a core of the same family, config and batch size.

        Raises:
            PolicyFileError: the saved state is of another batch size, misses a field, or a field's
                shape or dtype differs from this core's.
        """
        self.state = self._saved_state(state)
        self.host_t = int(state["host_t"])
        self.seeded = bool(state["seeded"])

    def _saved_state(self, state: Mapping[str, Any]) -> StateT:
        """The state held by :meth:`state_dict` output, checked against this core (PolicyFileError otherwise)."""
        if not isinstance(state, Mapping) or not isinstance(state.get("fields"), Mapping):
            raise PolicyFileError("checkpoint environment state is not a state_dict of an environment core")
        if state.get("num_envs") != self.num_envs:
            raise PolicyFileError(
                f"checkpoint holds {state.get('num_envs')} environments, this env has {self.num_envs}"
            )
        return type(self.state).from_dict(state["fields"], like=self.state)

    def snapshot(self, env_index: int = 0) -> dict[str, np.ndarray]:
        """Numpy copy of one environment's state, for rendering and reports."""
        return {}
