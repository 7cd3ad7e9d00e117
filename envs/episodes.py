"""The one episode loop: whether episodes ended, same-step autoreset, and per-episode bookkeeping.

The vector view, the SB3 adapter, MO-PPO, MO-DQN and :func:`paretochain.evaluate.rollout.rollout`
step a :class:`~paretochain.envs.core.BatchedCore` and use these pieces to end and restart
episodes the same way.

A fixed-horizon core's episodes all end together at the horizon, which the core counts on the
host (``host_t``): the question "did an episode end?" is then answered without reading the
device. A core with variable episode lengths (Dispatch) answers from the ``done`` flags, which
costs a device-to-host copy; on a GPU a caller may skip that copy (``sync=False``) and reset the
ended rows unconditionally.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from paretochain.envs.core import BatchedCore


def episodes_may_have_ended(core: BatchedCore, done: torch.Tensor, sync: bool = True) -> bool:
    """Whether any row's episode may have ended at the step that returned ``done`` ``(B,)``.

    Fixed-horizon cores answer exactly from the host-side period counter. Other cores read
    ``done`` (``sync=True``) or, with ``sync=False``, answer True without reading the device.
    """
    if core.fixed_horizon:
        return core.host_t >= core.horizon
    return not sync or bool(done.any())


def all_episodes_ended(core: BatchedCore, alive: torch.Tensor) -> bool:
    """Whether every row's first episode has ended (``alive`` ``(B,)``: rows still in it), for loops without autoreset."""
    if core.fixed_horizon:
        return core.host_t >= core.horizon
    return not bool(alive.any())


@dataclass
class Autoreset:
    """What :func:`autoreset` did to a step's observations.

    Attributes:
        obs: ``(B, obs_dim)`` the observation to act on next: the first of a new episode where
            ``done``, the step's observation elsewhere.
        done: ``(B,)`` bool, the rows whose episode ended at the step.
        reset: whether rows were reset (False: ``obs`` is the step's observation as is).
        final_obs: ``(B, obs_dim)`` the step's observation before any reset.
    """

    obs: torch.Tensor
    done: torch.Tensor
    reset: bool
    final_obs: torch.Tensor


def autoreset(
    core: BatchedCore, obs: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor, sync: bool = True
) -> Autoreset:
    """Same-step autoreset after ``core.step``: start a new episode in every row whose episode ended.

    Args:
        core: the core that was stepped.
        obs: the step's observations ``(B, obs_dim)``.
        terminated, truncated: the step's flags ``(B,)``.
        sync: read the flags on the host to skip the reset when no episode ended (see
            :func:`episodes_may_have_ended`); fixed-horizon cores never read them.
    """
    done = terminated | truncated
    if not episodes_may_have_ended(core, done, sync):
        return Autoreset(obs, done, False, obs)
    fresh = core.reset() if core.fixed_horizon else core.reset(mask=done)
    return Autoreset(torch.where(done.unsqueeze(1), fresh, obs), done, True, obs)


class EpisodeTracker:
    """Running returns and lengths of a batch's episodes, and the sums over the episodes finished since the last read.

    Kept on the device; nothing is read back until :meth:`finished` is called.

    Args:
        num_envs: batch size ``B``.
        k: number of objectives.
        device: where the tensors live.
    """

    def __init__(self, num_envs: int, k: int, device: str | torch.device) -> None:
        self.episode_return = torch.zeros(num_envs, k, device=device)
        self.episode_length = torch.zeros(num_envs, device=device)
        self.clear_finished()

    def clear_finished(self) -> None:
        """Forget the finished episodes (after their statistics were read)."""
        dev = self.episode_return.device
        k = self.episode_return.shape[1]
        self.finished_return = torch.zeros(k, device=dev, dtype=torch.float64)
        self.finished_scalarised = torch.zeros((), device=dev, dtype=torch.float64)
        self.finished_count = torch.zeros((), device=dev, dtype=torch.float64)
        self.finished_length = torch.zeros((), device=dev, dtype=torch.float64)

    def record(self, reward: torch.Tensor, done: torch.Tensor, preference: torch.Tensor | None = None) -> None:
        """Add a step's rewards ``(B, k)``; the rows ``done`` ``(B,)`` finish their episode (scalarised by ``preference``)."""
        self.episode_return += reward
        self.episode_length += 1
        if preference is not None:
            scalarised = (self.episode_return * preference).sum(1)
            self.finished_scalarised += torch.where(done, scalarised, 0.0).sum().double()
        self.finished_return += torch.where(done.unsqueeze(1), self.episode_return, 0.0).sum(0).double()
        self.finished_count += done.sum().double()
        self.finished_length += torch.where(done, self.episode_length, 0.0).sum().double()
        self.episode_return = torch.where(done.unsqueeze(1), 0.0, self.episode_return)
        self.episode_length = torch.where(done, 0.0, self.episode_length)
