"""Means with confidence intervals, and paired differences under common random numbers."""

from __future__ import annotations

import numpy as np
from scipy import stats


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and half-width of the Student-t confidence interval of ``values`` ``(n, k)``."""
    x = np.asarray(values, dtype=np.float64)
    n = x.shape[0]
    mean = x.mean(axis=0)
    if n < 2:
        return mean, np.full_like(mean, np.nan)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * x.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, half


def paired_difference(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Mean and CI half-width of ``a - b`` paired by row (the same seed in both)."""
    return mean_ci(np.asarray(a) - np.asarray(b), level)
