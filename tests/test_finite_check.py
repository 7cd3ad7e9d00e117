"""The debugging check that observations and rewards are finite (``PARETOCHAIN_CHECK_FINITE``, on in the tests)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from paretochain.envs import make_vec
from paretochain.envs.checks import NonFiniteError, finite_check_requested
from paretochain.errors import ParetochainError


def test_the_test_suite_runs_every_env_with_the_finite_check_on() -> None:
    assert finite_check_requested()
    assert make_vec("paretochain/Warehouse-v0", 2).core.check_finite
    assert gym.make("paretochain/Pricing-v0").unwrapped.core.check_finite


def test_the_check_is_off_unless_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARETOCHAIN_CHECK_FINITE")
    assert not finite_check_requested()
    assert not make_vec("paretochain/Warehouse-v0", 1).core.check_finite
    monkeypatch.setenv("PARETOCHAIN_CHECK_FINITE", "0")
    assert not finite_check_requested()


def test_a_nan_reward_stops_the_batched_step_naming_the_objective_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_vec("paretochain/Warehouse-v0", 3, config="default")
    env.reset(seed=0)
    dynamics = env.core._step

    def fill_rate_turns_nan_in_env_1(action: torch.Tensor):  # type: ignore[no-untyped-def]
        reward, terminated, truncated, kpis = dynamics(action)
        reward = reward.clone()
        reward[1, 1] = math.nan
        return reward, terminated, truncated, kpis

    monkeypatch.setattr(env.core, "_step", fill_rate_turns_nan_in_env_1)
    with pytest.raises(NonFiniteError, match=r"WarehouseCore step: reward fill_rate of env 1 is nan"):
        env.step(np.zeros(env.action_space.shape, dtype=np.int64))


def test_an_infinite_state_stops_the_step_naming_the_observation_block() -> None:
    env = make_vec("paretochain/Warehouse-v0", 3, config="default")
    env.reset(seed=0)
    with torch.inference_mode():  # the state tensors are inference tensors
        env.core.state.inventory[2, 0, 0] = math.inf
    with pytest.raises(NonFiniteError, match=r"step: observation \w+ \[\d+\] of env 2 is (inf|nan)"):
        env.step(np.zeros(env.action_space.shape, dtype=np.int64))


def test_a_non_finite_observation_at_reset_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_vec("paretochain/Pricing-v0", 2)
    good = env.core.observe
    monkeypatch.setattr(env.core, "observe", lambda: torch.where(torch.ones_like(good()) > 0, math.nan, good()))
    with pytest.raises(NonFiniteError, match=r"PricingCore reset: observation .* of env 0 is nan"):
        env.reset(seed=[1, 2])


def test_the_single_env_s_step_is_checked_too() -> None:
    env = gym.make("paretochain/Pricing-v0")
    env.reset(seed=0)
    core = env.unwrapped.core
    action = np.full(env.action_space.shape, 4, dtype=np.int64)
    for _ in range(3):
        env.step(action)
    with torch.inference_mode():
        core.state.on_hand.fill_(math.nan)
    with pytest.raises(ParetochainError, match=r"PricingCore step: (observation|reward) .* is nan"):
        env.step(action)
