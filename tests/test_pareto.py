"""Pareto evaluation: non-dominated filtering, hypervolume, expected utility, and the evaluation loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from paretochain.agents.preferences import grid_size
from paretochain.envs import make_vec
from paretochain.evaluate.pareto import (
    conditioned_utility,
    default_preferences,
    evaluate_pareto,
    expected_utility,
    hypervolume,
    non_dominated,
)

WAREHOUSE = "paretochain/Warehouse-v0"

points_2d = arrays(np.float64, st.tuples(st.integers(1, 12), st.just(2)), elements=st.floats(-10, 10, allow_nan=False))


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a >= b) and np.any(a > b))


def test_hypervolume_matches_hand_computed_2d_staircase() -> None:
    # maximised points (1,3), (2,2), (3,1) above (0,0): columns of heights 3, 2, 1 and width 1
    points = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    assert hypervolume(points, [0.0, 0.0]) == pytest.approx(6.0)
    # shifting the reference to (1, 0) leaves columns of heights 2 and 1
    assert hypervolume(points, [1.0, 0.0]) == pytest.approx(3.0)


def test_hypervolume_ignores_points_that_do_not_beat_the_reference() -> None:
    assert hypervolume(np.array([[2.0, 2.0], [-1.0, 5.0]]), [0.0, 0.0]) == pytest.approx(4.0)
    assert hypervolume(np.array([[-1.0, -1.0]]), [0.0, 0.0]) == 0.0


def test_hypervolume_of_negative_returns_uses_the_declared_reference() -> None:
    # costs are negated: returns -2 and -3 against a worst-case reference of -10
    assert hypervolume(np.array([[-2.0, -3.0]]), [-10.0, -10.0]) == pytest.approx(8.0 * 7.0)


def test_non_dominated_drops_exactly_the_dominated_points() -> None:
    points = np.array([[1.0, 3.0], [2.0, 2.0], [1.0, 1.0], [3.0, 1.0], [2.0, 2.0]])
    assert non_dominated(points).tolist() == [True, True, False, True, True]


@settings(max_examples=40, deadline=None)
@given(points_2d)
def test_non_dominated_keeps_no_dominated_point_and_covers_every_dropped_one(points: np.ndarray) -> None:
    mask = non_dominated(points)
    kept, dropped = points[mask], points[~mask]
    assert mask.any()
    for p in kept:
        assert not any(dominates(q, p) for q in points)
    for p in dropped:
        assert any(dominates(q, p) for q in kept)


@settings(max_examples=40, deadline=None)
@given(points_2d, st.floats(-10, 10), st.floats(-10, 10))
def test_hypervolume_never_decreases_when_a_point_is_added(points: np.ndarray, x: float, y: float) -> None:
    ref = np.array([-11.0, -11.0])
    before = hypervolume(points, ref)
    after = hypervolume(np.vstack([points, [x, y]]), ref)
    assert after >= before - 1e-9
    assert hypervolume(points[non_dominated(points)], ref) == pytest.approx(before)


def test_expected_utility_matches_hand_computed_case() -> None:
    points = np.array([[1.0, 0.0], [0.0, 1.0], [0.4, 0.4]])
    prefs = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    # best utilities: 1.0, max(0.5, 0.5, 0.4) = 0.5, 1.0
    assert expected_utility(points, prefs) == pytest.approx((1.0 + 0.5 + 1.0) / 3)
    assert expected_utility(points, prefs, scale=[2.0, 1.0]) == pytest.approx((0.5 + 0.5 + 1.0) / 3)


def test_default_preferences_are_the_documented_lattice() -> None:
    assert default_preferences(2).shape == (11, 2)
    assert default_preferences(3).shape == (grid_size(3, 6), 3)
    assert np.allclose(default_preferences(3).sum(axis=1), 1.0)


class _OrderUpTo:
    """Order up to a level that grows with the first preference weight (to trace a front)."""

    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        position = obs[:, :3].sum(dim=1)
        level = 6.0 + 14.0 * preference[:, 1]
        return (level - position).clamp(0, 20).round().long()


class _Fixed:
    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return torch.full((obs.shape[0],), 5, dtype=torch.long)


def test_evaluate_pareto_gives_every_preference_the_same_episodes() -> None:
    prefs = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    result = evaluate_pareto(_Fixed(), WAREHOUSE, "lost_sales", preferences=prefs, seeds=[3, 4], horizon=20)
    # a policy that ignores the preference scores identically under common random numbers
    assert np.array_equal(result.returns_per_seed[0], result.returns_per_seed[1])
    assert np.array_equal(result.returns_per_seed[0], result.returns_per_seed[2])
    assert result.front_mask.all()
    assert result.returns.shape == (3, 2)
    assert result.objective_names == ["total_cost", "fill_rate"]


def test_evaluate_pareto_traces_a_trade_off_and_scores_it_against_the_reference() -> None:
    env = make_vec(WAREHOUSE, 1, config="lost_sales", horizon=30)
    prefs = default_preferences(2)
    result = evaluate_pareto(_OrderUpTo(), WAREHOUSE, "lost_sales", preferences=prefs, seeds=[1, 2, 3], horizon=30)
    ref = env.objectives.reference_point
    assert np.array_equal(result.reference_point, ref)
    # more weight on fill rate -> higher order-up-to level -> higher fill rate
    assert result.returns[-1, 1] > result.returns[0, 1]
    assert result.hypervolume == pytest.approx(hypervolume(result.front, ref))
    assert result.hypervolume > 0
    assert result.expected_utility == pytest.approx(expected_utility(result.returns, prefs))
    assert result.to_dict()["hypervolume"] == result.hypervolume


def test_evaluate_pareto_refuses_preferences_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="preferences must be"):
        evaluate_pareto(_Fixed(), WAREHOUSE, "lost_sales", preferences=np.ones((2, 3)) / 3, seeds=[1])


def test_evaluate_pareto_in_groups_of_preferences_measures_what_one_batch_measures(monkeypatch) -> None:
    from paretochain.evaluate import pareto

    prefs = default_preferences(2)
    args = dict(preferences=prefs, seeds=[1, 2, 3], horizon=30)
    whole = evaluate_pareto(_OrderUpTo(), WAREHOUSE, "lost_sales", **args)
    monkeypatch.setattr(pareto, "MAX_EVALUATION_BATCH", 7)  # two preferences (of 3 seeds) per batch
    grouped = evaluate_pareto(_OrderUpTo(), WAREHOUSE, "lost_sales", **args)
    assert np.array_equal(grouped.returns_per_seed, whole.returns_per_seed)
    assert np.array_equal(grouped.front_mask, whole.front_mask) and grouped.hypervolume == whole.hypervolume
    assert set(grouped.kpis) == set(whole.kpis) and all(np.allclose(grouped.kpis[n], whole.kpis[n]) for n in whole.kpis)


def test_conditioned_utility_scores_each_preference_at_its_own_point() -> None:
    points = np.array([[4.0, 0.0], [0.0, 2.0]])
    prefs = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert conditioned_utility(points, prefs, [2.0, 1.0]) == pytest.approx((4.0 / 2 + 2.0) / 2)
    # the best point for every preference would score more: the two utilities differ
    assert expected_utility(points[::-1], prefs, [2.0, 1.0]) > conditioned_utility(points[::-1], prefs, [2.0, 1.0])
