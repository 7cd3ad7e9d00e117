"""The policy contract: everything that acts offers ``act`` on batched tensors.

Baselines, trained agents and loaded TorchScript files all follow it, so that
evaluation and export need nothing else.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


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
