"""On-device rollout buffers and per-objective generalised advantage estimation."""

from __future__ import annotations

from typing import Any

import torch


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    next_value: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al., 2016), one column per objective.

    ``done[t]`` marks that the episode ended with step ``t`` (the next stored step
    starts a new episode), so no value is carried across it. Truncated episodes are
    bootstrapped by the caller, who adds ``gamma * V(final observation)`` to the
    reward of the truncating step before calling this.

    Args:
        rewards: ``(T, B, k)`` rewards of each step.
        values: ``(T, B, k)`` value estimates of the observation each step acted on.
        dones: ``(T, B)`` bool or float, episode ended with this step.
        next_value: ``(B, k)`` value of the observation after the last step.
        gamma: discount factor.
        gae_lambda: GAE's lambda (1 = Monte Carlo returns, 0 = one-step TD).

    Returns:
        ``(advantages, returns)``, both ``(T, B, k)``, with ``returns = advantages + values``.
    """
    T = rewards.shape[0]
    not_done = 1.0 - dones.to(rewards.dtype).unsqueeze(-1)
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in range(T - 1, -1, -1):
        following = next_value if t == T - 1 else values[t + 1]
        delta = rewards[t] + gamma * following * not_done[t] - values[t]
        last = delta + gamma * gae_lambda * not_done[t] * last
        advantages[t] = last
    return advantages, advantages + values


class RolloutStorage:
    """Tensors of one rollout of ``num_steps`` batched steps, preallocated on the device.

    Args:
        num_steps: steps per rollout ``T``.
        num_envs: batch size ``B``.
        obs_dim: flat observation length.
        action_shape: per-env shape of the stored action (``()`` for Discrete); for a
            squashed Gaussian the pre-squash sample is stored.
        action_dtype: dtype of the stored actions.
        k: number of objectives.
        mask_dim: length of the action mask, or 0 when the env has none.
        device: where everything lives.
    """

    def __init__(
        self,
        num_steps: int,
        num_envs: int,
        obs_dim: int,
        action_shape: tuple[int, ...],
        action_dtype: torch.dtype,
        k: int,
        mask_dim: int,
        device: torch.device,
    ) -> None:
        T, B = num_steps, num_envs
        f32: dict[str, Any] = {"dtype": torch.float32, "device": device}
        self.obs = torch.zeros((T, B, obs_dim), **f32)
        self.preferences = torch.zeros((T, B, k), **f32)
        self.actions = torch.zeros((T, B, *action_shape), dtype=action_dtype, device=device)
        self.logprobs = torch.zeros((T, B), **f32)
        self.rewards = torch.zeros((T, B, k), **f32)
        self.dones = torch.zeros((T, B), dtype=torch.bool, device=device)
        self.values = torch.zeros((T, B, k), **f32)
        self.masks = torch.ones((T, B, mask_dim), dtype=torch.bool, device=device) if mask_dim else None
        self.advantages = torch.zeros((T, B, k), **f32)
        self.returns = torch.zeros((T, B, k), **f32)
        #: greedy actions of a frozen anchor policy (MO-PPO after imitation with ``anchor_coef > 0``)
        self.anchor_actions: torch.Tensor | None = None
        self.num_steps, self.num_envs = T, B

    def finish(self, next_value: torch.Tensor, gamma: float, gae_lambda: float) -> None:
        """Compute per-objective advantages and returns once the rollout is full."""
        self.advantages, self.returns = compute_gae(
            self.rewards, self.values, self.dones, next_value, gamma, gae_lambda
        )

    def flat(self) -> dict[str, torch.Tensor]:
        """Every buffer with the time and batch dimensions merged, for minibatching."""
        n = self.num_steps * self.num_envs
        out = {
            "obs": self.obs.reshape(n, -1),
            "preferences": self.preferences.reshape(n, -1),
            "actions": self.actions.reshape(n, *self.actions.shape[2:]),
            "logprobs": self.logprobs.reshape(n),
            "values": self.values.reshape(n, -1),
            "advantages": self.advantages.reshape(n, -1),
            "returns": self.returns.reshape(n, -1),
        }
        if self.masks is not None:
            out["masks"] = self.masks.reshape(n, -1)
        if self.anchor_actions is not None:
            out["anchor_actions"] = self.anchor_actions.reshape(n, *self.anchor_actions.shape[2:])
        return out
