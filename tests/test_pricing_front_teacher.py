"""The best fixed price per preference: its choice, its tuning, its errors, and MO-PPO imitating it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import paretochain  # noqa: F401
from paretochain.agents.baselines.pricing import (
    FixedPriceFrontPolicy,
    FixedPricePolicy,
    tune_fixed_price,
    tune_fixed_price_front,
)
from paretochain.agents.mo_ppo import MOPPO
from paretochain.envs import make_vec
from paretochain.errors import ConfigError
from paretochain.evaluate.baselines import family_baselines
from paretochain.evaluate.rollout import rollout
from paretochain.train.config import load_run_config
from paretochain.train.run import checkpoints, load_checkpoint, train

# three candidate prices and their mean returns (gross margin, satisfaction, -leftover value)
RATIOS = [0.8, 1.0, 1.2]
MEANS = np.array([[100.0, 0.90, -5.0], [120.0, 0.95, -10.0], [110.0, 0.99, -20.0]])
SCALE = [100.0, 1.0, 10.0]


def _played_price(env, policy, preference: torch.Tensor) -> list[float]:
    obs, _ = env.reset(seed=0)
    env.core.step(policy.act(obs, preference, env.action_masks()))
    return [round(float(p), 4) for p in env.core.state.price[:, 0, 0]]


def test_the_front_plays_at_each_preference_the_candidate_a_hand_computation_finds_best() -> None:
    env = make_vec("paretochain/Pricing-v0", 5, config="dp_single_sku", tensors=True)
    policy = FixedPriceFrontPolicy(env, RATIOS, MEANS, SCALE)
    # by hand, sum_i w_i * mean_i / scale_i per candidate (0.8, 1.0, 1.2):
    #   (1, 0, 0):      1.00, 1.20, 1.10          -> 1.0
    #   (0, 1, 0):      0.90, 0.95, 0.99          -> 1.2
    #   (0, 0, 1):     -0.50, -1.00, -2.00        -> 0.8
    #   (0.5, 0.5, 0):  0.95, 1.075, 1.045        -> 1.0
    #   (0, 0.5, 0.5):  0.20, -0.025, -0.505      -> 0.8
    preference = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0], [0, 0.5, 0.5]])
    assert _played_price(env, policy, preference) == [1.0, 1.2, 0.8, 1.0, 0.8]
    # one preference for the whole batch, and the default preference (equal weights: 0.833, 0.742, 0.363)
    assert _played_price(env, policy, torch.tensor([0.0, 1.0, 0.0])) == [1.2] * 5
    assert _played_price(env, policy, None) == [0.8] * 5
    # the price is held all season: every period plays the row's candidate
    obs, _ = env.reset(seed=3)
    for _ in range(env.core.horizon):
        obs = env.core.step(policy.act(obs, preference, env.action_masks())).obs
        assert [round(float(p), 4) for p in env.core.state.price[:, 0, 0]] == [1.0, 1.2, 0.8, 1.0, 0.8]


def test_the_tuned_front_holds_each_candidates_returns_and_matches_the_fixed_price_tuned_at_each_corner() -> None:
    seeds = list(range(16))
    ratios = [0.7, 0.9, 1.0, 1.1, 1.2, 1.3]
    front, table = tune_fixed_price_front("dp_single_sku", seeds, ratios=ratios)
    assert list(table) == ratios
    env = make_vec("paretochain/Pricing-v0", len(seeds), config="dp_single_sku", tensors=True)
    held = rollout(env, FixedPricePolicy(env, 1.1), seeds).returns.mean(axis=0)
    assert table[1.1] == pytest.approx(held.tolist(), rel=1e-5)
    corners = torch.eye(3)
    chosen = front.price_ratios[front.choose(corners, 3).numpy()]
    for corner, ratio in zip(np.eye(3), chosen):
        tuned, _ = tune_fixed_price("dp_single_sku", seeds, weights=corner, ratios=ratios)
        assert float(tuned.price_ratio) == pytest.approx(ratio)
    assert chosen[0] != chosen[1]  # margin only and satisfaction only want different prices here


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"mean_returns": MEANS[:2]}, r"mean_returns of shape \(2, 3\) for 3 price rules"),
        ({"mean_returns": np.where(MEANS == 0.95, np.nan, MEANS)}, "not finite"),
        ({"price_ratios": [0.8, -1.0, 1.2]}, "price_ratios must be finite and above 0"),
        ({"objective_scale": [100.0, 0.0, 10.0]}, "objective_scale must be 3 finite values above 0"),
        ({"default_preference": [0.0, 0.0, 0.0]}, "default_preference must be 3 finite weights"),
    ],
)
def test_the_front_refuses_a_table_it_cannot_trust_with_one_config_error(arguments: dict, message: str) -> None:
    env = make_vec("paretochain/Pricing-v0", 2, config="dp_single_sku", tensors=True)
    given = {"price_ratios": RATIOS, "mean_returns": MEANS, "objective_scale": SCALE, **arguments}
    with pytest.raises(ConfigError, match=message):
        FixedPriceFrontPolicy(env, **given)


def test_the_front_refuses_a_preference_of_the_wrong_shape() -> None:
    env = make_vec("paretochain/Pricing-v0", 2, config="dp_single_sku", tensors=True)
    policy = FixedPriceFrontPolicy(env, RATIOS, MEANS, SCALE)
    obs, _ = env.reset(seed=0)
    with pytest.raises(ConfigError, match=r"preference of shape \(2, 2\) for a batch of 2 and 3 objectives"):
        policy.act(obs, torch.ones(2, 2), env.action_masks())


def test_the_front_is_a_pricing_baseline_and_an_unknown_or_foreign_teacher_is_one_config_error(
    tmp_path: Path,
) -> None:
    factories = family_baselines(
        "paretochain/Pricing-v0", "dp_single_sku", names=["best_fixed_price_per_preference"], train_seeds=range(8)
    )
    env = make_vec("paretochain/Pricing-v0", 2, config="dp_single_sku", tensors=True)
    assert isinstance(factories["best_fixed_price_per_preference"](env), FixedPriceFrontPolicy)
    tiny = ["budget_env_steps=64", "num_envs=8", "device=cpu", f"runs_dir={tmp_path}", "imitation.env_steps=64"]
    misspelt = load_run_config("pricing_mo_ppo", [*tiny, "imitation.baseline=best_fixed_price_per_preferense"])
    with pytest.raises(ConfigError, match=r"unknown baseline.*best_fixed_price_per_preference"):
        train(misspelt, progress=False)
    foreign = load_run_config("lost_sales_mo_ppo", [*tiny, "imitation.baseline=best_fixed_price_per_preference"])
    with pytest.raises(ConfigError, match=r"unknown baseline\(s\) \['best_fixed_price_per_preference'\]"):
        train(foreign, progress=False)
    assert not any(tmp_path.iterdir())  # refused before anything is written


def test_the_packaged_pricing_run_imitates_the_front_of_rules_first_and_anchors_ppo_to_it() -> None:
    run = load_run_config("pricing_mo_ppo")
    assert run.imitation is not None and run.imitation.baseline == "best_price_rule_per_preference"
    assert run.imitation.env_steps > 0
    # the imitated rule is kept: without an anchor PPO drifted below it at default's margin-only corner
    assert run.hyperparameters.get("anchor_coef", 0.0) > 0.0


def test_mo_ppo_imitating_the_front_plays_the_teachers_price_at_each_corner() -> None:
    env = make_vec("paretochain/Pricing-v0", 64, config="dp_single_sku", tensors=True, check_actions=False)
    teacher = FixedPriceFrontPolicy(env, RATIOS, MEANS, SCALE)
    torch.manual_seed(0)
    agent = MOPPO(env, {"num_steps": 8, "hidden_sizes": [32, 32], "imitation_learning_rate": 3e-3}, device="cpu")
    agent.imitate(teacher, 64 * 8 * 40)
    probe = make_vec("paretochain/Pricing-v0", 16, config="dp_single_sku", tensors=True)
    for corner, price in zip(torch.eye(3), [1.0, 1.2, 0.8]):
        obs, _ = probe.reset(seed=7)
        for _ in range(probe.core.horizon):
            action = agent.act(obs, corner.expand(16, -1), probe.action_masks())
            obs = probe.core.step(action).obs
            assert [round(float(p), 4) for p in probe.core.state.price[:, 0, 0]] == [price] * 16


def test_a_tiny_packaged_pricing_run_imitates_the_front_before_training(tmp_path: Path) -> None:
    overrides = ["env.config=dp_single_sku", "budget_env_steps=128", "checkpoint_interval_steps=128"]
    overrides += ["eval_interval_steps=128", "eval_episodes=1", "eval_preferences=1", "num_envs=8", "device=cpu"]
    overrides += [f"runs_dir={tmp_path}", "imitation.env_steps=64", "hyperparameters.num_steps=8"]
    result = train(load_run_config("pricing_mo_ppo", overrides), progress=False)
    assert result.metrics["env_steps"] == 128  # imitation is not part of the training budget
    state = load_checkpoint(checkpoints(result.run_dir)[-1])["agent"]
    assert state["imitation"] == {"steps": 64, "teacher": "PriceRuleFrontPolicy"}
