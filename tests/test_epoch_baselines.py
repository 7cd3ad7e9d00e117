"""Baselines of the epoch decision mode: what each dispatches, the policy contract, the hindsight bound."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from test_dispatch_epoch import SMALL, two_order_env

from paretochain.agents.baselines.epoch import (
    GreedyEpochPolicy,
    HindsightEpochPolicy,
    LazyEpochPolicy,
    RandomEpochPolicy,
    RolloutEpochPolicy,
)
from paretochain.envs.dispatch.epoch import EpochDispatchEnv

SHIFT: dict[str, Any] = {
    "generator": {"num_customers": 20, "area_km": 15.0},
    "num_vehicles": 4,
    "epoch": {"routing_iterations": 150},
}


def play(env: EpochDispatchEnv, policy: Any, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """One episode through the policy contract (batched tensors in and out); the return and the decisions taken."""
    obs, info = env.reset(seed=seed)
    total = np.zeros(env.reward_dim)
    decisions = []
    done = False
    while not done:
        action = policy.act(torch.as_tensor(obs)[None], None, torch.as_tensor(info["action_mask"])[None])
        assert action.shape == (1, env.max_orders) and action.dtype == torch.int64
        decisions.append(action[0].numpy())
        obs, reward, done, _, info = env.step(decisions[-1])
        total += reward
    return total, decisions


def test_greedy_dispatches_every_open_order_and_lazy_only_the_must_go_ones(tmp_path: Path) -> None:
    env = two_order_env(tmp_path)
    obs, info = env.reset(seed=0)
    mask = torch.as_tensor(info["action_mask"])[None]
    assert GreedyEpochPolicy().act(torch.as_tensor(obs)[None], None, mask).tolist() == [[1, 1]]
    assert LazyEpochPolicy().act(torch.as_tensor(obs)[None], None, mask).tolist() == [[1, 0]]


def test_mask_reading_baselines_act_on_a_batch_of_masks() -> None:
    # slot 0 must go, slot 1 may wait, slot 2 holds nothing; second env: slot 1 must go
    mask = torch.tensor([[0, 1, 1, 1, 1, 0], [1, 1, 0, 1, 1, 0]], dtype=torch.bool)
    obs = torch.zeros(2, 1)
    assert GreedyEpochPolicy().act(obs, None, mask).tolist() == [[1, 1, 0], [1, 1, 0]]
    assert LazyEpochPolicy().act(obs, None, mask).tolist() == [[1, 0, 0], [0, 1, 0]]
    always, never = RandomEpochPolicy(p=1.0).act(obs, None, mask), RandomEpochPolicy(p=0.0).act(obs, None, mask)
    assert always.tolist() == [[1, 1, 0], [1, 1, 0]] and never.tolist() == [[1, 0, 0], [0, 1, 0]]


def test_random_policy_is_reproducible_for_a_seed() -> None:
    mask = torch.ones(1, 200, dtype=torch.bool)
    first = RandomEpochPolicy(seed=4).act(torch.zeros(1, 1), None, mask)
    assert torch.equal(first, RandomEpochPolicy(seed=4).act(torch.zeros(1, 1), None, mask))
    assert 20 < int(first.sum()) < 80  # about half of the 100 optional orders


@pytest.mark.parametrize("name", ["greedy", "lazy", "random", "rollout", "hindsight"])
def test_every_epoch_baseline_follows_the_contract_and_only_takes_allowed_decisions(name: str) -> None:
    env = EpochDispatchEnv(SMALL, invalid_action="raise")  # a masked-out decision would raise
    policy = {
        "greedy": lambda: GreedyEpochPolicy(),
        "lazy": lambda: LazyEpochPolicy(),
        "random": lambda: RandomEpochPolicy(seed=1),
        "rollout": lambda: RolloutEpochPolicy(env, num_scenarios=2, iterations=50),
        "hindsight": lambda: HindsightEpochPolicy(env, iterations=200),
    }[name]()
    for seed in (1, 2):
        total, _ = play(env, policy, seed)
        n = int(env.instance.valid.sum())  # type: ignore[union-attr]
        assert int(env.served.sum()) - total[2] == n  # every order served or counted unserved


def test_hindsight_plays_the_one_trip_plan_and_reports_its_distance_as_the_bound(tmp_path: Path) -> None:
    env = two_order_env(tmp_path, invalid_action="raise")
    policy = HindsightEpochPolicy(env, iterations=200)
    total, decisions = play(env, policy, seed=0)
    # both orders known at 0: the plan is one trip 0 -> (10, 0) -> (0, 10) -> 0 leaving at once
    assert decisions[0].tolist() == [1, 1]
    assert policy.bound_distance == pytest.approx(34.1, abs=1e-6)
    assert -total[0] == pytest.approx(34.1, abs=1e-4)


def test_rollout_without_future_orders_dispatches_what_the_plan_sends_at_once(tmp_path: Path) -> None:
    # every order known at the start: the scenarios hold no future orders, every plan sends both now
    env = two_order_env(tmp_path, invalid_action="raise")
    policy = RolloutEpochPolicy(env, num_scenarios=3, iterations=100)
    total, decisions = play(env, policy, seed=0)
    assert decisions[0].tolist() == [1, 1]
    assert policy.last_share.tolist() == [0.0, 0.0]  # the last epoch had nothing left to decide
    assert -total[0] == pytest.approx(34.1, abs=1e-4)


def test_hindsight_bound_is_below_greedy_and_lazy_and_rollout_beats_both_on_a_dynamic_shift() -> None:
    env = EpochDispatchEnv(SHIFT, invalid_action="raise")
    distances: dict[str, float] = {}
    hindsight = HindsightEpochPolicy(env, iterations=500)
    policies = {
        "greedy": GreedyEpochPolicy(),
        "lazy": LazyEpochPolicy(),
        "rollout": RolloutEpochPolicy(env, num_scenarios=4, iterations=150),
    }
    for seed in (1, 2):
        for name, policy in policies.items():
            total, _ = play(env, policy, seed)
            assert total[2] == 0.0, f"{name} left orders unserved on seed {seed}"
            distances[name] = distances.get(name, 0.0) - total[0]
        play(env, hindsight, seed)
        distances["bound"] = distances.get("bound", 0.0) + hindsight.bound_distance
    assert distances["bound"] < distances["rollout"] < min(distances["greedy"], distances["lazy"])


def test_random_policy_refuses_a_probability_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="p must be in"):
        RandomEpochPolicy(p=1.5)


# ---------------------------------------------------------------------- in paretochain evaluate

EPOCH_BASELINE_NAMES = {"greedy", "lazy", "random", "rollout", "hindsight"}
TINY: dict[str, Any] = {
    "generator": {"num_customers": 6, "area_km": 10.0},
    "num_vehicles": 2,
    "epoch": {"routing_iterations": 30, "routing_time_limit_s": 0.5},
}


def test_every_epoch_baseline_is_a_baseline_of_the_family_record() -> None:
    from paretochain.envs import get_family

    record = get_family("paretochain/DispatchEpoch-v0")
    assert {b.name for b in record.baseline_list()} == EPOCH_BASELINE_NAMES


def test_the_batched_hindsight_and_rollout_decide_each_env_as_the_single_policy_does() -> None:
    from paretochain.agents.baselines.epoch import PerEnvironmentPolicy
    from paretochain.envs import make_vec

    seeds = [0, 1]
    vec = make_vec("paretochain/DispatchEpoch-v0", 2, config="default", tensors=True, **TINY)
    obs, infos = vec.reset(seed=seeds)
    batched = PerEnvironmentPolicy(vec, lambda e: HindsightEpochPolicy(e, iterations=60, time_limit_s=1.0))
    decisions = batched.act(obs, None, infos["action_mask"])
    assert decisions.shape == (2, vec.core.max_orders)
    for i, seed in enumerate(seeds):
        env = EpochDispatchEnv("default", **TINY)
        s_obs, s_info = env.reset(seed=seed)
        single = HindsightEpochPolicy(env, iterations=60, time_limit_s=1.0)
        expected = single.act(torch.as_tensor(s_obs)[None], None, torch.as_tensor(s_info["action_mask"])[None])
        assert torch.equal(decisions[i], expected[0])
        assert batched.policies[i].bound_distance == pytest.approx(single.bound_distance)


def test_paretochain_evaluate_reports_every_epoch_baseline_beside_a_learned_epoch_policy(tmp_path: Path) -> None:
    import json

    from paretochain.cli import main

    run_config = tmp_path / "epoch.yaml"
    run_config.write_text(
        "env: {id: paretochain/DispatchEpoch-v0, config: default, overrides: "
        + json.dumps(TINY)
        + "}\nagent: mo_ppo\nnum_envs: 2\nbudget_env_steps: 8\ncheckpoint_interval_steps: 8\n"
        "eval_interval_steps: 8\neval_episodes: 1\neval_preferences: 1\nhyperparameters: {num_steps: 4}\n"
    )
    assert main(["train", str(run_config), f"runs_dir={tmp_path / 'runs'}", "name=epoch"]) == 0
    out = tmp_path / "report"
    assert main(["evaluate", str(tmp_path / "runs" / "epoch"), "--episodes", "2", "--scenario", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["policies"]) == {"learned"} | EPOCH_BASELINE_NAMES
    assert "hindsight" in (out / "report.md").read_text()
    for name, policy in metrics["policies"].items():
        kpis = policy["kpis"]  # every order ends served or counted unserved, whoever decides
        assert kpis["orders_served"] + kpis["orders_unserved"] == pytest.approx(6.0), name
    names = [o["name"] for o in metrics["objectives"]]
    assert names == ["service_cost", "on_time_rate", "unserved_orders"]
    assert set(metrics["paired_vs_best_baseline"]) == set(names)
