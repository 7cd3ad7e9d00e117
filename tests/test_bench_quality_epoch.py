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


def test_of_several_policy_files_the_one_with_the_higher_validation_return_is_tested(
    bench: ModuleType, tmp_path: Path
) -> None:
    import torch

    from paretochain.agents.export import export_policy, load_policy
    from paretochain.agents.mo_ppo import MOPPO
    from paretochain.envs import make_vec
    from paretochain.evaluate.rollout import rollout
    from paretochain.seeds import VALIDATION

    overrides = {
        "generator": {"num_customers": 8, "area_km": 10.0},
        "num_vehicles": 2,
        "epoch": {"routing_iterations": 30, "routing_time_limit_s": 0.5},
    }
    env = make_vec(bench.ENV_ID, 3, config="default", tensors=True, check_actions=False, **overrides)
    paths, scores = [], []
    for name, bias in (("greedy", 10.0), ("lazy", -10.0)):  # dispatch every open order, or the must-go ones only
        attention = {"slots_block": "orders", "valid_block": "order_valid"}
        agent = MOPPO(env, {"encoder": "attention", "pointer": True, "attention": attention}, device="cpu")
        with torch.no_grad():
            agent.actor.dispatch.bias.fill_(bias)  # type: ignore[union-attr]
        paths.append(str(export_policy(agent, tmp_path / name, pt2=False)))
        policy = load_policy(paths[-1])
        preference = policy.default_preference.numpy()
        result = rollout(env, policy, VALIDATION.first(3), preference=preference)
        scores.append(float((result.returns * preference).sum(axis=1).mean()))
    assert scores[0] != scores[1]
    chosen = bench.choose_policy(paths, "default", overrides, 3)
    obs = env.core.reset(seeds=VALIDATION.first(3))
    mask = env.core.action_masks()
    env.core.close()
    best, worst = load_policy(paths[int(np.argmax(scores))]), load_policy(paths[int(np.argmin(scores))])
    assert torch.equal(chosen.act(obs, None, mask), best.act(obs, None, mask))
    assert not torch.equal(chosen.act(obs, None, mask), worst.act(obs, None, mask))


def test_a_results_file_with_a_value_that_is_not_finite_is_refused(bench: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "slow.json"
    bench.save_results(str(path), CONFIG, {"rollout": _result([500.0, float("nan")])})
    with pytest.raises(SystemExit, match="policy 'rollout' has a value that is not finite in 'travel_distance'"):
        bench.load_results(str(path), CONFIG)
