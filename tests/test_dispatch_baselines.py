"""Tests of the Dispatch baselines: nearest neighbour, Clarke-Wright savings, PyVRP hindsight and rolling."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from paretochain.agents.baselines.dispatch import (
    NearestNeighbourPolicy,
    PyVRPHindsightPolicy,
    PyVRPRollingPolicy,
    SavingsPolicy,
    savings_routes,
)
from paretochain.agents.policy import Policy
from paretochain.envs import make_vec
from paretochain.evaluate.rollout import rollout

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
A32 = DATA / "cvrplib" / "A" / "A-n32-k5.vrp"
needs_data = pytest.mark.skipif(
    not A32.exists(), reason=f"shared routing data not found at {DATA} (see shared/data/README.md)"
)
A32_BKS = 784.0


def static_a32(**extra: object):
    return make_vec(
        "paretochain/Dispatch-v0",
        1,
        config={"instance_source": "file", "instance": {"path": str(A32)}, "release": {"known_share": 1.0}, **extra},
    )


@needs_data
def test_pyvrp_hindsight_is_within_one_percent_of_the_best_known_cost_on_a_n32_k5_in_seconds() -> None:
    env = static_a32()
    policy = PyVRPHindsightPolicy(env, time_limit_s=2.0, seed=1)
    start = time.perf_counter()
    result = rollout(env, policy, [0])
    elapsed = time.perf_counter() - start
    assert result.kpis["orders_unserved"][0] == 0
    assert result.kpis["travel_distance"][0] <= 1.01 * A32_BKS
    assert result.kpis["travel_distance"][0] == pytest.approx(policy.last_cost[0])  # the env charges what PyVRP planned
    assert elapsed < 10.0


@needs_data
def test_savings_routes_respect_capacity_and_come_within_ten_percent_of_a_n32_k5_optimum() -> None:
    env = static_a32()
    result = rollout(env, SavingsPolicy(env), [0])
    assert result.kpis["orders_unserved"][0] == 0
    assert A32_BKS <= result.kpis["travel_distance"][0] <= 1.10 * A32_BKS


def test_savings_merges_two_customers_into_one_route_when_capacity_allows() -> None:
    # depot at 0, customers at 10 and 11 on a line: one route saves 2 * 10 in distance
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [11.0, 0.0]])
    dist = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    demand = np.array([0.0, 3.0, 3.0])
    assert sorted(map(sorted, savings_routes(dist, demand, [1, 2], capacity=6))) == [[1, 2]]
    assert sorted(map(sorted, savings_routes(dist, demand, [1, 2], capacity=5))) == [[1], [2]]


def test_every_baseline_follows_the_policy_contract_and_only_takes_allowed_moves() -> None:
    env = make_vec("paretochain/Dispatch-v0", 2, generator={"num_customers": 8})
    for make in (NearestNeighbourPolicy, SavingsPolicy, lambda e: PyVRPHindsightPolicy(e, time_limit_s=0.1)):
        policy = make(env)
        assert isinstance(policy, Policy)
        obs, info = env.reset(seed=[1, 2])
        ends = 0
        for _ in range(400):
            mask = torch.as_tensor(info["action_mask"])
            action = policy.act(torch.as_tensor(obs), None, mask)
            assert action.shape == (2,) and mask.gather(1, action.view(-1, 1)).all()
            obs, _, terminated, _, info = env.step(action.numpy())  # checks the masks too
            ends += int(terminated.sum())
            if ends >= 2:
                break
        assert ends >= 2, f"{type(policy).__name__} did not finish its episodes"


def test_nearest_neighbour_serves_every_order_of_a_static_uncongested_shift() -> None:
    env = make_vec(
        "paretochain/Dispatch-v0",
        4,
        generator={"num_customers": 10, "time_windows": False},
        release={"known_share": 1.0},
    )
    result = rollout(env, NearestNeighbourPolicy(env), [0, 1, 2, 3])
    assert np.all(result.kpis["orders_unserved"] == 0)
    assert np.all(result.kpis["orders_served"] == 10)


@pytest.mark.slow
def test_rolling_pyvrp_serves_every_order_of_a_small_dynamic_shift() -> None:
    env = make_vec("paretochain/Dispatch-v0", 1, generator={"num_customers": 10})
    result = rollout(env, PyVRPRollingPolicy(env, time_limit_s=0.02), [3])
    nearest = rollout(env, NearestNeighbourPolicy(env), [3])
    assert result.kpis["orders_unserved"][0] <= nearest.kpis["orders_unserved"][0]
    assert result.kpis["orders_served"][0] + result.kpis["orders_unserved"][0] == 10


def test_pyvrp_hindsight_plan_runs_in_the_env_at_its_planned_distance_with_every_order_on_time() -> None:
    env = make_vec("paretochain/Dispatch-v0", 2)
    policy = PyVRPHindsightPolicy(env, time_limit_s=0.3)
    result = rollout(env, policy, [0, 1])
    np.testing.assert_allclose(result.kpis["travel_distance"], policy.last_cost, rtol=1e-4)
    assert np.all(result.kpis["orders_unserved"] == 0)
    assert np.all(result.kpis["orders_on_time"] == 20)
    nearest = rollout(env, NearestNeighbourPolicy(env), [0, 1])
    assert result.kpis["orders_on_time"].sum() >= nearest.kpis["orders_on_time"].sum()
