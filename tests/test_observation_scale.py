"""Observation scales declared by environments, and MO-PPO's use of them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paretochain.agents.mo_ppo import MOPPO, MOPPOConfig
from paretochain.agents.normalization import ObservationNormalizer
from paretochain.envs import make_vec

ENV_ID = "paretochain/Warehouse-v0"


@pytest.mark.parametrize("config", ["lost_sales", "default", "network_50sku", "backorder_box"])
def test_warehouse_declares_stock_and_demand_in_periods_of_mean_demand(config: str) -> None:
    core = make_vec(ENV_ID, 2, config=config).core
    scale = core.observation_scale()
    layout = core.observation_layout
    assert scale.shape == (layout.size,) and (scale > 0).all()
    blocks = layout.unflatten(scale)
    mean = core.node_mean.astype(np.float32)
    assert np.allclose(blocks["on_hand"], mean[..., None])
    assert np.allclose(blocks["demand_history"], mean[: core.num_warehouses, :, None])
    assert np.array_equal(blocks["calendar"], np.ones(3, dtype=np.float32))


def test_fixed_scale_is_not_moved_by_the_states_visited() -> None:
    norm = ObservationNormalizer(3, fixed_scale=torch.tensor([5.0, 5.0, 1.0]))
    norm.update(torch.full((64, 3), 400.0))  # an untrained policy's overstock
    assert torch.allclose(norm.normalize(torch.tensor([[10.0, 0.0, 0.5]])), torch.tensor([[2.0, 0.0, 0.5]]))
    running = ObservationNormalizer(3)
    running.update(torch.full((64, 3), 400.0))
    assert not torch.allclose(running.normalize(torch.tensor([[10.0, 0.0, 0.5]])), torch.tensor([[2.0, 0.0, 0.5]]))
    with pytest.raises(ValueError, match="positive"):
        ObservationNormalizer(2, fixed_scale=torch.tensor([1.0, 0.0]))


def test_mo_ppo_uses_the_declared_scale_by_default_and_running_statistics_on_request() -> None:
    env = make_vec(ENV_ID, 16, config="lost_sales")
    agent = MOPPO(env, MOPPOConfig(num_steps=8))
    agent.learn(256)
    _, std = agent.obs_norm.scale()
    assert torch.allclose(std, torch.as_tensor(env.core.observation_scale()))
    running = MOPPO(make_vec(ENV_ID, 16, config="lost_sales"), MOPPOConfig(num_steps=8, obs_scale="running"))
    running.learn(256)
    assert not torch.allclose(running.obs_norm.scale()[1], torch.as_tensor(env.core.observation_scale()))


def test_mo_dqn_uses_the_declared_scale_by_default_and_running_statistics_on_request() -> None:
    from paretochain.agents.mo_dqn import MODQNAgent, MODQNConfig

    env = make_vec(ENV_ID, 16, config="lost_sales")
    declared = torch.as_tensor(env.core.observation_scale())
    agent = MODQNAgent(env, MODQNConfig(learning_starts=64, batch_size=32))
    agent.learn(512)
    obs = torch.tensor([[10.0, 0.0, 5.0, 0.0, 0.0, 0.5, 0.0, 0.0]])
    assert torch.allclose(agent.obs_norm.normalize(obs), obs / declared, atol=1e-5)
    running = MODQNAgent(
        make_vec(ENV_ID, 16, config="lost_sales"), MODQNConfig(learning_starts=64, obs_scale="running")
    )
    running.learn(512)
    assert not torch.allclose(running.obs_norm.normalize(obs), obs / declared, atol=1e-3)
