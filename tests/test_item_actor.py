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


@pytest.mark.parametrize("head", ["logits", "order_up_to"])
def test_the_exported_item_policy_returns_the_agents_orders(head: str, tmp_path: Path) -> None:
    from paretochain.agents.export import export_policy, load_policy

    agent = item_agent() if head == "logits" else item_agent_order_up_to()
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


def item_agent_order_up_to(num_envs: int = 4, **overrides: object) -> MOPPO:
    config = {
        "encoder": "items",
        "num_steps": 4,
        "items": {"hidden_sizes": [16, 16], "head": "order_up_to"},
        **overrides,
    }
    return MOPPO(small_network(num_envs), config)


@pytest.mark.parametrize("unmet_demand", ["lost", "backorder"])
def test_the_inventory_position_entries_sum_to_stock_plus_pipeline_minus_backlog(unmet_demand: str) -> None:
    from paretochain.agents.baselines.warehouse import BaseStockPolicy

    config = WarehouseConfig.load("network_50sku", num_skus=4, unmet_demand=unmet_demand)
    core = make_vec(ENV_ID, 3, config=config, tensors=True, check_actions=False).core
    policy = BaseStockPolicy(core, core.node_mean * 4)
    obs = core.reset(seeds=[1, 2, 3])
    index, sign = core.inventory_position_entries()
    for _ in range(12):
        obs = core.step(policy.act(obs), check=False).obs
    state = core.state
    expected = state.inventory.sum(-1) + state.pipeline.sum(-1)
    expected[:, : core.num_warehouses] -= state.backlog
    position = (obs[:, torch.as_tensor(index)] * torch.as_tensor(sign)).sum(-1)
    assert float(expected.abs().sum()) > 0
    assert torch.allclose(position, expected)
    if unmet_demand == "backorder":
        assert float(state.backlog.sum()) > 0  # the backlog entries were exercised


def base_stock_play(agent: MOPPO, levels: object, episodes: int, periods: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Observations and base-stock's actions on held-out episodes that base-stock plays."""
    from paretochain.agents.baselines.warehouse import BaseStockPolicy

    teacher = BaseStockPolicy(agent.env, levels)
    core = make_vec(ENV_ID, episodes, config=agent.core.config, tensors=True, check_actions=False).core
    obs = core.reset(seeds=[100 + i for i in range(episodes)])
    states, labels = [], []
    for _ in range(periods):
        action = teacher.act(obs)
        states.append(obs)
        labels.append(action)
        obs = core.step(action, check=False).obs
    return torch.cat(states), torch.cat(labels)


def test_the_order_up_to_head_set_to_base_stock_levels_takes_every_base_stock_decision() -> None:
    agent = item_agent_order_up_to()
    actor = agent.actor
    assert isinstance(actor, ItemOrderActor) and actor.order_up_to
    core = agent.core
    levels = torch.as_tensor(core.node_mean * 5.5).round()
    obs, labels = base_stock_play(agent, levels.numpy(), 8, 40)
    with torch.no_grad():  # the network's output is zero: the target is target_init, set to the levels
        actor.logits.weight.zero_()
        actor.logits.bias.zero_()
        actor.target_init.copy_(levels / torch.as_tensor(core.node_mean) - 1e-3)  # ties go to the smaller order
    taken = agent.act(obs, torch.tensor([1.0, 0.0, 0.0]))
    assert float(labels.float().std()) > 0  # base-stock's decisions vary
    assert torch.equal(taken, labels)


def test_imitating_base_stock_with_the_order_up_to_head_agrees_on_nearly_every_decision() -> None:
    from paretochain.agents.baselines.warehouse import BaseStockPolicy

    torch.manual_seed(0)
    agent = MOPPO(
        small_network(16),
        {
            "encoder": "items",
            "items": {"hidden_sizes": [32, 32], "head": "order_up_to"},
            "num_steps": 40,
            "update_epochs": 8,
            "num_minibatches": 4,
            "learning_rate": 0.003,
        },
    )
    levels = agent.core.node_mean * 5
    obs, labels = base_stock_play(agent, levels, 8, 40)
    agent.imitate(BaseStockPolicy(agent.env, levels), 16 * 40 * 4)
    taken = agent.act(obs, torch.tensor([1.0, 0.0, 0.0]))
    assert float((taken == labels).float().mean()) > 0.97


def test_an_unknown_items_head_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"MOPPOConfig\.items\.head: 'quantile' is not one of"):
        MOPPO(small_network(), {"encoder": "items", "items": {"head": "quantile"}})


def test_the_order_up_to_head_refuses_running_observation_statistics() -> None:
    with pytest.raises(ConfigError, match="obs_scale is 'running'"):
        item_agent_order_up_to(obs_scale="running")


def test_the_order_up_to_head_reads_raw_observations_without_normalisation() -> None:
    agent = item_agent_order_up_to(norm_obs=False)
    actor = agent.actor
    assert isinstance(actor, ItemOrderActor)
    index = actor.position_index[0, 0]
    mean = float(agent.core.node_mean[0, 0])
    # raw units: every on-hand and pipeline entry of a warehouse counts 1 / its mean demand periods
    assert torch.allclose(actor.position_weight[0, 0], torch.full((index.numel(),), 1.0 / mean))


def test_the_packaged_network_run_builds_the_order_up_to_head_with_fixed_scales() -> None:
    from paretochain.train.agents import build_agent
    from paretochain.train.config import load_run_config

    run = load_run_config("network_50sku_mo_ppo", ["num_envs=2"])
    env = make_vec(ENV_ID, 2, config=run.env.config, tensors=True, check_actions=False)
    agent = build_agent(run, env, "cpu")
    assert isinstance(agent, MOPPO) and isinstance(agent.actor, ItemOrderActor)
    assert agent.actor.order_up_to and agent.obs_norm.fixed
    # warehouses (lead time 1) start at 2 periods of cover, the DC (4 periods + half of a jitter of 2) at 6
    assert torch.allclose(agent.actor.target_init[:3], torch.full((3, 50), 2.0))
    assert torch.allclose(agent.actor.target_init[3], torch.full((50,), 6.0))


def test_a_repeated_ladder_entry_is_never_chosen_even_at_a_huge_sharpness() -> None:
    # one warehouse, two SKUs; SKU 0's ladder orders 0, 0, 1 periods (a small mean rounds two entries to 0)
    order_up_to = {
        "position_index": torch.tensor([[[0], [1]]]),
        "position_weight": torch.ones(1, 2, 1),
        "ladder_periods": torch.tensor([[[0.0, 0.0, 1.0], [0.0, 1.0, 2.0]]]),
        "target_init": torch.zeros(1, 2),
    }
    actor = ItemOrderActor({"on_hand": (0, 2, (1, 2, 1))}, 1, 1, 2, 3, 1, (4,), 2, order_up_to=order_up_to)
    with torch.no_grad():
        actor.logits.weight.zero_()
        actor.logits.bias.copy_(torch.tensor([-0.3, 50.0]))  # target -0.3 periods, log sharpness 50
    obs = torch.tensor([[5.0, 0.0], [0.0, 5.0]])
    logits = actor.masked_logits(obs, torch.ones(2, 1), torch.ones(2, 6, dtype=torch.bool))
    chosen = logits.argmax(-1)
    assert bool(torch.isfinite(logits).all())
    assert chosen[0, 0] == 0 and chosen[1, 0] == 0  # SKU 0: the first of the two zero orders, never the repeat
    assert logits[0, 0, 1] == logits.new_tensor(-1e8)  # the repeat is masked
