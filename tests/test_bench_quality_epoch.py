"""The helpers of bench/bench_quality_epoch.py: per-episode results saved by one run and paired in another."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from conftest import load_bench_script

from paretochain.evaluate.rollout import RolloutResult

CONFIG = {"generator": {"num_customers": 100}, "epoch": {"routing_iterations": 500}}


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench_script("bench_quality_epoch")


def _result(km: list[float]) -> RolloutResult:
    n = len(km)
    kpis = {"travel_distance": np.array(km), "orders_unserved": np.zeros(n)}
    return RolloutResult(np.zeros((n, 3)), kpis, np.full(n, 7), [1000000 + i for i in range(n)])


def test_saved_results_load_back_episode_by_episode(bench: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "slow.json"
    bench.save_results(str(path), CONFIG, {"rollout": _result([500.0, 520.5, 498.25])})
    seeds, policies = bench.load_results(str(path), CONFIG)
    assert seeds == [1000000, 1000001, 1000002]
    np.testing.assert_array_equal(policies["rollout"]["travel_distance"], [500.0, 520.5, 498.25])


def test_results_of_another_instance_config_are_refused(bench: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "slow.json"
    bench.save_results(str(path), CONFIG, {"rollout": _result([500.0])})
    other = {**CONFIG, "generator": {"num_customers": 200}}
    with pytest.raises(SystemExit, match="another instance config"):
        bench.load_results(str(path), other)


def test_a_file_that_is_not_a_results_file_is_refused_with_its_name(bench: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "notes.json"
    path.write_text('{"seeds": [1, 2]}')
    with pytest.raises(SystemExit, match=r"notes\.json: not a results file"):
        bench.load_results(str(path), CONFIG)
