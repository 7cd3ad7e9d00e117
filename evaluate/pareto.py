"""Pareto evaluation: run a policy over a fixed set of preferences and measure the front it traces.

For each preference of a fixed, documented set
(:func:`~paretochain.agents.preferences.preference_grid`, evenly spread over the
simplex) the policy plays the same seeded episodes; the mean vector return per
preference is one point. Then:

- **non-dominated filtering** drops points that another point beats on every objective;
- **hypervolume** is the volume dominated by the points and bounded by the
  environment's declared reference point (``env.objectives.reference_point``);
- **expected utility** (Zintgraf et al., 2015) is the mean over the preference set
  of the best linear utility ``max_p w . G_p`` any point offers.

Hypervolume and non-dominated sorting come from ``moocore``. moocore **minimises**
by default while every paretochain objective is "higher is better", so returns
and reference points are negated before they are passed to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import moocore
import numpy as np
import torch

from paretochain.agents.policy import Policy
from paretochain.agents.preferences import preference_grid
from paretochain.envs.registration import make_vec
from paretochain.envs.views import BatchedVectorEnv
from paretochain.evaluate.rollout import rollout
from paretochain.seeds import VALIDATION

#: Divisions of the default preference lattice by number of objectives (k=2: 11 points, k=3: 28, k>=4: C(k+3, k-1)).
DEFAULT_DIVISIONS = {1: 1, 2: 10, 3: 6}


def default_preferences(k: int) -> np.ndarray:
    """The documented evaluation set: :func:`preference_grid` with :data:`DEFAULT_DIVISIONS` (4 for k >= 4)."""
    return preference_grid(k, DEFAULT_DIVISIONS.get(k, 4))


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """True when ``a`` is at least as good as ``b`` on every objective and better on one (all maximised)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return bool((a >= b).all() and (a > b).any())


def non_dominated(points: np.ndarray) -> np.ndarray:
    """Bool mask of the points no other point dominates (all objectives maximised).

    Duplicates of a non-dominated point are all kept.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2:
        raise ValueError(f"non_dominated: points must be (n, k), got shape {pts.shape}")
    if pts.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(-pts, keep_weakly=True), dtype=bool)


def hypervolume(points: np.ndarray, reference_point: Sequence[float] | np.ndarray) -> float:
    """Hypervolume of maximised ``points`` ``(n, k)`` above ``reference_point`` ``(k,)``.

    Points that do not strictly beat the reference on every objective add nothing.
    """
    pts = np.asarray(points, dtype=np.float64)
    ref = np.asarray(reference_point, dtype=np.float64).reshape(-1)
    if pts.ndim != 2 or pts.shape[1] != ref.size:
        raise ValueError(
            f"hypervolume: points of shape {pts.shape} do not match a reference point of {ref.size} objectives"
        )
    if pts.shape[0] == 0:
        return 0.0
    return float(moocore.hypervolume(-pts, ref=-ref))


def expected_utility(
    points: np.ndarray, preferences: np.ndarray, scale: Sequence[float] | np.ndarray | None = None
) -> float:
    """Mean over the preferences of the best linear utility among the points.

    Args:
        points: ``(n, k)`` vector returns.
        preferences: ``(m, k)`` weights.
        scale: optional per-objective divisors applied to returns first (to weigh
            objectives in different units comparably); ``None`` uses raw returns.
    """
    pts = np.asarray(points, dtype=np.float64)
    if scale is not None:
        pts = pts / np.asarray(scale, dtype=np.float64)
    w = np.asarray(preferences, dtype=np.float64)
    if pts.shape[0] == 0:
        return float("nan")
    return float((w @ pts.T).max(axis=1).mean())


@dataclass
class ParetoResult:
    """What :func:`evaluate_pareto` measured.

    Attributes:
        objective_names: objective order of every vector.
        preferences: ``(P, k)`` evaluated preferences.
        returns: ``(P, k)`` mean vector return per preference (over the seeds).
        returns_per_seed: ``(P, S, k)`` every episode's vector return.
        front_mask: ``(P,)`` true for the non-dominated points.
        reference_point: ``(k,)`` the environment's declared reference point.
        hypervolume: hypervolume of the points against the reference point.
        expected_utility: expected utility over ``preferences`` (raw returns).
        seeds: the episode seeds (the same for every preference).
        kpis: mean per-episode KPI sums per preference, name -> ``(P,)``.
    """

    objective_names: list[str]
    preferences: np.ndarray
    returns: np.ndarray
    returns_per_seed: np.ndarray
    front_mask: np.ndarray
    reference_point: np.ndarray
    hypervolume: float
    expected_utility: float
    seeds: list[int]
    kpis: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def front(self) -> np.ndarray:
        """The non-dominated mean returns."""
        return self.returns[self.front_mask]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (lists of floats)."""
        return {
            "objective_names": self.objective_names,
            "preferences": self.preferences.tolist(),
            "returns": self.returns.tolist(),
            "front_mask": self.front_mask.tolist(),
            "reference_point": self.reference_point.tolist(),
            "hypervolume": self.hypervolume,
            "expected_utility": self.expected_utility,
            "seeds": self.seeds,
        }


def pareto_metrics(
    returns: np.ndarray, preferences: np.ndarray, reference_point: np.ndarray, utility_scale: np.ndarray | None = None
) -> tuple[np.ndarray, float, float]:
    """``(front_mask, hypervolume, expected_utility)`` of one point per preference."""
    mask = non_dominated(returns)
    return mask, hypervolume(returns[mask], reference_point), expected_utility(returns, preferences, utility_scale)


def utility_scale(reference_point: Sequence[float] | np.ndarray) -> np.ndarray:
    """Per-objective divisors of the returns before weighing: each reference point's magnitude, at least 1."""
    return np.maximum(np.abs(np.asarray(reference_point, dtype=np.float64)), 1.0)


def conditioned_utility(points: np.ndarray, preferences: np.ndarray, scale: Sequence[float] | np.ndarray) -> float:
    """Expected utility of a preference-conditioned policy: each preference scores its own point.

    Args:
        points: ``(m, k)`` vector returns, row ``i`` played at ``preferences[i]``.
        preferences: ``(m, k)`` weights.
        scale: per-objective divisors applied to returns first.
    """
    pts = np.asarray(points, dtype=np.float64) / np.asarray(scale, dtype=np.float64)
    return float(np.mean(np.sum(np.asarray(preferences, dtype=np.float64) * pts, axis=1)))


#: Environments :func:`evaluate_pareto` steps at once when it builds them: larger evaluations go in groups of preferences.
MAX_EVALUATION_BATCH = 16_384


def evaluate_pareto(
    policy: Policy,
    env_id: str,
    config: Any = None,
    preferences: np.ndarray | None = None,
    seeds: Sequence[int] = tuple(VALIDATION.first(10)),
    device: str | torch.device = "cpu",
    env: BatchedVectorEnv | None = None,
    **overrides: Any,
) -> ParetoResult:
    """Play ``len(seeds)`` episodes per preference and compute the front's metrics.

    Every preference meets the same seeded episodes (common random numbers). Training runs'
    evaluations and ``paretochain evaluate`` reports measure the learned front with this
    function. The episodes run in one batch, or (when it builds the environments and
    ``P * len(seeds)`` exceeds :data:`MAX_EVALUATION_BATCH`) in groups of whole preferences;
    a seed plays the same episode in any batch.

    Args:
        policy: anything following the policy contract (a trained agent, a loaded file, a baseline).
        env_id: registered id, e.g. ``"paretochain/Warehouse-v0"``.
        config: the environment's config (name, path, mapping or instance).
        preferences: ``(P, k)``; default :func:`default_preferences`.
        seeds: episode seeds, the same for every preference.
        device: where the batched environment runs.
        env: a ready batched env of ``P * len(seeds)`` environments to use instead of building one.
        overrides: config fields replacing those of ``config``.
    """
    seeds = [int(s) for s in seeds]
    objectives = (make_vec(env_id, 1, device=device, config=config, **overrides) if env is None else env).objectives
    k = len(objectives)
    prefs = default_preferences(k) if preferences is None else np.asarray(preferences, dtype=np.float64)
    if prefs.ndim != 2 or prefs.shape[1] != k:
        raise ValueError(f"evaluate_pareto: preferences must be (P, {k}), got shape {prefs.shape}")
    P, S = prefs.shape[0], len(seeds)
    if env is not None and env.num_envs != P * S:
        raise ValueError(
            f"evaluate_pareto: env has {env.num_envs} environments, need {P} preferences x {S} seeds = {P * S}"
        )
    group = P if env is not None else max(1, min(P, MAX_EVALUATION_BATCH // max(S, 1)))
    returns, kpi_parts = [], []
    for start in range(0, P, group):
        chunk = prefs[start : start + group]
        n = chunk.shape[0] * S
        if env is None or env.num_envs != n:
            env = make_vec(env_id, n, device=device, config=config, tensors=True, check_actions=False, **overrides)
        row_prefs = torch.as_tensor(np.repeat(chunk, S, axis=0), dtype=torch.float32, device=env.core.device)
        result = rollout(env, policy, seeds * chunk.shape[0], preference=row_prefs)
        returns.append(result.returns.reshape(chunk.shape[0], S, k))
        kpi_parts.append({name: v.reshape(chunk.shape[0], S).mean(axis=1) for name, v in result.kpis.items()})
    per_seed = np.concatenate(returns, axis=0)
    means = per_seed.mean(axis=1)
    ref = objectives.reference_point
    mask, hv, eu = pareto_metrics(means, prefs, ref)
    kpis = {name: np.concatenate([part[name] for part in kpi_parts]) for name in kpi_parts[0]}
    return ParetoResult(list(objectives.names), prefs, means, per_seed, mask, ref, hv, eu, seeds, kpis)
