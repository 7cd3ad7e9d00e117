"""Scalarisation: turning a vector reward into the one number Stable-Baselines3 optimises.

Two functions of a per-step vector reward ``r`` (``k`` objectives, every entry
"higher is better") and a preference ``w`` (``w_i >= 0``, ``sum_i w_i = 1``):

- **linear**: ``w . r``;
- **Chebyshev** with a utopia point ``z`` (a per-step reward at least as good as any
  reachable one, in every objective): ``-max_i w_i |z_i - r_i| - rho * sum_i w_i |z_i - r_i|``
  (``rho = 0`` is the plain Chebyshev function; a small ``rho > 0``, the augmented one,
  rules out weakly dominated optima).

Caveat: both are applied to each step's reward, so the utopia point is in per-step
units, and the Chebyshev value of an episode is the sum of per-step values, not the
Chebyshev value of the episode's return. Scale the objectives (or choose ``w``) with
their magnitudes in mind: a cost of hundreds per step next to a fill rate of 0.01 per
step makes any weight on the fill rate invisible under linear weights.

:class:`ScalarizedEnv` wraps a single multi-objective Gymnasium env for SB3; the
vector reward stays visible in ``info["vector_reward"]`` and, at the end of an
episode, the vector return in ``info["episode_vector_return"]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np
import torch

from paretochain.agents.preferences import preference_from_weights
from paretochain.errors import ConfigError

ScalarizationKind = Literal["linear", "chebyshev"]


@dataclass(frozen=True)
class Scalarization:
    """A fixed way to turn ``(..., k)`` vector rewards into ``(...)`` scalars.

    Attributes:
        weights: the preference ``w``, float64 ``(k,)`` on the simplex.
        kind: ``"linear"`` or ``"chebyshev"``.
        utopia: per-step utopia point ``z`` ``(k,)`` (Chebyshev only).
        rho: weight of the augmentation term of the Chebyshev function (>= 0).
        objective_names: the objectives, in reward order (for logs and messages).
    """

    weights: np.ndarray
    kind: ScalarizationKind = "linear"
    utopia: np.ndarray | None = None
    rho: float = 0.0
    objective_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        k = self.weights.shape[0]
        if self.kind not in ("linear", "chebyshev"):
            raise ConfigError(f"scalarization kind must be 'linear' or 'chebyshev', got {self.kind!r}")
        if self.kind == "chebyshev":
            if self.utopia is None:
                raise ConfigError("chebyshev scalarization needs a utopia point (one per-step value per objective)")
            if self.utopia.shape != (k,):
                raise ConfigError(f"utopia: {self.utopia.shape[0]} values given for {k} objectives")
        if self.rho < 0:
            raise ConfigError(f"rho must be >= 0, got {self.rho}")

    @property
    def num_objectives(self) -> int:
        return int(self.weights.shape[0])

    def __call__(self, reward: np.ndarray) -> np.ndarray:
        """Scalarise numpy rewards ``(..., k)`` into float64 ``(...)``."""
        r = np.asarray(reward, dtype=np.float64)
        if self.kind == "linear":
            return r @ self.weights
        assert self.utopia is not None
        gap = self.weights * np.abs(self.utopia - r)
        return -gap.max(axis=-1) - self.rho * gap.sum(axis=-1)

    def torch(self, reward: torch.Tensor) -> torch.Tensor:
        """Scalarise torch rewards ``(..., k)`` into ``(...)`` on their device and dtype."""
        w = torch.as_tensor(self.weights, dtype=reward.dtype, device=reward.device)
        if self.kind == "linear":
            return reward @ w
        assert self.utopia is not None
        z = torch.as_tensor(self.utopia, dtype=reward.dtype, device=reward.device)
        gap = w * (z - reward).abs()
        return -gap.amax(dim=-1) - self.rho * gap.sum(dim=-1)

    def describe(self) -> str:
        names = self.objective_names or tuple(f"obj{i}" for i in range(self.num_objectives))
        weights = ", ".join(f"{n}={w:.3g}" for n, w in zip(names, self.weights))
        return f"{self.kind}({weights})"


def make_scalarization(
    objective_names: Sequence[str],
    weights: Mapping[str, float] | Sequence[float] | None = None,
    kind: ScalarizationKind = "linear",
    utopia: Mapping[str, float] | Sequence[float] | None = None,
    rho: float = 0.0,
) -> Scalarization:
    """Build a :class:`Scalarization` for an environment's objectives.

    Args:
        objective_names: the environment's objectives in reward order
            (``env.unwrapped.core.objectives.names``).
        weights: by objective name (missing names weigh 0) or in reward order; normalised
            to sum to 1. ``None`` weighs every objective equally.
        kind: ``"linear"`` or ``"chebyshev"``.
        utopia: Chebyshev only: the per-step utopia point, by name (every objective must be
            given) or in reward order.
        rho: Chebyshev only: augmentation weight (>= 0).
    """
    names = list(objective_names)
    k = len(names)
    w = (
        np.full(k, 1.0 / k)
        if weights is None
        else preference_from_weights(names, weights, where="scalarization weights")
    )
    z: np.ndarray | None = None
    if utopia is not None:
        if isinstance(utopia, Mapping):
            missing = [n for n in names if n not in utopia]
            unknown = [n for n in utopia if n not in names]
            if missing or unknown:
                raise ConfigError(f"utopia: needs exactly the objectives {names}; missing {missing}, unknown {unknown}")
            z = np.array([float(utopia[n]) for n in names])
        else:
            z = np.asarray(utopia, dtype=np.float64).reshape(-1)
        if z.shape != (k,) or not np.all(np.isfinite(z)):
            raise ConfigError(f"utopia: expected {k} finite values for {names}, got {np.asarray(utopia).tolist()}")
    return Scalarization(weights=w, kind=kind, utopia=z, rho=float(rho), objective_names=tuple(names))


class ScalarizedEnv(gym.Wrapper):
    """A single multi-objective env whose reward is scalarised, for Stable-Baselines3.

    ``step`` returns the scalar reward (a Python float); ``info["vector_reward"]``
    holds the vector, and on the last step of an episode ``info["episode_vector_return"]``
    holds the episode's undiscounted vector return. ``action_masks()`` passes through
    (sb3-contrib's MaskablePPO reads it).

    Args:
        env: a multi-objective env (``reward_dim`` entries in its reward).
        scalarization: how to combine them (see :func:`make_scalarization`).
    """

    def __init__(self, env: gym.Env, scalarization: Scalarization) -> None:
        super().__init__(env)
        k = int(env.unwrapped.reward_dim)  # type: ignore[attr-defined]
        if scalarization.num_objectives != k:
            raise ConfigError(
                f"scalarization has {scalarization.num_objectives} weights, the environment {k} objectives"
            )
        self.scalarization = scalarization
        self._episode_return = np.zeros(k)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self._episode_return = np.zeros_like(self._episode_return)
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        vector = np.asarray(reward, dtype=np.float32)
        self._episode_return += vector
        info["vector_reward"] = vector
        if terminated or truncated:
            info["episode_vector_return"] = self._episode_return.copy()
        return obs, float(self.scalarization(vector)), terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """The wrapped env's current action mask (all True where it has none)."""
        return self.env.unwrapped.action_masks()  # type: ignore[attr-defined]
