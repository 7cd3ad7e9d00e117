"""The Stable-Baselines3 path: scalarisation, the VecEnv adapter over the batched core, SB3 agents."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
from stable_baselines3.common.env_checker import check_env

import paretochain  # noqa: F401  (registers the environments)
from paretochain.agents.logging import MemoryLogger
from paretochain.agents.policy import Policy
from paretochain.agents.sb3 import CoreVecEnv, SB3Agent, ScalarizedEnv, make_default_sb3_vec_env, make_scalarization
from paretochain.envs import make_vec
from paretochain.errors import ConfigError, PolicyFileError
from paretochain.evaluate.rollout import rollout

WAREHOUSE = "paretochain/Warehouse-v0"
LOST_SALES_OBJECTIVES = ["total_cost", "fill_rate"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small networks: one torch thread avoids oversubscription on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------- scalarisation
def test_linear_scalarisation_matches_hand_computed_values() -> None:
    s = make_scalarization(LOST_SALES_OBJECTIVES, {"total_cost": 1.0, "fill_rate": 3.0})
    np.testing.assert_allclose(s.weights, [0.25, 0.75])
    reward = np.array([[-4.0, 2.0], [10.0, 0.0]])
    np.testing.assert_allclose(s(reward), [0.25 * -4 + 0.75 * 2, 2.5])
    np.testing.assert_allclose(s.torch(torch.tensor(reward)).numpy(), [0.5, 2.5])


def test_chebyshev_scalarisation_matches_hand_computed_values() -> None:
    s = make_scalarization(
        LOST_SALES_OBJECTIVES, [0.5, 0.5], kind="chebyshev", utopia={"total_cost": 0.0, "fill_rate": 1.0}
    )
    reward = np.array([-4.0, 0.5])
    # weighted gaps: 0.5 * |0 - (-4)| = 2, 0.5 * |1 - 0.5| = 0.25 -> -max = -2
    assert s(reward) == pytest.approx(-2.0)
    augmented = make_scalarization(LOST_SALES_OBJECTIVES, [0.5, 0.5], kind="chebyshev", utopia=[0.0, 1.0], rho=0.1)
    assert augmented(reward) == pytest.approx(-2.0 - 0.1 * 2.25)
    assert float(augmented.torch(torch.tensor(reward))) == pytest.approx(-2.225)


@settings(max_examples=40, deadline=None)
@given(
    weights=st.lists(st.floats(0.01, 10.0), min_size=3, max_size=3),
    reward=st.lists(st.floats(-100.0, 0.0), min_size=3, max_size=3),
    improvement=st.floats(0.0, 50.0),
    which=st.integers(0, 2),
)
def test_chebyshev_value_never_drops_when_one_objective_improves_towards_utopia(
    weights, reward, improvement, which
) -> None:
    names = ["a", "b", "c"]
    utopia = [0.0, 0.0, 0.0]
    s = make_scalarization(names, weights, kind="chebyshev", utopia=utopia, rho=0.01)
    r = np.array(reward)
    better = r.copy()
    better[which] = min(0.0, better[which] + improvement)
    assert s(better) >= s(r) - 1e-9
    assert s(np.zeros(3)) == 0.0 and s(r) <= 0.0
    assert s(r) == pytest.approx(float(s.torch(torch.tensor(r))))


def test_scalarization_rejects_unknown_objectives_and_missing_utopia() -> None:
    with pytest.raises(ConfigError, match="unknown objective"):
        make_scalarization(LOST_SALES_OBJECTIVES, {"profit": 1.0})
    with pytest.raises(ConfigError, match="utopia"):
        make_scalarization(LOST_SALES_OBJECTIVES, [1, 1], kind="chebyshev")


def test_scalarised_single_env_passes_sb3_check_env_and_keeps_the_vector_in_info() -> None:
    inner = gym.make(WAREHOUSE, config="lost_sales", horizon=6)
    s = make_scalarization(inner.unwrapped.core.objectives.names, {"total_cost": 1.0})
    env = ScalarizedEnv(inner, s)
    check_env(env, warn=False)
    env.reset(seed=3)
    total = np.zeros(2)
    for _ in range(6):
        _, reward, terminated, truncated, info = env.step(5)
        assert reward == pytest.approx(float(info["vector_reward"][0]))
        total += info["vector_reward"]
    assert truncated and not terminated
    np.testing.assert_allclose(info["episode_vector_return"], total, rtol=1e-6)


# ---------------------------------------------------------------------------------- VecEnv adapter
def _lost_sales_vec(num_envs: int, horizon: int = 5) -> tuple[CoreVecEnv, object]:
    batched = make_vec(WAREHOUSE, num_envs, config="lost_sales", tensors=True, check_actions=False, horizon=horizon)
    s = make_scalarization(batched.core.objectives.names, {"total_cost": 1.0, "fill_rate": 1.0})
    return CoreVecEnv(batched, s), s


def test_vec_env_reset_and_step_have_sb3_shapes_and_terminal_observation_on_truncation() -> None:
    n, horizon = 4, 5
    venv, s = _lost_sales_vec(n, horizon)
    venv.seed(100)
    obs = venv.reset()
    assert obs.shape == (n, *venv.observation_space.shape) and obs.dtype == np.float32
    singles = [gym.make(WAREHOUSE, config="lost_sales", horizon=horizon) for _ in range(n)]
    for i, e in enumerate(singles):
        np.testing.assert_array_equal(e.reset(seed=100 + i)[0], obs[i])
    actions = np.array([0, 3, 6, 9])
    for t in range(horizon):
        obs, rewards, dones, infos = venv.step(actions)
        assert rewards.shape == (n,) and dones.shape == (n,) and len(infos) == n
        single = [e.step(int(a)) for e, a in zip(singles, actions)]
        vector = np.stack([info["vector_reward"] for info in infos])
        np.testing.assert_allclose(vector, np.stack([x[1] for x in single]), rtol=1e-6)
        np.testing.assert_allclose(rewards, s(vector), rtol=1e-5)
        if t < horizon - 1:
            assert not dones.any() and "terminal_observation" not in infos[0]
    assert dones.all()
    for i, info in enumerate(infos):
        np.testing.assert_array_equal(info["terminal_observation"], single[i][0])
        assert info["TimeLimit.truncated"] is True
        assert info["episode"]["l"] == horizon
        assert info["episode_vector_return"].shape == (2,)
    # the returned observation starts the next episode: nothing in transit, period 0
    layout = venv.core.observation_layout.segments
    assert np.all(obs[:, layout["pipeline"].start : layout["pipeline"].stop] == 0)
    assert np.all(obs[:, layout["calendar"].stop - 1] == 0)


def test_vec_env_episode_return_is_the_sum_of_its_scalarised_rewards() -> None:
    venv, s = _lost_sales_vec(3, horizon=4)
    venv.seed(7)
    venv.reset()
    total = np.zeros(3)
    for _ in range(4):
        _, rewards, _, infos = venv.step(np.array([5, 5, 5]))
        total += rewards
    for i, info in enumerate(infos):
        assert info["episode"]["r"] == pytest.approx(total[i], rel=1e-5)
        assert float(s(info["episode_vector_return"])) == pytest.approx(total[i], rel=1e-5)


def test_vec_env_exposes_action_masks_the_way_maskable_ppo_reads_them() -> None:
    batched = make_vec(WAREHOUSE, 3, config="default", tensors=True, check_actions=False)
    venv = CoreVecEnv(batched, make_scalarization(batched.core.objectives.names))
    venv.reset()
    assert is_masking_supported(venv)
    masks = get_action_masks(venv)
    assert masks.shape == (3, int(np.sum(venv.action_space.nvec))) and masks.dtype == bool
    assert len(venv.env_method("action_masks", indices=[0, 2])) == 2


def test_default_sb3_vec_env_matches_the_adapter_on_the_same_seeds() -> None:
    venv, s = _lost_sales_vec(2, horizon=3)
    venv.seed(11)
    obs_a = venv.reset()
    plain = make_default_sb3_vec_env(WAREHOUSE, 2, s, config="lost_sales", seed=11, horizon=3)
    obs_b = plain.reset()
    np.testing.assert_array_equal(obs_a, obs_b)
    for _ in range(3):
        _, ra, _, _ = venv.step(np.array([4, 8]))
        _, rb, _, _ = plain.step(np.array([4, 8]))
        np.testing.assert_allclose(ra, rb, rtol=1e-6)


# ---------------------------------------------------------------------------------- SB3 agents
TINY = {
    "n_steps": 16,
    "batch_size": 32,
    "n_epochs": 1,
    "learning_starts": 64,
    "buffer_size": 2_000,
    "log_interval_steps": 64,
}


def _random_obs(venv_space_dim: int, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, venv_space_dim), generator=g) * 30


@pytest.mark.parametrize(
    ("algo", "env_id", "config"),
    [
        ("ppo", WAREHOUSE, "lost_sales"),
        ("dqn", WAREHOUSE, "lost_sales"),
        ("maskable_ppo", WAREHOUSE, "default"),
        ("ppo", WAREHOUSE, "backorder_box"),
        ("ppo", "paretochain/Pricing-v0", None),
    ],
)
def test_sb3_agent_trains_briefly_and_acts_through_the_policy_contract(
    algo: str, env_id: str, config: str | None
) -> None:
    env = make_vec(env_id, 4, config=config, tensors=True, check_actions=False)
    agent = SB3Agent(env, {"algo": algo, **TINY}, device="cpu")
    logger = MemoryLogger()
    stats = agent.learn(256, logger=logger)
    assert agent.num_env_steps >= 256 and stats["step"] >= 256
    assert "charts/SPS" in logger.history
    assert isinstance(agent, Policy)
    result = rollout(make_vec(env_id, 3, config=config, tensors=True), agent, seeds=[1, 2, 3])
    assert result.returns.shape == (3, len(env.core.objectives))
    obs_dim = env.single_observation_space.shape[0]
    obs = _random_obs(obs_dim, 64)
    mask = torch.ones((64, agent._mask_width()), dtype=torch.bool)
    eager = agent.act(obs, None, mask)
    scripted = torch.jit.script(agent.export_module())
    out = scripted(obs, torch.zeros(64, len(env.core.objectives)), mask)
    if eager.dtype.is_floating_point:
        torch.testing.assert_close(out, eager, atol=1e-5, rtol=0)
        space = env.single_action_space
        assert bool((out >= torch.as_tensor(space.low)).all() and (out <= torch.as_tensor(space.high)).all())
    else:
        assert torch.equal(out, eager)


@pytest.mark.parametrize(("algo", "config"), [("maskable_ppo", "default"), ("ppo", "backorder_box")])
def test_exported_policy_files_reproduce_the_sb3_agents_actions(tmp_path, algo: str, config: str) -> None:
    from paretochain.agents.export import export_policy, load_policy

    env = make_vec(WAREHOUSE, 4, config=config, tensors=True, check_actions=False)
    agent = SB3Agent(env, {"algo": algo, **TINY}, device="cpu")
    agent.learn(64)
    path = export_policy(agent, tmp_path)
    obs = _random_obs(env.single_observation_space.shape[0], 200, seed=3)
    eager = agent.act(obs)
    for file in (path, path.with_suffix(".pt2")):
        loaded = load_policy(file)
        assert loaded.metadata["agent"] == f"SB3 {algo}"
        if eager.dtype.is_floating_point:
            torch.testing.assert_close(loaded.act(obs), eager, atol=1e-5, rtol=0)
        else:
            assert torch.equal(loaded.act(obs), eager)


def test_sb3_agent_logs_vector_returns_per_objective() -> None:
    env = make_vec(WAREHOUSE, 4, config="lost_sales", tensors=True, check_actions=False, horizon=8)
    agent = SB3Agent(env, {"algo": "ppo", **TINY, "weights": {"total_cost": 1.0}}, device="cpu")
    logger = MemoryLogger()
    stats = agent.learn(128, logger=logger)
    assert "charts/episode_return/total_cost" in logger.history and "charts/episode_return/fill_rate" in logger.history
    assert stats["episode_return/total_cost"] < 0 and 0 <= stats["episode_return/fill_rate"] <= 1
    assert stats["scalarised_return"] == pytest.approx(stats["episode_return/total_cost"])
    assert any(tag.startswith("train/") for tag in logger.history)  # SB3's own tag names


def test_maskable_ppo_never_acts_outside_the_mask() -> None:
    env = make_vec(WAREHOUSE, 4, config="default", tensors=True, check_actions=False)
    agent = SB3Agent(env, {"algo": "maskable_ppo", **TINY}, device="cpu")
    agent.learn(64)
    nvec = env.single_action_space.nvec
    obs = _random_obs(env.single_observation_space.shape[0], 32, seed=1)
    g = torch.Generator().manual_seed(2)
    mask = torch.rand((32, int(nvec.sum())), generator=g) < 0.4
    starts = np.concatenate([[0], np.cumsum(nvec)[:-1]])
    for s in starts:
        mask[:, s] = mask[:, s] | ~mask[:, s : s + nvec[0]].any(1)  # at least one allowed per branch
    for actions in (agent.act(obs, None, mask), torch.jit.script(agent.export_module())(obs, torch.zeros(32, 3), mask)):
        allowed = mask.gather(1, actions + torch.as_tensor(starts))
        assert bool(allowed.all())


def test_sb3_state_dict_round_trip_gives_identical_actions_and_resumes_training() -> None:
    env = make_vec(WAREHOUSE, 4, config="lost_sales", tensors=True, check_actions=False)
    agent = SB3Agent(env, {"algo": "dqn", **TINY}, device="cpu")
    agent.learn(200)
    state = agent.state_dict()
    other = SB3Agent(
        make_vec(WAREHOUSE, 4, config="lost_sales", tensors=True, check_actions=False),
        {"algo": "dqn", **TINY},
        device="cpu",
    )
    other.load_state_dict(state)
    obs = _random_obs(env.single_observation_space.shape[0], 50)
    assert torch.equal(other.act(obs), agent.act(obs))
    assert other.num_env_steps == agent.num_env_steps
    assert other.model.replay_buffer.size() == agent.model.replay_buffer.size()
    assert np.array_equal(other.model.replay_buffer.observations, agent.model.replay_buffer.observations)
    assert other.model._n_calls == agent.model._n_calls and other.model.exploration_rate == agent.model.exploration_rate
    other.learn(64)
    assert other.num_env_steps >= agent.num_env_steps + 64


def test_sb3_agent_refuses_a_corrupted_state_and_a_wrong_algorithm() -> None:
    env = make_vec(WAREHOUSE, 2, config="lost_sales", tensors=True, check_actions=False)
    agent = SB3Agent(env, {"algo": "ppo", **TINY}, device="cpu")
    state = agent.state_dict()
    weights = dict(state["policy"])
    name = next(iter(weights))
    weights[name] = weights[name][..., :1]  # a tensor of the wrong shape
    with pytest.raises(PolicyFileError, match="does not fit"):
        agent.load_state_dict(dict(state, policy=weights))
    with pytest.raises(PolicyFileError, match="does not fit"):
        agent.load_state_dict({k: v for k, v in state.items() if k != "counters"})
    with pytest.raises(PolicyFileError, match="format"):
        agent.load_state_dict({"format": "something else"})
    with pytest.raises(ConfigError, match="Discrete"):
        SB3Agent(make_vec(WAREHOUSE, 2, config="default", tensors=True), {"algo": "dqn"}, device="cpu")


def test_learn_stops_when_the_callback_returns_false() -> None:
    env = make_vec(WAREHOUSE, 4, config="lost_sales", tensors=True, check_actions=False)
    agent = SB3Agent(env, {"algo": "ppo", **TINY}, device="cpu")
    calls: list[dict[str, float]] = []

    def stop(stats: dict[str, float]) -> bool:
        calls.append(stats)
        return False

    agent.learn(10_000, callback=stop)
    assert len(calls) == 1
    assert agent.num_env_steps < 1_000


def test_maskable_ppo_trains_on_dispatch_and_respects_its_masks() -> None:
    env_id = "paretochain/Dispatch-v0"
    env = make_vec(env_id, 2, tensors=True, check_actions=False)
    agent = SB3Agent(env, {"algo": "maskable_ppo", **TINY, "n_steps": 32}, device="cpu")
    agent.learn(64)
    check = make_vec(env_id, 2, tensors=True, check_actions=True)
    with torch.inference_mode():
        obs = check.core.reset(seeds=[5, 6])
        for _ in range(20):
            mask = check.core.action_masks()
            action = agent.act(obs, None, mask)
            assert bool(mask.gather(1, action.view(-1, 1)).all())
            out = check.core.step(action, check=True)  # raises ActionError on a masked action
            if bool((out.terminated | out.truncated).any()):
                break
            obs = out.obs


@pytest.mark.parametrize(
    ("algo", "env_id"),
    [("ppo", "paretochain/Dispatch-v0"), ("dqn", "paretochain/Dispatch-v0"), ("ppo", "paretochain/Pricing-v0")],
)
def test_plain_ppo_and_dqn_only_ever_send_allowed_actions_on_masked_families(
    algo: str, env_id: str, checked_masked_env
) -> None:
    env = checked_masked_env(env_id, 2)  # raises ActionError on any masked action
    agent = SB3Agent(env, {"algo": algo, **TINY, "n_steps": 32}, device="cpu")
    assert agent.vec_env.replace_masked
    agent.learn(128)
    assert agent.num_env_steps >= 128


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_sb3_state_holds_only_tensors_and_plain_data_and_loads_without_pickle(algo: str) -> None:
    import io

    env = make_vec(WAREHOUSE, 2, config="lost_sales", tensors=True, check_actions=False)
    config = {"algo": algo, **TINY, "norm_obs": True, "norm_return": True}
    agent = SB3Agent(env, config, device="cpu")
    agent.learn(100)
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # refuses any pickled object
    other = SB3Agent(make_vec(WAREHOUSE, 2, config="lost_sales", tensors=True, check_actions=False), config, "cpu")
    other.load_state_dict(state)
    obs = _random_obs(env.single_observation_space.shape[0], 20)
    assert torch.equal(other.act(obs), agent.act(obs))
    assert np.array_equal(other.venv.obs_rms.mean, agent.venv.obs_rms.mean)
    assert other.venv.ret_rms.count == agent.venv.ret_rms.count
