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


# ---------------------------------------------------------------------- serving beats parking


class ParkingPolicy:
    """Sends every vehicle home at once: it parks and no order is ever served."""

    def __init__(self, env: object) -> None:
        self.depot_move = env.single_action_space.n - 2  # type: ignore[attr-defined]

    def act(self, obs: torch.Tensor, preference: object = None, action_mask: object = None) -> torch.Tensor:
        return torch.full((obs.shape[0],), self.depot_move, dtype=torch.int64)


SMALL_SHIFT = {"generator": {"num_customers": 8}}


def _scalarised_returns(objectives: list[str], weights: dict[str, float]) -> dict[str, float]:
    from paretochain.agents.sb3.scalarize import make_scalarization

    seeds = list(range(8))
    env = make_vec("paretochain/Dispatch-v0", len(seeds), config="default", objectives=objectives, **SMALL_SHIFT)
    scalarization = make_scalarization(env.core.objectives.names, weights)
    scores = {}
    for name, policy in (("parking", ParkingPolicy(env)), ("nearest_neighbour", NearestNeighbourPolicy(env))):
        result = rollout(env, policy, seeds)
        scores[name] = float(scalarization(result.returns).mean())
    return scores


def test_parking_scores_worse_than_nearest_neighbour_under_the_sb3_config_scalarisation() -> None:
    from paretochain.train.config import load_run_config

    run = load_run_config("dispatch_sb3_maskable_ppo")
    assert isinstance(run.preference, dict)
    env_cfg = make_vec("paretochain/Dispatch-v0", 1, config="default").config  # type: ignore[attr-defined]
    scores = _scalarised_returns(list(env_cfg.objectives), run.preference)
    assert scores["parking"] < scores["nearest_neighbour"]


def test_parking_scores_worse_than_nearest_neighbour_under_equal_weights_of_the_default_objectives() -> None:
    from paretochain.envs.dispatch.config import DispatchConfig

    names = list(DispatchConfig().objectives)
    scores = _scalarised_returns(names, dict.fromkeys(names, 1.0))
    assert scores["parking"] < scores["nearest_neighbour"]


def test_with_distance_alone_in_place_of_service_cost_parking_wins_the_same_weights() -> None:
    # the failure the default objectives prevent: 0 km driven outweighs a few orders left unserved
    names = ["travel_distance", "on_time_rate", "unserved_orders"]
    scores = _scalarised_returns(names, {"travel_distance": 0.4, "on_time_rate": 0.3, "unserved_orders": 0.3})
    assert scores["parking"] > scores["nearest_neighbour"]


def test_an_unserved_order_costs_more_than_serving_it_on_a_round_trip_of_its_own() -> None:
    env = make_vec("paretochain/Dispatch-v0", 16, config="default")
    core = env.core
    env.reset(seed=list(range(16)))
    depot_to_customer = torch.cdist(core.state.coords[:, :1], core.state.coords[:, 1:]).squeeze(1)
    assert float(2 * depot_to_customer.max()) < core.unserved_penalty
    assert core.unserved_penalty == pytest.approx(2 * 20.0 * np.sqrt(2))  # twice the corner round trip of 20 km


def test_parking_loses_every_order_at_the_full_penalty_in_service_cost() -> None:
    env = make_vec("paretochain/Dispatch-v0", 2, config="default", **SMALL_SHIFT)
    result = rollout(env, ParkingPolicy(env), [0, 1])
    cost = env.core.objectives.names.index("service_cost")
    assert np.all(result.kpis["orders_unserved"] == 8)
    np.testing.assert_allclose(result.returns[:, cost], -8 * env.core.unserved_penalty, rtol=1e-5)


@pytest.mark.parametrize("value", [0.0, -3.0, float("inf"), float("nan")])
def test_an_unserved_penalty_that_is_not_a_positive_finite_distance_is_refused_naming_the_field(value: float) -> None:
    from paretochain.envs.dispatch.config import DispatchConfig
    from paretochain.errors import ConfigError

    with pytest.raises(ConfigError, match="unserved_penalty"):
        DispatchConfig.load("default", unserved_penalty=value)
