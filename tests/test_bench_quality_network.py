"""The helpers of bench/bench_quality_network.py (the selection rule, the grid, the paired table, the verdict)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from conftest import load_bench_script


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench_script("bench_quality_network")


def test_preference_grid_covers_the_simplex_with_corners_first(bench: ModuleType) -> None:
    grid = bench.preference_grid(3, 4)
    assert grid.shape == (15, 3)  # C(4 + 2, 2) points
    np.testing.assert_allclose(grid.sum(axis=1), 1.0)
    np.testing.assert_array_equal(grid[:3], np.eye(3))
    assert len({tuple(row) for row in grid}) == len(grid)
    assert np.all(np.isclose(grid * 4, np.round(grid * 4)))


def test_preference_grid_refuses_zero_divisions(bench: ModuleType) -> None:
    with pytest.raises(ValueError, match="divisions"):
        bench.preference_grid(3, 0)


def test_choice_takes_the_most_profit_among_candidates_at_base_stock_fill_rate(bench: ModuleType) -> None:
    candidates = [
        {"file": "a", "profit": 500.0, "fill_rate": 0.70},  # most profit, but fills less than base-stock
        {"file": "b", "profit": 420.0, "fill_rate": 0.80},
        {"file": "c", "profit": 450.0, "fill_rate": 0.75},
    ]
    chosen = bench.choose_candidate(candidates, base_fill_rate=0.75)
    assert chosen["file"] == "c"
    assert chosen["reaches_base_fill_rate"] is True


def test_choice_falls_back_to_the_highest_fill_rate_and_says_so(bench: ModuleType) -> None:
    candidates = [{"file": "a", "profit": 500.0, "fill_rate": 0.60}, {"file": "b", "profit": 400.0, "fill_rate": 0.65}]
    chosen = bench.choose_candidate(candidates, base_fill_rate=0.9)
    assert chosen["file"] == "b"
    assert chosen["reaches_base_fill_rate"] is False


def test_paired_table_differences_are_paired_by_episode(bench: ModuleType) -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(100.0, 30.0, size=(400, 2))
    learned = base + np.array([1.0, -0.5])  # the same episodes shifted: paired CIs collapse to 0 width
    table = bench.paired_table(learned, base, ["profit", "fill_rate"])
    assert table["profit"]["difference"] == pytest.approx(1.0)
    assert table["fill_rate"]["difference"] == pytest.approx(-0.5)
    assert table["profit"]["difference_ci95"] == pytest.approx(0.0, abs=1e-9)
    assert table["profit"]["learned_ci95"] > 1.0  # the unpaired CI keeps the episodes' spread
    with pytest.raises(ValueError, match="not paired"):
        bench.paired_table(learned[:10], base, ["profit", "fill_rate"])


@pytest.mark.parametrize(
    ("profit", "fill", "met"),
    [
        ((10.0, 5.0), (0.0, 0.01), True),  # profit CI above 0, fill CI reaches 0
        ((10.0, 5.0), (-0.005, 0.01), True),  # fill difference negative but its CI reaches above 0
        ((10.0, 12.0), (0.01, 0.01), False),  # profit CI reaches below 0
        ((10.0, 5.0), (-0.02, 0.01), False),  # fill CI entirely below 0
    ],
)
def test_target_needs_profit_ci_above_zero_and_fill_ci_reaching_zero(
    bench: ModuleType, profit: tuple[float, float], fill: tuple[float, float], met: bool
) -> None:
    assert bench.target_met(profit[0], profit[1], fill[0], fill[1]) is met


def test_distinct_files_drops_byte_identical_copies_keeping_the_first(bench: ModuleType, tmp_path: Path) -> None:
    final, best, other = tmp_path / "policy.pt", tmp_path / "best.pt", tmp_path / "other.pt"
    final.write_bytes(b"weights")
    best.write_bytes(b"weights")
    other.write_bytes(b"other weights")
    assert bench.distinct_files([final, best, other]) == [final, other]
