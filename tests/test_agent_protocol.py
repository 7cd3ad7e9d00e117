"""Every trainable agent implements the one Agent protocol, and a run talks to nothing else."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

from paretochain.agents.protocol import Agent, ImitatingAgent
from paretochain.envs.registration import make_vec
from paretochain.train import run as run_module
from paretochain.train.agents import _registry, build_agent
from paretochain.train.config import load_run_config
from paretochain.train.run import env_config_of, train

# one packaged run config per registered agent, with small batches so that each trains in seconds
RUN_OF_AGENT = {
    "mo_ppo": ("warehouse_mo_ppo", ["hyperparameters.num_steps=8"]),
    "mo_dqn": ("warehouse_mo_dqn", ["hyperparameters.learning_starts=16", "hyperparameters.batch_size=16"]),
    "dcl": (
        "lost_sales_dcl",
        # the packaged teacher (best_lost_sales_heuristic) is chosen on 4,096 episodes; capped base-stock is tuned in seconds
        [
            "hyperparameters.scenarios=2",
            "hyperparameters.candidate_window=1",
            "imitation.env_steps=64",
            "imitation.baseline=capped_base_stock",
        ],
    ),
    "sb3_ppo": ("warehouse_sb3_ppo", ["hyperparameters.n_steps=8", "hyperparameters.batch_size=16"]),
    "sb3_dqn": (
        "lost_sales_sb3_dqn",
        ["hyperparameters.learning_starts=16", "hyperparameters.batch_size=16", "hyperparameters.train_freq=1"],
    ),
    "sb3_maskable_ppo": ("dispatch_sb3_maskable_ppo", ["hyperparameters.n_steps=8", "hyperparameters.batch_size=16"]),
}
SMALL = ["device=cpu", "num_envs=4", "budget_env_steps=64", "eval_episodes=1", "eval_preferences=1"]


def _run(agent_name: str, extra: list[str] | None = None):
    name, overrides = RUN_OF_AGENT[agent_name]
    return load_run_config(name, [*SMALL, *overrides, *(extra or [])])


def _agent(agent_name: str) -> Agent:
    run = _run(agent_name)
    env = make_vec(run.env.id, run.num_envs, device="cpu", config=env_config_of(run), tensors=True, check_actions=False)
    return build_agent(run, env, "cpu")


def test_every_registered_agent_has_a_small_run_here() -> None:
    assert set(RUN_OF_AGENT) == set(_registry())


@pytest.mark.parametrize("agent_name", sorted(RUN_OF_AGENT))
def test_each_agent_implements_the_agent_protocol(agent_name: str) -> None:
    agent = _agent(agent_name)
    assert isinstance(agent, Agent)
    k = len(agent.objective_names)
    assert agent.num_env_steps == 0
    size = agent.update_env_steps
    assert size > 0 and size % agent.env.num_envs == 0

    stats = agent.learn(1)
    assert isinstance(stats, dict) and all(isinstance(v, float) for v in stats.values())
    assert agent.num_env_steps == size  # one whole unit of training

    fixed = agent.fixed_preference
    if agent_name.startswith("sb3"):  # SB3 agents always train at one preference (the run's weights)
        assert fixed is not None
    if fixed is not None:
        assert fixed.shape == (k,) and fixed.dtype == np.float64 and fixed.sum() == pytest.approx(1.0)

    state = agent.state_dict()
    run_module._require_plain(state, "state")  # tensors and plain data only: a checkpoint can hold it
    again = _agent(agent_name)
    again.load_state_dict(state)
    assert again.num_env_steps == agent.num_env_steps

    module = agent.export_module()
    assert callable(module.forward)
    assert isinstance(agent.export_metadata()["agent_config"], dict)


def test_only_mo_ppo_and_dcl_can_imitate_and_the_run_config_says_so() -> None:
    assert isinstance(_agent("mo_ppo"), ImitatingAgent)
    assert isinstance(_agent("dcl"), ImitatingAgent)
    assert not isinstance(_agent("mo_dqn"), ImitatingAgent)


def test_a_preference_given_to_a_run_is_each_agents_fixed_preference() -> None:
    for agent_name in ("mo_ppo", "mo_dqn", "sb3_ppo"):
        run = _run(agent_name, ["preference={profit: 3.0, fill_rate: 1.0}"])
        env = make_vec(run.env.id, 2, device="cpu", config=env_config_of(run), tensors=True, check_actions=False)
        fixed = build_agent(run, env, "cpu").fixed_preference
        assert fixed is not None and fixed.tolist() == pytest.approx([0.75, 0.25, 0.0]), agent_name


def test_the_run_module_names_no_agent_and_tests_no_agent_type() -> None:
    source = Path(inspect.getfile(run_module)).read_text()
    tree = ast.parse(source)
    names = set(_registry()) | {"sb3", "mo_", "MOPPO", "MODQN", "SB3Agent"}
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            assert not any(name in node.value for name in names), f"train/run.py names an agent: {node.value!r}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            assert not any(m.startswith(("paretochain.agents.mo_", "paretochain.agents.sb3")) for m in modules)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in {"isinstance", "getattr", "hasattr"}:
            args = ast.unparse(node)
            assert "agent" not in args, f"train/run.py inspects the agent beyond the protocol: {args}"


@pytest.mark.parametrize("agent_name", sorted(RUN_OF_AGENT))
def test_one_short_run_per_agent_goes_through_the_same_training_code(agent_name: str, tmp_path: Path) -> None:
    run = _run(agent_name, [f"runs_dir={tmp_path}"])
    result = train(run, progress=False)
    assert not result.interrupted and result.policy_path is not None and result.policy_path.is_file()
    assert result.metrics["env_steps"] >= run.budget_env_steps
    assert result.metrics["final_evaluation"]["step"] == result.metrics["env_steps"]


@pytest.mark.parametrize("agent_name", sorted(RUN_OF_AGENT))
def test_every_agent_exports_the_one_policy_module_with_its_input_checks(agent_name: str, tmp_path: Path) -> None:
    import torch

    from paretochain.agents.export import PolicyModule, export_policy, load_policy

    agent = _agent(agent_name)
    assert type(agent.export_module()) is PolicyModule
    policy = load_policy(export_policy(agent, tmp_path, pt2=False))
    obs = agent.env.core.observe()[:2].cpu()
    k = len(agent.objective_names)
    with pytest.raises(Exception, match="policy input: obs must be float32"):  # the TorchScript file's own check
        policy.module(
            obs.double(),
            torch.full((2, k), 1.0 / k),
            torch.ones(2, policy.metadata["action"]["mask_dim"], dtype=torch.bool),
        )


@pytest.mark.parametrize("agent_name", ["mo_ppo", "mo_dqn"])
def test_an_agent_without_observation_normalisation_exports_the_policy_it_acts_with(agent_name: str) -> None:
    import torch

    from paretochain.agents.mo_dqn import MODQNAgent
    from paretochain.agents.mo_ppo import MOPPO
    from paretochain.agents.networks import mask_dim

    env = make_vec("paretochain/Warehouse-v0", 4, device="cpu", config="lost_sales", tensors=True, check_actions=False)
    agent: Agent = (
        MOPPO(env, {"num_steps": 4, "norm_obs": False})
        if agent_name == "mo_ppo"
        else MODQNAgent(env, {"learning_starts": 8, "batch_size": 8, "norm_obs": False})
    )
    module = torch.jit.script(agent.export_module())
    g = torch.Generator().manual_seed(0)
    obs = torch.rand((256, env.core.single_observation_space.shape[0]), generator=g) * 60  # well beyond +-10
    pref = torch.distributions.Dirichlet(torch.ones(len(agent.objective_names))).sample((256,))
    mask = torch.ones((256, mask_dim(env.core.single_action_space)), dtype=torch.bool)
    assert torch.equal(agent.act(obs, pref, None), module(obs, pref, mask))
