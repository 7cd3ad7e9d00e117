"""The policy contract: everything that acts offers ``act`` on batched tensors.

Baselines, trained agents and loaded TorchScript files all follow it, so that
evaluation and export need nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch

if TYPE_CHECKING:
    from paretochain.agents.preferences import PreferenceSampler


@runtime_checkable
class Policy(Protocol):
    """Something that maps a batch of observations to a batch of actions.

    ``act(obs, preference=None, action_mask=None) -> action``:

    - ``obs``: float32 ``(B, obs_dim)`` on the policy's device, in the environment's
      flat observation layout;
    - ``preference``: float32 ``(B, k)`` weights over the objectives (rows on the
      simplex), or ``None``; policies that are not preference-conditioned ignore it;
    - ``action_mask``: bool ``(B, n)`` where the environment has masks, or ``None``;
    - returns actions ``(B, *action_shape)`` (``(B,)`` for ``Discrete``) that the
      batched environment accepts.
    """

    def act(
        self,
        obs: torch.Tensor,
        preference: torch.Tensor | None = None,
        action_mask: torch.Tensor | None = None,
    ) -> torch.Tensor: ...


class PreferenceConditionedActing(ABC):
    """``act`` and ``default_preference`` of an agent whose actor reads a preference (MO-PPO, DCL).

    The agent sets ``actor`` (``actor(obs, preference, mask) -> actions``), ``sampler`` (its
    :class:`~paretochain.agents.preferences.PreferenceSampler`), ``k``, ``mask_dim`` and
    ``device``, and defines ``_normalize``.
    """

    actor: torch.nn.Module
    sampler: PreferenceSampler
    k: int
    mask_dim: int
    device: torch.device

    @abstractmethod
    def _normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs`` as the actor reads it (the agent's observation normalisation)."""

    def default_preference(self, n: int) -> torch.Tensor:
        """The configured fixed preference, or equal weights, for ``n`` rows."""
        if self.sampler.fixed is not None:
            return self.sampler.fixed.expand(n, self.k)
        return torch.full((n, self.k), 1.0 / self.k, device=self.device)

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Deterministic actions for a batch (the policy contract above)."""
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        n = obs.shape[0]
        pref = (
            self.default_preference(n)
            if preference is None
            else torch.as_tensor(preference, dtype=torch.float32, device=self.device).expand(n, self.k)
        )
        mask = (
            torch.ones(n, self.mask_dim, dtype=torch.bool, device=self.device)
            if action_mask is None
            else action_mask.to(self.device, torch.bool)
        )
        actions: torch.Tensor = self.actor(self._normalize(obs), pref, mask)
        return actions


def set_learning_rate(optimizer: torch.optim.Optimizer, base: float, anneal: bool, step: int, total: int) -> None:
    """Give every parameter group of ``optimizer`` the step size ``base``, or with ``anneal`` its linear decay
    over ``total`` environment steps at ``step`` (never below 1/1000 of ``base``)."""
    lr = max(base * max(0.0, 1.0 - step / total), base * 1e-3) if anneal else base
    for group in optimizer.param_groups:
        group["lr"] = lr


def agent_device(core_device: torch.device, device: str | torch.device, agent: str) -> torch.device:
    """The device an agent runs on: the environment's for ``"auto"``, else ``device``, which must be the environment's.

    Raises:
        ValueError: ``device`` differs from the environment's (the agent steps the environment's own tensors).
    """
    chosen = core_device if str(device) == "auto" else torch.device(device)
    if chosen != core_device:
        raise ValueError(
            f"{agent}: device {chosen} differs from the environment's device {core_device}; "
            f"build the env with make_vec(..., device={str(chosen)!r})"
        )
    return chosen
