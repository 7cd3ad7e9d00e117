"""The helpers of bench/bench_quality_lost_sales.py (preferences, the long-run objectives, the conditioned loss)."""

from __future__ import annotations

import argparse
from types import ModuleType

import numpy as np
import pytest
from conftest import load_bench_script

from paretochain.agents.baselines.lost_sales import ConstantOrderPolicy, long_run_cost


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench_script("bench_quality_lost_sales")


def test_preferences_are_normalised_weights_on_cost_and_fill_rate(bench: ModuleType) -> None:
    assert bench.parse_preference("1,0") == (1.0, 0.0)
    assert bench.parse_preference("0,2") == (0.0, 1.0)
    assert bench.parse_preference("1,3") == (0.25, 0.75)
    assert bench.preference_label((1.0, 0.0)) == "cost only"
    assert bench.preference_label((0.0, 1.0)) == "fill rate only"


@pytest.mark.parametrize("text", ["1", "1,0,0", "a,1", "-1,2", "0,0", "nan,1", "inf,1"])
def test_malformed_preferences_are_refused_with_the_text(bench: ModuleType, text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="preference"):
        bench.parse_preference(text)


def test_long_run_cost_column_is_long_run_cost_and_fill_rate_rises_with_the_order(bench: ModuleType) -> None:
    cfg = bench.instance(2, 9.0)
    seeds = [11, 12, 13, 14]

    def small(env: object) -> ConstantOrderPolicy:
        return ConstantOrderPolicy(env, 3.0)

    def large(env: object) -> ConstantOrderPolicy:
        return ConstantOrderPolicy(env, 20.0)

    objectives = bench.long_run_objectives(cfg, small, seeds, 10, 30, "cpu")
    assert objectives.shape == (4, 2)
    np.testing.assert_allclose(objectives[:, 0], long_run_cost(cfg, small, seeds, 10, 30, "cpu"), rtol=1e-9)
    # ordering 3 against a demand of 5 leaves about 2 in 5 units unmet; ordering 20 a growing stock meets it all
    assert np.all((objectives[:, 1] > 0.3) & (objectives[:, 1] < 0.9))
    np.testing.assert_allclose(bench.long_run_objectives(cfg, large, seeds, 10, 30, "cpu")[:, 1], 1.0)


def test_score_weighs_minus_cost_and_fill_rate(bench: ModuleType) -> None:
    objectives = np.array([[6.0, 0.9], [4.0, 0.8]])
    np.testing.assert_allclose(bench.score(objectives, (1.0, 0.0)), [-6.0, -4.0])
    np.testing.assert_allclose(bench.score(objectives, (0.0, 1.0)), [0.9, 0.8])
    np.testing.assert_allclose(bench.score(objectives, (0.5, 0.5)), [-2.55, -1.6])


def test_conditioned_loss_is_relative_to_the_fixed_policy_in_the_direction_that_is_worse(bench: ModuleType) -> None:
    # costs: a higher cost is a loss
    assert bench.conditioned_loss(6.06, 6.0, cost_only=True) == pytest.approx(0.01)
    assert bench.conditioned_loss(5.94, 6.0, cost_only=True) == pytest.approx(-0.01)
    # scores (fill rate): a lower score is a loss
    assert bench.conditioned_loss(0.95, 1.0, cost_only=False) == pytest.approx(0.05)
    assert bench.conditioned_loss(1.0, 0.95, cost_only=False) < 0
    assert bench.conditioned_loss(-1.0, 0.0, cost_only=False) == float("inf")
