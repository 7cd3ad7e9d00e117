"""The two thin views over a batched core: a Gymnasium env and a Gymnasium vector env."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from paretochain.envs.config import ConfigModel
from paretochain.envs.core import BatchedCore, KPIs, StepOutput, kpi_matrix
from paretochain.envs.episodes import autoreset
from paretochain.errors import ActionError, ConfigError

_THREAD = threading.local()
#: how many distinct actions a single env keeps as ready batches (:meth:`SingleEnv._allowed_batch`)
_KNOWN_ACTIONS = 4096


def _no_autograd() -> torch.inference_mode:
    """This thread's reusable ``torch.inference_mode()`` context.

    Entering a stored instance costs a fraction of building one per call, which is
    as much as several of a small step's tensor operations.
    """
    mode = getattr(_THREAD, "inference_mode", None)
    if mode is None:
        mode = _THREAD.inference_mode = torch.inference_mode()
    return mode


def _numpy(x: torch.Tensor) -> np.ndarray:
    """A numpy view (CPU) or copy (other devices) of a tensor."""
    return x.numpy() if x.device.type == "cpu" else x.cpu().numpy()


def reward_box(core: BatchedCore) -> spaces.Box:
    """The per-step reward space: unbounded float32 vector with one entry per objective."""
    k = len(core.objectives)
    return spaces.Box(low=-np.inf, high=np.inf, shape=(k,), dtype=np.float32)


#: What an action outside the action mask does (the ``invalid_action`` option of both views).
INVALID_ACTION_MODES = ("fallback", "raise")


def check_invalid_action_mode(mode: str) -> str:
    """``mode`` when it is one of :data:`INVALID_ACTION_MODES`, else :class:`ConfigError`."""
    if mode not in INVALID_ACTION_MODES:
        raise ConfigError(f"invalid_action must be one of {list(INVALID_ACTION_MODES)}, got {mode!r}")
    return mode


def refuse_non_numeric(action: Any, space: spaces.Space) -> None:
    """Raise :class:`ActionError` for an action that is not numbers at all: None, text, a mapping, objects."""
    if isinstance(action, (bool, int, float, np.number, np.bool_, torch.Tensor)):
        return
    if isinstance(action, np.ndarray):
        kind = action.dtype.kind
    elif isinstance(action, (list, tuple)):
        kind = _kind_of_items(action)
    else:
        kind = "O"
    if kind not in "biuf":  # bool, signed, unsigned, float
        raise ActionError(f"action must be a number or an array of numbers for {space}, got {action!r}")


def _kind_of_items(action: Sequence[Any]) -> str:
    """The numpy dtype kind of a (nested) list, 'O' where it holds anything but numbers."""
    try:
        return np.asarray(action).dtype.kind
    except (ValueError, TypeError):  # ragged or mixed nesting
        return "O"


def _to_numpy_action(space: spaces.Space, action: Any, clip: bool = False) -> tuple[np.ndarray, int]:
    """Convert a user action to an array, refusing what is outside the space with a clear message.

    With ``clip``, Box entries outside the bounds (but finite) are clipped to them instead of refused.
    Returns the array and the number of entries clipped.
    """
    if isinstance(space, spaces.Discrete) and isinstance(action, (int, np.integer)) and not isinstance(action, bool):
        if not 0 <= action < space.n:
            raise ActionError(f"action {action} is outside {space} (allowed 0..{space.n - 1})")
        return np.array(action), 0
    if isinstance(action, torch.Tensor):
        action = action.detach().cpu().numpy()
    refuse_non_numeric(action, space)
    arr = np.asarray(action)
    if isinstance(space, spaces.Discrete):
        if arr.shape not in ((), (1,)) or (
            not np.issubdtype(arr.dtype, np.integer) and not float(arr.reshape(-1)[0]).is_integer()
        ):
            raise ActionError(f"action {action!r} is not an integer of {space}")
        value = int(arr.reshape(-1)[0])
        if not 0 <= value < space.n:
            raise ActionError(f"action {value} is outside {space} (allowed 0..{space.n - 1})")
        return np.array(value), 0
    if arr.shape != space.shape:
        raise ActionError(f"action has shape {arr.shape}, expected {space.shape} for {space}")
    if isinstance(space, spaces.Box):
        arr = arr.astype(np.float32, copy=False)
        finite = np.isfinite(arr)
        bad = ~finite if clip else ~finite | (arr < space.low) | (arr > space.high)
        if bad.any():
            i = tuple(int(j) for j in np.argwhere(bad)[0])
            where = "is not finite" if not finite[i] else f"is outside [{space.low[i]}, {space.high[i]}]"
            raise ActionError(f"action entry {list(i)} = {arr[i]} {where}")
        if clip:
            clipped = np.clip(arr, space.low, space.high)
            return clipped, int(np.count_nonzero(clipped != arr))
        return arr, 0
    if isinstance(space, spaces.MultiDiscrete):
        if arr.dtype.kind not in "iu":  # not a signed or unsigned integer array
            if not np.all(np.mod(arr, 1) == 0):
                raise ActionError(f"MultiDiscrete action must be integers, got {arr}")
            arr = arr.astype(np.int64)
        bad = (arr < 0) | (arr >= space.nvec)
        if bad.any():
            i = tuple(int(j) for j in np.argwhere(bad)[0])
            raise ActionError(f"action entry {list(i)} = {arr[i]} is outside 0..{space.nvec[i] - 1}")
        return arr.astype(np.int64), 0
    return arr, 0


class SingleEnv(gym.Env):
    """Gymnasium view of a batched core with a batch of one: numpy in, numpy out.

    Subclasses name their ``config_cls`` and ``core_cls`` and may add rendering.
    The reward is a float32 vector (MO-Gymnasium convention): ``reward_space`` and
    ``reward_dim`` describe it; ``info`` carries the KPI breakdown (and the
    ``action_mask`` where the family has one). Every call returns a new ``info``
    holding a new mask array.

    ``invalid_action`` says what an action outside the action mask does:

    - ``"fallback"`` (the default, for clients that read no masks: Gymnasium's and SB3's
      checkers, plain PPO, MORL-Baselines): the forbidden choice is replaced by the family's
      documented fallback, which the mask always allows, and a Box entry outside the bounds is
      clipped to them. ``info["actions_replaced"]`` counts the entries replaced or clipped in
      the step (a KPI; 0 for an allowed action).
    - ``"raise"`` (strict, what the project's own agents, baselines and tests use): such an
      action raises :class:`~paretochain.errors.ActionError` naming it.

    In both modes an action that does not fit the space at all (a wrong shape, an index
    outside it, a value that is not finite, ``None`` or text) raises ``ActionError``.
    """

    config_cls: ClassVar[type[ConfigModel]]
    core_cls: ClassVar[type[BatchedCore]]
    metadata: dict[str, Any] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}  # noqa: RUF012 (Gymnasium's attribute)

    def __init__(
        self,
        config: Any = None,
        render_mode: str | None = None,
        device: str | torch.device = "cpu",
        invalid_action: str = "fallback",
        **overrides: Any,
    ) -> None:
        self.invalid_action = check_invalid_action_mode(invalid_action)
        self._lenient = invalid_action == "fallback"
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.config = self.config_cls.load(config, **overrides)
        self.core = self.core_cls(self.config, num_envs=1, device=device)  # type: ignore[call-arg]
        self.render_mode = render_mode
        self.observation_space = self.core.single_observation_space
        self.action_space = self.core.single_action_space
        self.reward_space = reward_box(self.core)
        self.reward_dim = len(self.core.objectives)
        self.objectives = self.core.objectives
        self.observation_layout = self.core.observation_layout
        self._discrete = isinstance(self.action_space, spaces.Discrete)
        masks = self.core.action_masks()
        self._masked = masks is not None
        # masks that never change are read once; on the CPU the current ones are read in place: either way
        # actions are checked against them on the host
        self._fixed_mask = _numpy(masks)[0].copy() if masks is not None and self.core.masks_fixed else None
        self._host_masks = self._masked and (self._fixed_mask is not None or self.core.device.type == "cpu")
        nvec = np.asarray(getattr(self.action_space, "nvec", [1]))
        self._mask_offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]]) if nvec.ndim == 1 else None
        # MultiDiscrete actions under masks that never change (or no masks): the allowed choices of every
        # dimension as a set, so that plain Python checks an action's bounds and masks together
        self._allowed_choices: list[frozenset[int]] | None = None
        if (
            isinstance(self.action_space, spaces.MultiDiscrete)
            and nvec.ndim == 1
            and (not self._masked or self._fixed_mask is not None)
        ):
            allowed = self._fixed_mask if self._fixed_mask is not None else np.ones(int(nvec.sum()), dtype=bool)
            blocks = np.split(allowed, np.cumsum(nvec)[:-1])
            self._allowed_choices = [frozenset(np.flatnonzero(block).tolist()) for block in blocks]
        # the batches of actions checked before, by their bytes (the cores never write into an action)
        self._known_batches: dict[bytes, torch.Tensor] = {}
        # Discrete: the batch of one of every choice, made once
        self._choice_batches: list[torch.Tensor] | None = None
        if isinstance(self.action_space, spaces.Discrete) and int(self.action_space.start) == 0:
            self._choice_batches = list(torch.arange(int(self.action_space.n), device=self.core.device).view(-1, 1))
        self._action_shape = self.action_space.shape
        self._obs_dim = int(self.core.observation_layout.size)
        self._history: list[dict[str, np.ndarray]] = []

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None and not self.core.seeded:
            seed = int(self.np_random.integers(0, 2**63 - 1))
        with _no_autograd():
            obs = self.core.reset(seeds=None if seed is None else [seed])
        self._history = [self.core.snapshot(0)] if self.render_mode == "rgb_array" else []
        return _numpy(obs)[0], self._info(None)

    def step(self, action: Any) -> tuple[np.ndarray, np.ndarray, bool, bool, dict[str, Any]]:
        batch = self._allowed_batch(action)
        replaced = 0
        if batch is None:  # checked the long way
            batch, replaced = self._checked_batch(action)
        out = self._step_allowed(batch)
        if self.render_mode == "rgb_array":
            self._history.append(self.core.snapshot(0))
        kpis = out.kpis
        matrix = kpi_matrix(kpis)
        if self.core.device.type == "cpu":
            # numpy views of the CPU tensors, copied: cheaper than one cat (which casts the bool flags)
            obs = out.obs.numpy()[0].copy()
            reward = out.reward.numpy()[0].copy()
            terminated, truncated = bool(out.terminated.item()), bool(out.truncated.item())
            info = dict(zip(kpis, matrix.tolist()[0]))
        else:
            # one device-to-host copy for everything the step returns
            d, k = self._obs_dim, self.reward_dim
            flat = _numpy(
                torch.cat(
                    [out.obs, out.reward, out.terminated.unsqueeze(1), out.truncated.unsqueeze(1), matrix],
                    dim=1,
                )
            )[0]
            obs, reward = flat[:d].copy(), flat[d : d + k].copy()
            terminated, truncated = bool(flat[d + k]), bool(flat[d + k + 1])
            info = dict(zip(kpis, flat[d + k + 2 :].tolist()))
        info["actions_replaced"] = float(replaced)
        if self._masked:
            info["action_mask"] = self._info_mask()
        return obs, reward, terminated, truncated, info

    def _allowed_batch(self, action: Any) -> torch.Tensor | None:
        """The batch of one for a Discrete action (a Python or numpy integer) or an int64 MultiDiscrete action
        whose every choice the space and the masks allow; None where that does not hold or cannot be told this
        way (:meth:`_checked_batch` decides then).

        Plain Python checks the bounds and the masks that never change together (the allowed choices of every
        dimension as a set): for a handful of choices, a fraction of the cost of numpy's checks. An action
        allowed before is looked up as the batch it made then.
        """
        choices = self._choice_batches
        if choices is not None:  # Discrete: a Python or numpy integer the current mask allows
            if type(action) is not int and type(action) is not np.int64:
                return None
            if not 0 <= action < len(choices) or (self._masked and not self._host_masks):
                return None
            return None if self._masked and not self._mask_row()[action] else choices[action]
        allowed = self._allowed_choices
        if allowed is None or type(action) is not np.ndarray or action.dtype != np.int64:
            return None
        if action.shape != self._action_shape:
            return None
        key = action.tobytes()
        batch = self._known_batches.get(key)
        if batch is not None:
            return batch
        if not all(c in a for c, a in zip(action.tolist(), allowed)):
            return None
        batch = torch.from_numpy(np.array(action, ndmin=2))  # a copy, shaped as a batch of one
        if self.core.device.type != "cpu":
            batch = batch.to(self.core.device)
        if len(self._known_batches) < _KNOWN_ACTIONS:
            self._known_batches[key] = batch
        return batch

    def _checked_batch(self, action: Any) -> tuple[torch.Tensor, int]:
        """The batch of one for any action: refused where it does not fit the space, a forbidden choice
        replaced (lenient) or refused (strict); and the number of entries replaced or clipped."""
        arr, replaced = _to_numpy_action(self.action_space, action, clip=self._lenient)
        batch = self._batch(arr)
        if self._masked and not (self._host_masks and self._allowed_on_host(arr)):
            with _no_autograd():
                if self._lenient:
                    batch, count = self.core.replace_disallowed(batch)
                    replaced += int(count[0])
                else:
                    self.core.check_action(batch)  # refuses the action, naming the problem
        return batch, replaced

    def _batch(self, arr: np.ndarray) -> torch.Tensor:
        """The batch of one the core steps, from an action checked against the space."""
        if self._discrete:
            rows = arr.reshape(1).astype(np.int64, copy=False)
        else:
            rows = np.ascontiguousarray(arr).reshape((1, *arr.shape))
        batch = torch.from_numpy(rows)
        return batch if self.core.device.type == "cpu" else batch.to(self.core.device)

    def _step_allowed(self, batch: torch.Tensor) -> StepOutput:
        """Step an action the masks allow."""
        with _no_autograd():
            return self.core.step(batch, check=False)

    def _mask_row(self) -> np.ndarray:
        """The current action mask of the env as a numpy array (a view where the core's lives on the CPU)."""
        if self._fixed_mask is not None:
            return self._fixed_mask
        masks = self.core.action_masks()
        assert masks is not None
        return _numpy(masks)[0]

    def _info_mask(self) -> np.ndarray:
        """The action mask an ``info`` carries: a new array every call (callers may keep or change it)."""
        return self._mask_row().copy()

    def _allowed_on_host(self, action: np.ndarray) -> bool:
        """Whether the current mask allows an action already checked against the space."""
        row = self._mask_row()
        if self._discrete:
            return bool(row[int(action)])
        if self._mask_offsets is None or action.ndim != 1:
            return False  # leave other layouts to the core's check
        return bool(row[self._mask_offsets + action].all())

    def _info(self, kpis: Mapping[str, torch.Tensor] | None) -> dict[str, Any]:
        info: dict[str, Any] = {}
        if kpis is not None:
            info = dict(zip(kpis, _numpy(kpi_matrix(kpis))[0].tolist()))
        if self._masked:
            info["action_mask"] = self._info_mask()
        return info

    def action_masks(self) -> np.ndarray:
        """The current action mask (sb3-contrib convention); all ones where the family has none."""
        masks = self.core.action_masks()
        if masks is None:
            space = self.action_space
            n = space.n if isinstance(space, spaces.Discrete) else int(np.sum(getattr(space, "nvec", [1])))
            return np.ones(n, dtype=bool)
        return _numpy(masks)[0].copy()  # the caller's own array: writing into it changes nothing here

    def render(self) -> Any:
        if self.render_mode == "ansi":
            return self.render_ansi()
        if self.render_mode == "rgb_array":
            return self.render_rgb(self._history)
        return None

    def render_ansi(self) -> str:
        return repr(self.core.snapshot(0))

    def render_rgb(self, history: list[dict[str, np.ndarray]]) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no rgb_array rendering")

    def report_figures(self, history: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Images of an episode for evaluation reports (``history``: one snapshot per step)."""
        return {"trajectory": self.render_rgb(history)}


class BatchedVectorEnv(VectorEnv):
    """Gymnasium vector view that steps the whole batch of a core in one call.

    Episodes that end are reset in the same step (``AutoresetMode.SAME_STEP``): the
    returned observation starts the new episode, the last one of the old episode is
    in ``infos["final_obs"]`` where ``infos["_final_obs"]`` is true.

    Args:
        core: the batched core to wrap.
        tensors: return torch tensors on the core's device instead of numpy arrays
            (rewards ``(N, k)``); actions may then be tensors on that device too.
        check_actions: validate every batch of actions (a device sync on a GPU). Without it the
            actions are trusted: neither refused nor replaced (agents that build their actions
            from the masks).
        invalid_action: what an action outside the mask (or a Box entry outside the bounds) does
            when actions are checked: ``"raise"`` (the default of this view, which the project's own
            agents, baselines and evaluation use) raises :class:`~paretochain.errors.ActionError`;
            ``"fallback"`` replaces it as the single view does (the family's fallback, Box entries
            clipped) and counts the entries per env in ``infos["actions_replaced"]``.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}  # noqa: RUF012 (Gymnasium's attribute)

    def __init__(
        self, core: BatchedCore, tensors: bool = False, check_actions: bool = True, invalid_action: str = "raise"
    ) -> None:
        self.core = core
        self.num_envs = core.num_envs
        self.tensors = tensors
        self.check_actions = check_actions
        self.invalid_action = check_invalid_action_mode(invalid_action)
        self.single_observation_space = core.single_observation_space
        self.single_action_space = core.single_action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.reward_space = reward_box(core)
        self.reward_dim = len(core.objectives)
        self.objectives = core.objectives
        self.observation_layout = core.observation_layout
        self.device = core.device

    def _out(self, x: torch.Tensor) -> Any:
        return x if self.tensors else x.cpu().numpy()

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        if isinstance(seed, int):
            seeds: list[int] | None = [seed + i for i in range(self.num_envs)]
        elif seed is None:
            seeds = (
                None
                if self.core.seeded
                else list(
                    np.random.SeedSequence().generate_state(self.num_envs, np.uint64).astype(np.int64) & (2**62 - 1)
                )
            )
        else:
            seeds = list(seed)
        with _no_autograd():
            obs = self.core.reset(seeds=seeds)
            return self._out(obs), self._masks_info({})

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        core = self.core
        if not isinstance(actions, torch.Tensor):
            refuse_non_numeric(actions, self.action_space)
        with _no_autograd():
            act = torch.as_tensor(actions, device=core.device)
            replaced = None
            if self.check_actions and self.invalid_action == "fallback":
                act, replaced = core.replace_disallowed(act)
                out = core.step(act, check=False)
            else:
                out = core.step(act, check=self.check_actions)
            if isinstance(out.kpis, KPIs) and not self.tensors:
                matrix = out.kpis.values.cpu().numpy()
                infos: dict[str, Any] = {name: matrix[:, i] for i, name in enumerate(out.kpis.names)}
            else:
                infos = {name: self._out(v) for name, v in out.kpis.items()}
            if replaced is not None:
                infos["actions_replaced"] = self._out(replaced)
            step_end = autoreset(core, out.obs, out.terminated, out.truncated)
            if step_end.reset:
                infos["final_obs"] = self._out(step_end.final_obs)
                infos["_final_obs"] = self._out(step_end.done)
            return (
                self._out(step_end.obs),
                self._out(out.reward),
                self._out(out.terminated),
                self._out(out.truncated),
                self._masks_info(infos),
            )

    def _masks_info(self, infos: dict[str, Any]) -> dict[str, Any]:
        """``infos`` with the current masks (:meth:`action_masks`)."""
        masks = self.action_masks()
        if masks is not None:
            infos["action_mask"] = masks
        return infos

    def action_masks(self) -> Any:
        """Current masks of the whole batch (``None`` where the family has none): a new numpy array every call,
        or (tensors) the period's mask tensor, which the env never writes into."""
        masks = self.core.action_masks()
        if masks is None or self.tensors:
            return masks
        host = _numpy(masks)
        return host.copy() if masks.device.type == "cpu" else host
