"""MO-PPO's per-item actor (``encoder: items``): one network shared by every node and SKU of a Warehouse network."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from paretochain.agents.mo_ppo import MOPPO
from paretochain.agents.networks import ItemOrderActor
from paretochain.cli import main
from paretochain.envs import make_vec
from paretochain.envs.warehouse import WarehouseConfig
from paretochain.errors import ConfigError

ENV_ID = "paretochain/Warehouse-v0"


def small_network(num_envs: int = 4) -> object:
    """network_50sku cut to 4 SKUs: a DC and three warehouses, 16 order decisions."""
    config = WarehouseConfig.load("network_50sku", num_skus=4)
    return make_vec(ENV_ID, num_envs, config=config, tensors=True, check_actions=False)


def item_agent(num_envs: int = 4) -> MOPPO:
    return MOPPO(small_network(num_envs), {"encoder": "items", "num_steps": 4, "items": {"hidden_sizes": [16, 16]}})


def test_the_items_encoder_builds_one_ladder_choice_per_node_and_sku() -> None:
    agent = item_agent()
    assert isinstance(agent.actor, ItemOrderActor)
    core = agent.core
    obs = core.reset(seeds=[1, 2, 3, 4])
    action = agent.act(obs, torch.tensor([1.0, 0.0, 0.0]))
    assert action.shape == (4, core.num_nodes * core.num_skus) == (4, 16)
    assert int(action.min()) >= 0 and int(action.max()) < 6
    core.check_action(action)  # the environment accepts it


def test_an_upstream_node_reads_the_sum_of_its_warehouses_demand_and_each_item_its_own_stock() -> None:
    agent = item_agent()
    actor = agent.actor
    assert isinstance(actor, ItemOrderActor)
    core = agent.core
    seg = core.observation_layout.segments
    obs = torch.zeros(1, int(core.single_observation_space.shape[0]))
    history = torch.arange(3 * 4 * 7, dtype=torch.float32).reshape(3, 4, 7)
    obs[0, seg["demand_history"].start : seg["demand_history"].stop] = history.reshape(-1)
    obs[0, seg["on_hand"].start + 1 * 4 + 2] = 5.0  # node 1 (a warehouse), SKU 2
    with torch.no_grad():
        x = actor.item_inputs(obs, torch.tensor([[1.0, 0.0, 0.0]]))
    # own features, in layout order: on_hand (1), pipeline (6), demand_history (7), promotion (1)
    own = x[0, :, :, : actor.item_features]
    assert torch.equal(own[3, :, 7:14], history.sum(0))  # the DC (node 3) reads the three warehouses' sum
    assert torch.equal(own[1, :, 7:14], history[1])
    assert own[1, 2, 0] == 5.0 and float(own[:, :, 0].abs().sum()) == 5.0


def test_the_exported_item_policy_returns_the_agents_orders(tmp_path: Path) -> None:
    from paretochain.agents.export import export_policy, load_policy

    agent = item_agent()
    path = export_policy(agent, tmp_path, pt2=False)
    loaded = load_policy(path)
    obs = agent.core.reset(seeds=[5, 6, 7, 8])
    for pref in (None, torch.tensor([0.2, 0.5, 0.3])):
        assert torch.equal(loaded.act(obs, pref, None).to(torch.int64), agent.act(obs, pref, None))


def test_imitating_base_stock_raises_the_share_of_its_orders_the_item_actor_takes() -> None:
    from paretochain.agents.baselines.warehouse import BaseStockPolicy

    torch.manual_seed(0)
    agent = MOPPO(
        small_network(16),
        {"encoder": "items", "num_steps": 16, "learning_rate": 0.003, "update_epochs": 8, "num_minibatches": 4},
    )
    teacher = BaseStockPolicy(agent.env, agent.core.node_mean * 5)
    core = make_vec(ENV_ID, 8, config=agent.core.config, tensors=True, check_actions=False).core
    obs = core.reset(seeds=[100 + i for i in range(8)])
    states, labels = [], []
    for _ in range(30):
        action = teacher.act(obs)
        states.append(obs)
        labels.append(action)
        obs = core.step(action, check=False).obs
    obs_all, labels_all = torch.cat(states), torch.cat(labels)

    def agreement() -> float:
        return float((agent.act(obs_all, torch.tensor([1.0, 0.0, 0.0])) == labels_all).float().mean())

    before = agreement()
    agent.imitate(teacher, 16 * 16 * 6)
    assert agreement() > max(before, 0.8)


def test_the_items_encoder_refuses_an_environment_without_items() -> None:
    env = make_vec(ENV_ID, 2, config="lost_sales", tensors=True, check_actions=False)
    with pytest.raises(ConfigError, match="'items' needs a Warehouse environment"):
        MOPPO(env, {"encoder": "items"})


def test_an_unknown_items_option_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"MOPPOConfig\.items: unknown"):
        MOPPO(small_network(), {"encoder": "items", "items": {"width": 3}})


def test_the_command_line_refuses_the_items_encoder_on_lost_sales_in_one_line_writing_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    code = main(["train", "network_50sku_mo_ppo", "env.config=lost_sales", "--run-dir", str(run_dir), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: MOPPOConfig.encoder: 'items' needs a Warehouse environment") and "\n" not in err
    assert not run_dir.exists()
