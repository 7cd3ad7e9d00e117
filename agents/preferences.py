"""Preferences: weight vectors over the objectives, on the simplex.

A preference ``w`` (``w_i >= 0``, ``sum_i w_i = 1``) turns a vector return ``G``
into the scalar ``w . G`` that a preference-conditioned agent maximises. Training
draws one preference per episode (:class:`PreferenceSampler`); evaluation uses the
fixed lattice of :func:`preference_grid` so that runs compare on the same points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import torch
from pydantic import Field

from paretochain.envs.config import ConfigModel
from paretochain.errors import ConfigError


class PreferenceAgentConfig(ConfigModel):
    """Config words shared by the multi-objective agents (MO-PPO, MO-DQN, DCL): how observations are scaled
    and which preferences the agent trains at. An agent may restate a field to describe what it does with it."""

    norm_obs: bool = Field(default=True, description="normalise observations (baked into exports); see obs_scale")
    preference: dict[str, float] | list[float] | None = Field(
        default=None, description="fixed preference (by objective name or in order); None samples one per episode"
    )
    dirichlet_alpha: float = Field(
        default=1.0, gt=0, description="Dirichlet concentration of sampled preferences (1 = uniform on the simplex)"
    )


def preference_grid(k: int, n: int) -> np.ndarray:
    """Every weight vector of ``k`` entries that are multiples of ``1/n`` and sum to 1.

    This is the simplex-lattice (Das-Dennis) design with ``n`` divisions: the points
    are evenly spread over the simplex, include its ``k`` corners (one objective
    only) and, for ``n`` a multiple of ``k``, its centre. There are
    ``C(n + k - 1, k - 1)`` of them, in descending lexicographic order (the first
    row is ``(1, 0, ..., 0)``, the last ``(0, ..., 0, 1)``).

    Args:
        k: number of objectives (>= 1).
        n: divisions per axis (>= 1); ``k=2, n=4`` gives ``(1,0), (.75,.25), ..., (0,1)``.

    Returns:
        float64 array ``(C(n + k - 1, k - 1), k)``.
    """
    if k < 1:
        raise ValueError(f"preference_grid: k must be >= 1, got {k}")
    if n < 1:
        raise ValueError(f"preference_grid: n must be >= 1, got {n}")
    rows = []
    # stars and bars: choose k-1 bar positions among n+k-1 slots
    for bars in combinations(range(n + k - 1), k - 1):
        edges = (-1, *bars, n + k - 1)
        counts = [edges[i + 1] - edges[i] - 1 for i in range(k)]
        rows.append(counts)
    grid = np.asarray(rows[::-1], dtype=np.float64) / n
    assert grid.shape[0] == math.comb(n + k - 1, k - 1)
    return grid


def grid_size(k: int, n: int) -> int:
    """Number of points of :func:`preference_grid` ``(k, n)``."""
    return math.comb(n + k - 1, k - 1)


def preference_from_weights(
    objective_names: Sequence[str], weights: Mapping[str, float] | Sequence[float], where: str = "preference"
) -> np.ndarray:
    """A normalised preference from weights given by objective name (missing names weigh 0) or in order.

    Raises :class:`ConfigError` for unknown names, negative weights or an all-zero vector.
    """
    k = len(objective_names)
    if isinstance(weights, Mapping):
        unknown = [n for n in weights if n not in objective_names]
        if unknown:
            raise ConfigError(f"{where}: unknown objective(s) {unknown}; this environment has {list(objective_names)}")
        w = np.array([float(weights.get(n, 0.0)) for n in objective_names])
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != (k,):
            raise ConfigError(f"{where}: {w.shape[0]} weights given for {k} objectives {list(objective_names)}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(f"{where}: weights must be finite, >= 0 and not all 0, got {w.tolist()}")
    return w / w.sum()


class PreferenceSampler:
    """Draws one preference per episode, on the device, from a Dirichlet or a fixed vector.

    With ``fixed`` set every draw returns it; otherwise draws follow
    ``Dirichlet(alpha * 1)``: ``alpha = 1`` is uniform on the simplex, smaller values
    favour the corners (nearly single-objective), larger ones the centre. With
    ``corner_share`` above 0, that share of the draws is instead one of the ``k``
    corners exactly (one objective only, each equally likely): a Dirichlet almost never
    draws a point near a corner (uniform on three objectives: one draw in a hundred
    puts 0.9 or more on a given objective), so a policy would otherwise extrapolate to
    the single-objective preferences planners ask for first. Draws use torch's
    generator of ``device`` (seeded through ``torch.manual_seed``).

    Args:
        k: number of objectives.
        device: where the preferences are created.
        alpha: Dirichlet concentration (> 0).
        fixed: a preference used for every episode instead of sampling (normalised here).
        corner_share: share of the draws that are corners, in ``[0, 1]``.
    """

    def __init__(
        self,
        k: int,
        device: str | torch.device = "cpu",
        alpha: float = 1.0,
        fixed: Sequence[float] | np.ndarray | torch.Tensor | None = None,
        corner_share: float = 0.0,
    ) -> None:
        if k < 1:
            raise ValueError(f"PreferenceSampler: k must be >= 1, got {k}")
        if not alpha > 0:
            raise ValueError(f"PreferenceSampler: alpha must be > 0, got {alpha}")
        if not 0.0 <= corner_share <= 1.0:
            raise ValueError(f"PreferenceSampler: corner_share must be in [0, 1], got {corner_share}")
        self.k = k
        self.device = torch.device(device)
        self.alpha = float(alpha)
        self.corner_share = float(corner_share)
        self.fixed: torch.Tensor | None = None
        if fixed is not None:
            w = torch.as_tensor(np.asarray(fixed, dtype=np.float64), dtype=torch.float32).reshape(-1)
            if w.numel() != k or bool((w < 0).any()) or float(w.sum()) <= 0:
                raise ValueError(
                    f"PreferenceSampler: fixed preference must have {k} entries >= 0, not all 0; got {w.tolist()}"
                )
            self.fixed = (w / w.sum()).to(self.device)
        self._concentration = torch.full((k,), self.alpha, dtype=torch.float32, device=self.device)

    def sample(self, n: int) -> torch.Tensor:
        """``n`` preferences, float32 ``(n, k)``, rows on the simplex."""
        if self.fixed is not None:
            return self.fixed.expand(n, self.k).clone()
        if self.k == 1:
            return torch.ones(n, 1, device=self.device)
        if self.alpha == 1.0:
            # uniform on the simplex: normalised standard exponentials (no gamma sampler needed)
            e = torch.empty(n, self.k, device=self.device).exponential_()
        else:
            e = torch.distributions.Gamma(self._concentration, torch.ones_like(self._concentration)).sample((n,))
        e = e.clamp(min=1e-12)
        drawn = e / e.sum(dim=1, keepdim=True)
        if self.corner_share > 0:
            corner = torch.nn.functional.one_hot(torch.randint(self.k, (n,), device=self.device), self.k).to(
                drawn.dtype
            )
            at_corner = torch.rand(n, 1, device=self.device) < self.corner_share
            drawn = torch.where(at_corner, corner, drawn)
        return drawn

    def resample(self, preference: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """New preferences for the rows selected by bool ``mask`` ``(n,)`` (episodes that start), without a host sync."""
        fresh = self.sample(preference.shape[0])
        return torch.where(mask.unsqueeze(1), fresh, preference)
