"""Running statistics on the device: observation normalisation and per-objective return scaling.

Both keep their statistics as tensors on the agent's device and update them from a
whole batch at once (the parallel form of Welford's algorithm, Chan et al. 1979), so
nothing goes back to the host during a rollout.
"""

from __future__ import annotations

import torch


class RunningMeanStd:
    """Mean and variance of a stream of batches, per feature.

    Args:
        shape: per-sample shape of the statistics.
        device: where the statistics live.
        epsilon: initial pseudo-count (avoids dividing by zero before the first update).
    """

    def __init__(self, shape: tuple[int, ...], device: str | torch.device = "cpu", epsilon: float = 1e-4) -> None:
        self.mean = torch.zeros(shape, dtype=torch.float64, device=device)
        self.var = torch.ones(shape, dtype=torch.float64, device=device)
        self.count = torch.full((), epsilon, dtype=torch.float64, device=device)

    def update(self, x: torch.Tensor) -> None:
        """Fold a batch ``(n, *shape)`` into the statistics."""
        x = x.detach().to(torch.float64).reshape(-1, *self.mean.shape)
        n = x.shape[0]
        batch_mean = x.mean(dim=0)
        batch_var = x.var(dim=0, unbiased=False)
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean = self.mean + delta * (n / total)
        m2 = self.var * self.count + batch_var * n + delta.square() * (self.count * n / total)
        self.var = m2 / total
        self.count = total

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        dev = self.mean.device
        self.mean = state["mean"].to(dev, torch.float64).clone()
        self.var = state["var"].to(dev, torch.float64).clone()
        self.count = state["count"].to(dev, torch.float64).clone()


class ObservationNormalizer:
    """``clip((obs - mean) / sqrt(var + eps), -clip, clip)`` with running or fixed statistics.

    Args:
        obs_dim: length of the flat observation.
        device: where the statistics live.
        clip: bound of the normalised values.
        epsilon: added to the variance.
        fixed_scale: ``(obs_dim,)`` typical magnitudes (the environment's
            ``observation_scale()``): observations are divided by them, with no
            mean subtracted, and :meth:`update` changes nothing. Running statistics
            absorb the states an untrained policy visits (stock in the hundreds from
            random orders), after which the states a good policy lives in are hard to
            tell apart; a fixed scale keeps them apart.
    """

    def __init__(
        self,
        obs_dim: int,
        device: str | torch.device = "cpu",
        clip: float = 10.0,
        epsilon: float = 1e-8,
        fixed_scale: torch.Tensor | None = None,
    ) -> None:
        self.rms = RunningMeanStd((obs_dim,), device)
        self.clip = clip
        self.epsilon = epsilon
        self.fixed = fixed_scale is not None
        if fixed_scale is not None:
            scale = torch.as_tensor(fixed_scale, dtype=torch.float64, device=device).reshape(obs_dim)
            if not bool(torch.isfinite(scale).all()) or bool((scale <= 0).any()):
                raise ValueError("observation scales must be finite and positive")
            self.rms.var = scale.square() - epsilon

    def update(self, obs: torch.Tensor) -> None:
        if not self.fixed:
            self.rms.update(obs)

    def scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Float32 ``(mean, std)`` used by :meth:`normalize` (and baked into exported policies)."""
        return self.rms.mean.to(torch.float32), (self.rms.var + self.epsilon).sqrt().to(torch.float32)

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        mean, std = self.scale()
        return ((obs - mean) / std).clamp(-self.clip, self.clip)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.rms.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.rms.load_state_dict(state)


class ReturnNormalizer:
    """Per-objective reward scaling by the running std of the discounted return.

    Each objective's reward is divided by the standard deviation of its own
    discounted return (tracked per environment), so objectives measured in
    currency, units and shares reach comparable magnitudes before the preference
    weighs their advantages. The mean is not subtracted (that would change the
    optimal policy of a fixed horizon problem), following the reward scaling of
    ``VecNormalize`` applied one objective at a time.

    Args:
        num_envs: batch size.
        k: number of objectives.
        gamma: discount of the tracked return (the agent's).
        device: where the statistics live.
        clip: bound of the scaled rewards.
        epsilon: added to the variance.
    """

    def __init__(
        self,
        num_envs: int,
        k: int,
        gamma: float,
        device: str | torch.device = "cpu",
        clip: float = 10.0,
        epsilon: float = 1e-8,
    ) -> None:
        self.rms = RunningMeanStd((k,), device)
        self.returns = torch.zeros(num_envs, k, dtype=torch.float32, device=device)
        self.gamma = gamma
        self.clip = clip
        self.epsilon = epsilon

    def std(self) -> torch.Tensor:
        """Float32 ``(k,)``: the divisor of each objective's reward."""
        return (self.rms.var + self.epsilon).sqrt().to(torch.float32)

    def __call__(self, reward: torch.Tensor, done: torch.Tensor, update: bool = True) -> torch.Tensor:
        """Scale a batch of vector rewards ``(B, k)``; ``done`` ``(B,)`` ends the tracked returns after this step."""
        if update:
            self.returns = self.returns * self.gamma + reward
            self.rms.update(self.returns)
            self.returns = torch.where(done.unsqueeze(1), 0.0, self.returns)
        return (reward / self.std()).clamp(-self.clip, self.clip)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**self.rms.state_dict(), "returns": self.returns.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.rms.load_state_dict(state)
        self.returns = state["returns"].to(self.returns.device).clone()
