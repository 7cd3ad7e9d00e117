"""The verdict that opens a report: where the learned policy wins, where a heuristic does, by how much.

It reads only what :func:`~paretochain.evaluate.report.evaluate` measured (``metrics.json``):

- per objective, the learned policy against the best baseline on that objective, paired by
  seed: a win or a loss only where the 95% confidence interval excludes zero, a tie otherwise;
- dominance between the learned front (every evaluated preference) and each baseline's point:
  a baseline is beaten when some learned point is at least as good on every objective and
  better on one; the learned policy is beaten when a baseline does the same to every learned
  point;
- for each baseline traced as a front (its parameter swept), how many of its points the
  learned front dominates, and how many learned points one of its points dominates.

Dominance compares means over the evaluation episodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from paretochain.evaluate.pareto import dominates

LEARNED = "learned"


def _relative(diff: float, base: float) -> str:
    return f", {100 * diff / abs(base):+.1f}%" if abs(base) > 1e-9 else ""


def objective_lines(metrics: dict[str, Any]) -> list[str]:
    """One sentence per objective: the paired difference to the best baseline on it, and what it means."""
    lines = []
    units = {o["name"]: o["unit"] for o in metrics["objectives"]}
    for objective, d in metrics.get("paired_vs_best_baseline", {}).items():
        diff, half, best = float(d["difference"]), float(d["ci95"]), d["baseline"]
        index = [o["name"] for o in metrics["objectives"]].index(objective)
        base_mean = float(metrics["policies"][best]["mean"][index])
        size = f"{diff:+,.4g} {units[objective]} (95% CI ± {half:,.3g}{_relative(diff, base_mean)})"
        if not np.isfinite(half):
            lines.append(f"{objective}: {size} against {best}; too few episodes to tell.")
        elif diff - half > 0:
            lines.append(f"{objective}: the learned policy beats the best baseline, {best}, by {size}.")
        elif diff + half < 0:
            loss = f"{-diff:,.4g} {units[objective]} (95% CI ± {half:,.3g}{_relative(-diff, base_mean)})"
            lines.append(f"{objective}: {best} beats the learned policy by {loss}.")
        else:
            lines.append(f"{objective}: no significant difference from the best baseline, {best} ({size}).")
    return lines


def dominance_lines(metrics: dict[str, Any]) -> list[str]:
    """Which baselines the learned front dominates, which dominate every learned point, and which neither."""
    learned = np.asarray(metrics["pareto"]["returns"], dtype=np.float64)
    baselines = {n: np.asarray(p["mean"], dtype=np.float64) for n, p in metrics["policies"].items() if n != LEARNED}
    if not baselines or not len(learned):
        return []
    beaten = [n for n, b in baselines.items() if any(dominates(point, b) for point in learned)]
    beating = [n for n, b in baselines.items() if all(dominates(b, point) for point in learned)]
    neither = [n for n in baselines if n not in beaten and n not in beating]
    points = f"{len(learned)} learned point{'s' if len(learned) > 1 else ''}"
    lines = []
    if beaten:
        lines.append(
            f"The learned front ({points}) dominates {', '.join(beaten)}: at least as good on every objective "
            "and better on one, on the means."
        )
    if beating:
        lines.append(f"{', '.join(beating)} dominate{'s' if len(beating) == 1 else ''} every learned point.")
    if neither:
        lines.append(
            f"Neither dominates the other for {', '.join(neither)}: each is better on some objective (a trade-off)."
        )
    return lines


def front_lines(metrics: dict[str, Any]) -> list[str]:
    """For each baseline traced as a front (its parameter swept): how it and the learned front compare."""
    learned = np.asarray(metrics["pareto"]["returns"], dtype=np.float64)
    lines = []
    for name, swept in metrics["pareto"].get("baseline_fronts", {}).items():
        points = np.asarray(swept["returns"], dtype=np.float64)
        beaten = sum(any(dominates(q, p) for q in learned) for p in points)
        beating = sum(any(dominates(p, q) for p in points) for q in learned)
        lines.append(
            f"The learned front dominates {beaten} of the {len(points)} points of the {name} front "
            f"({swept['parameter']} swept); {beating} of the {len(learned)} learned points are dominated by one of them."
        )
    return lines


def verdict(metrics: dict[str, Any]) -> list[str]:
    """The plain-word verdict of an evaluation: objective by objective, then by dominance."""
    return objective_lines(metrics) + dominance_lines(metrics) + front_lines(metrics)
