"""Envelope multi-objective DQN: the target, masks, branching, resume, export and a learning check."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import paretochain  # noqa: F401  (registers the environments)
from paretochain.agents.logging import MemoryLogger
from paretochain.agents.mo_dqn import DeviceReplayBuffer, MODQNAgent
from paretochain.agents.networks import branch_index
from paretochain.agents.policy import Policy
from paretochain.envs import make_vec
from paretochain.errors import ConfigError, PolicyFileError
from paretochain.evaluate.rollout import rollout

WAREHOUSE = "paretochain/Warehouse-v0"
SMALL = {
    "hidden_sizes": [32, 32],
    "branch_hidden": 16,
    "learning_starts": 64,
    "batch_size": 16,
    "buffer_size": 4_000,
    "log_interval_steps": 10_000,
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small networks: one torch thread avoids oversubscription on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _agent(config: str = "lost_sales", num_envs: int = 4, **hyper: object) -> MODQNAgent:
    env = make_vec(WAREHOUSE, num_envs, config=config, tensors=True, check_actions=False)
    return MODQNAgent(env, {**SMALL, **hyper}, device="cpu")


class TableQ(nn.Module):
    """Q(s, a, w) = w_0 * T0 + w_1 * T1 (+ shift): exact known values at the simplex corners."""

    def __init__(self, shift: float) -> None:
        super().__init__()
        self.t0 = torch.tensor([[2.0, 0.0], [0.0, 1.0]])  # Q(., a, (1,0)) for a = 0, 1
        self.t1 = torch.tensor([[1.0, 1.0], [0.0, 3.0]])  # Q(., a, (0,1))
        self.shift = shift

    def forward(self, obs: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        q = w[:, 0, None, None] * self.t0 + w[:, 1, None, None] * self.t1 + self.shift
        return q.unsqueeze(1)  # (N, D=1, A=2, k=2)


def test_envelope_target_matches_a_hand_computed_case() -> None:
    agent = _agent(gamma=0.5)
    agent.q_net, agent.target_net = TableQ(0.0), TableQ(10.0)  # type: ignore[assignment]
    weights = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    reward = torch.tensor([[1.0, -1.0]])
    next_obs = torch.zeros((1, 6))
    both = torch.ones((1, 1, 2), dtype=torch.bool)
    y = agent.envelope_target(reward, next_obs, torch.zeros(1), both, weights)
    # w_0 = (1,0): scores over (w_l, a) = 2, 0 | 1, 0 -> (w_0, a0); target value (12, 10)
    # w_1 = (0,1): scores 0, 1 | 1, 3 -> (w_1, a1); target value (10, 13)
    torch.testing.assert_close(y[0, :, 0], torch.tensor([[7.0, 4.0], [6.0, 5.5]]))
    only_a0 = torch.tensor([[[True, False]]])
    y = agent.envelope_target(reward, next_obs, torch.zeros(1), only_a0, weights)
    # w_1 restricted to a0: scores 0 | 1 -> (w_1, a0); target value (11, 11)
    torch.testing.assert_close(y[0, 1, 0], torch.tensor([6.5, 4.5]))
    y = agent.envelope_target(reward, next_obs, torch.ones(1), both, weights)
    torch.testing.assert_close(y[0, :, 0], reward.expand(2, 2))


def test_branch_index_places_each_branch_and_points_padding_past_the_mask() -> None:
    index = branch_index([3, 1, 2])
    assert index.tolist() == [[0, 1, 2], [3, 6, 6], [4, 5, 6]]


def test_replay_buffer_wraps_around_and_keeps_the_newest_transitions() -> None:
    buf = DeviceReplayBuffer(capacity=5, obs_dim=1, action_dims=1, k=2, mask_width=2, device=torch.device("cpu"))
    for start in (0, 3):
        obs = torch.arange(start, start + 3, dtype=torch.float32).unsqueeze(1)
        buf.add(obs, torch.zeros(3, 1, dtype=torch.int64), torch.zeros(3, 2), obs + 1, torch.zeros(3), None)
    assert buf.size == 5 and buf.pos == 1
    assert sorted(buf.obs[:, 0].tolist()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    with pytest.raises(ConfigError, match="buffer_size"):
        buf.add(
            torch.zeros(6, 1),
            torch.zeros(6, 1, dtype=torch.int64),
            torch.zeros(6, 2),
            torch.zeros(6, 1),
            torch.zeros(6),
            None,
        )


@pytest.fixture(scope="module")
def multi_agent() -> MODQNAgent:
    """An untrained agent on the MultiDiscrete ``default`` Warehouse config (3 branches of 7 choices)."""
    return _agent("default", num_envs=2)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), density=st.floats(0.1, 0.9))
def test_greedy_action_respects_the_action_mask(multi_agent: MODQNAgent, seed: int, density: float) -> None:
    agent = multi_agent
    nvec = agent.nvec
    g = torch.Generator().manual_seed(seed)
    n = 16
    mask = torch.rand((n, sum(nvec)), generator=g) < density
    starts = torch.as_tensor(np.concatenate([[0], np.cumsum(nvec)[:-1]]))
    forced = torch.randint(0, nvec[0], (n, len(nvec)), generator=g) + starts
    mask.scatter_(1, forced, True)  # at least one allowed choice per branch
    obs = torch.rand((n, agent.obs_norm.rms.mean.shape[0]), generator=g) * 40
    pref = torch.distributions.Dirichlet(torch.ones(agent.k)).sample((n,))
    scripted = torch.jit.script(agent.export_module())
    for actions in (agent.act(obs, pref, mask), scripted(obs, pref, mask)):
        assert actions.shape == (n, len(nvec))
        assert bool(mask.gather(1, actions + starts).all())


def test_multidiscrete_uses_one_head_per_action_dimension_and_trains() -> None:
    agent = _agent("default", num_envs=4)
    assert len(agent.q_net.heads) == 3 and agent.nvec == [7, 7, 7]
    stats = agent.learn(256)
    assert agent.num_updates > 0 and np.isfinite(stats["loss/vector"])
    result = rollout(
        make_vec(WAREHOUSE, 2, config="default", tensors=True),
        agent,
        seeds=[0, 1],
        preference=np.array([1.0, 0.0, 0.0]),
    )
    assert result.returns.shape == (2, 3)


def test_torchscript_export_matches_eager_actions() -> None:
    agent = _agent()
    agent.learn(200)
    g = torch.Generator().manual_seed(0)
    obs = torch.rand((1000, agent.env.single_observation_space.shape[0]), generator=g) * 30
    pref = torch.distributions.Dirichlet(torch.ones(2)).sample((1000,))
    mask = torch.ones((1000, 21), dtype=torch.bool)
    scripted = torch.jit.script(agent.export_module())
    assert torch.equal(scripted(obs, pref, mask), agent.act(obs, pref, mask))
    assert isinstance(agent, Policy)


def test_exported_policy_files_reproduce_mo_dqn_actions_for_any_preference(tmp_path) -> None:
    from paretochain.agents.export import export_policy, load_policy

    agent = _agent("default")
    agent.learn(160)
    path = export_policy(agent, tmp_path)
    g = torch.Generator().manual_seed(1)
    obs = torch.rand((300, agent.env.single_observation_space.shape[0]), generator=g) * 30
    pref = torch.distributions.Dirichlet(torch.ones(3)).sample((300,))
    mask = torch.rand((300, 21), generator=g) < 0.7
    mask[:, [0, 7, 14]] = True
    eager = agent.act(obs, pref, mask)
    for file in (path, path.with_suffix(".pt2")):
        loaded = load_policy(file)
        assert loaded.metadata["agent"] == "MODQN" and len(loaded.metadata["preference"]["reward_scale"]) == 3
        assert torch.equal(loaded.act(obs, pref, mask), eager)


def test_resuming_from_a_state_dict_continues_exactly_like_uninterrupted_training() -> None:
    agent = _agent()
    agent.learn(160)
    state = copy.deepcopy(agent.state_dict())
    agent.learn(120)
    resumed = _agent()
    resumed.load_state_dict(state)
    resumed.learn(120)
    assert resumed.num_env_steps == agent.num_env_steps and resumed.num_updates == agent.num_updates
    for p, q in zip(agent.q_net.parameters(), resumed.q_net.parameters()):
        assert torch.equal(p, q)
    assert torch.equal(agent._obs, resumed._obs)
    assert torch.equal(agent.buffer.obs, resumed.buffer.obs)


def test_loading_a_foreign_state_fails_with_a_clear_error() -> None:
    agent = _agent()
    with pytest.raises(PolicyFileError, match="MO-DQN"):
        agent.load_state_dict({"format": "paretochain.sb3/1"})
    other = _agent("default")
    with pytest.raises(PolicyFileError, match="networks"):
        agent.load_state_dict(other.state_dict())


def test_mo_dqn_refuses_continuous_actions_and_a_device_mismatch() -> None:
    with pytest.raises(ConfigError, match="Discrete"):
        MODQNAgent(make_vec(WAREHOUSE, 2, config="backorder_box", tensors=True), SMALL, device="cpu")


def test_learn_reports_per_objective_returns_and_stops_on_callback() -> None:
    agent = _agent(log_interval_steps=100)
    logger = MemoryLogger()
    calls: list[dict[str, float]] = []
    agent.learn(10_000, logger=logger, callback=lambda s: calls.append(s) or len(calls) < 5)
    assert len(calls) == 5 and agent.num_env_steps < 1_000
    assert "charts/SPS" in logger.history and "losses/vector" in logger.history
    agent.learn(400, logger=logger)
    assert "charts/episode_return/total_cost" in logger.history and "charts/episode_return/fill_rate" in logger.history


@pytest.mark.slow
def test_mo_dqn_with_a_cost_only_preference_beats_random_ordering_on_lost_sales() -> None:
    env = make_vec(WAREHOUSE, 16, config="lost_sales", tensors=True, check_actions=False)
    agent = MODQNAgent(
        env,
        {
            "learning_starts": 1_000,
            "exploration_steps": 5_000,
            "homotopy_steps": 20_000,
            "log_interval_steps": 100_000,
            "seed": 1,
        },
        device="cpu",
    )
    agent.learn(20_000)

    class RandomOrders:
        def act(self, obs, preference=None, action_mask=None):  # type: ignore[no-untyped-def]
            return torch.randint(0, 21, (obs.shape[0],), generator=torch.Generator().manual_seed(0))

    seeds = list(range(500, 532))
    evaluation = make_vec(WAREHOUSE, len(seeds), config="lost_sales", tensors=True)
    cost_only = rollout(evaluation, agent, seeds, preference=np.array([1.0, 0.0])).mean_return()[0]
    random_cost = rollout(evaluation, RandomOrders(), seeds).mean_return()[0]
    # returns are minus costs: the learned policy must cost well under half of random ordering
    print(f"cost-only MO-DQN return {cost_only:.0f}, random ordering {random_cost:.0f}")
    assert cost_only > 0.5 * random_cost, (cost_only, random_cost)


@pytest.mark.parametrize("env_id", ["paretochain/Dispatch-v0", "paretochain/Pricing-v0"])
def test_mo_dqn_explores_and_acts_only_within_the_masks_of_masked_families(env_id: str, checked_masked_env) -> None:
    env = checked_masked_env(env_id, 4)  # raises ActionError on any masked action
    core = env.core
    agent = MODQNAgent(env, {**SMALL, "exploration_steps": 200, "epsilon_final": 0.3}, device="cpu")
    stats = agent.learn(400)
    assert agent.num_updates > 0 and np.isfinite(stats["loss/vector"])
    with torch.inference_mode():
        obs = core.reset(seeds=[1, 2, 3, 4])
        for _ in range(10):
            mask = core.action_masks()
            out = core.step(agent.act(obs, None, mask))
            if bool((out.terminated | out.truncated).any()):
                break
            obs = out.obs


@pytest.mark.parametrize(("scalar_loss", "expected"), [("squared", -1.0), ("absolute", 0.0)])
def test_scalar_loss_squared_learns_the_mean_target_and_absolute_its_median(scalar_loss: str, expected: float) -> None:
    # a one-step problem whose cost is 10 one time in ten: mean reward -1, median 0
    agent = _agent(
        preference=[1.0, 0.0],
        scale_rewards=False,
        scalar_loss=scalar_loss,
        homotopy_steps=1,
        batch_size=256,
        learning_rate=3e-3,
        seed=3,
    )
    agent.learn(64)  # the homotopy is at lambda = 1 from here: the scalar loss alone
    buf = agent.buffer
    obs = agent._obs[:1].expand(buf.capacity, -1)
    reward = torch.zeros(buf.capacity, 2)
    reward[::10, 0] = -10.0
    buf.obs[:], buf.next_obs[:], buf.reward[:] = obs, obs, reward
    buf.action.zero_()
    buf.terminated.fill_(1.0)
    buf.size = buf.capacity
    for _ in range(600):
        agent._update()
    with torch.no_grad():
        q = agent.q_net(agent._normalize(obs[:1]), torch.tensor([[1.0, 0.0]]))[0, 0, 0, 0]
    assert abs(float(q) - expected) < 0.25, float(q)


def test_annealed_step_size_falls_linearly_over_the_planned_steps_to_a_floor() -> None:
    agent = _agent(anneal_lr=True, total_env_steps=400, learning_rate=1e-3)
    agent.learn(200)
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 - 200 / 400))
    agent.learn(400)
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(1e-6)
    constant = _agent(learning_rate=1e-3)
    constant.learn(200)
    assert constant.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
