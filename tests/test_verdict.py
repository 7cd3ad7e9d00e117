"""The verdict that opens a report: wins, losses and ties by paired CI; dominance on the means."""

from __future__ import annotations

from typing import Any

from paretochain.evaluate.pareto import dominates
from paretochain.evaluate.verdict import dominance_lines, front_lines, objective_lines, verdict


def _metrics(paired: dict[str, tuple[str, float, float]], learned_front: list[list[float]]) -> dict[str, Any]:
    return {
        "objectives": [{"name": "profit", "unit": "currency"}, {"name": "fill_rate", "unit": "share"}],
        "policies": {
            "learned": {"mean": learned_front[0]},
            "base_stock": {"mean": [100.0, 0.90]},
            "s_S": {"mean": [120.0, 0.80]},
        },
        "paired_vs_best_baseline": {o: {"baseline": b, "difference": d, "ci95": h} for o, (b, d, h) in paired.items()},
        "pareto": {"returns": learned_front},
    }


def test_a_difference_counts_as_a_win_or_loss_only_when_its_interval_excludes_zero() -> None:
    m = _metrics({"profit": ("s_S", 12.0, 5.0), "fill_rate": ("base_stock", -0.02, 0.01)}, [[132.0, 0.88]])
    profit, fill = objective_lines(m)
    assert profit.startswith("profit: the learned policy beats the best baseline, s_S, by +12")
    assert "+10.0%" in profit  # 12 against s_S's 120
    assert fill.startswith("fill_rate: base_stock beats the learned policy by 0.02")
    tie = objective_lines(_metrics({"profit": ("s_S", 3.0, 5.0)}, [[123.0, 0.85]]))
    assert tie == [tie[0]] and "no significant difference" in tie[0]


def test_dominance_names_the_baselines_the_front_beats_and_the_trade_offs() -> None:
    # the first point beats s_S on both; base_stock keeps the better fill rate against every point
    m = _metrics({}, [[125.0, 0.85], [110.0, 0.88]])
    lines = dominance_lines(m)
    assert any(line.startswith("The learned front (2 learned points) dominates s_S") for line in lines)
    assert any("Neither dominates the other for base_stock" in line for line in lines)
    beaten = dominance_lines(_metrics({}, [[90.0, 0.70]]))
    assert beaten == ["base_stock, s_S dominate every learned point."]


def test_verdict_lists_objectives_before_dominance() -> None:
    m = _metrics({"profit": ("s_S", 12.0, 5.0)}, [[132.0, 0.95]])
    lines = verdict(m)
    assert lines[0].startswith("profit:") and "dominates base_stock, s_S" in lines[1]


def test_dominance_needs_one_strictly_better_objective() -> None:
    assert dominates([1.0, 2.0], [1.0, 1.0])
    assert not dominates([1.0, 1.0], [1.0, 1.0])
    assert not dominates([2.0, 0.0], [1.0, 1.0])


def test_a_swept_baseline_front_is_counted_point_by_point() -> None:
    m = _metrics({}, [[125.0, 0.85], [110.0, 0.88]])
    m["pareto"]["baseline_fronts"] = {
        "base_stock": {
            "parameter": "periods covered",
            "values": [1.0, 2.0, 3.0],
            # the first is dominated by the first learned point; the last dominates the second learned point
            "returns": [[120.0, 0.80], [100.0, 0.95], [115.0, 0.90]],
        }
    }
    (line,) = front_lines(m)
    assert line.startswith(
        "The learned front dominates 1 of the 3 points of the base_stock front (periods covered swept)"
    )
    assert line.endswith("1 of the 2 learned points are dominated by one of them.")
