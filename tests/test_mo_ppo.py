"""MO-PPO and its pieces: preferences, per-objective GAE, normalisers, action heads, training, resume."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from conftest import DISPATCH_ATTENTION
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st

from paretochain.agents.logging import MemoryLogger, NullLogger, TensorBoardLogger
from paretochain.agents.mo_ppo import MOPPO, MOPPOConfig
from paretochain.agents.networks import FactoredCategoricalHead, PointerActor, SquashedGaussianHead, make_head
from paretochain.agents.normalization import ReturnNormalizer, RunningMeanStd
from paretochain.agents.preferences import PreferenceSampler, grid_size, preference_from_weights, preference_grid
from paretochain.agents.rollout_storage import compute_gae
from paretochain.envs import make_vec
from paretochain.errors import ActionError, ConfigError
from paretochain.evaluate.rollout import rollout
from paretochain.seeds import TRAINING

WAREHOUSE = "paretochain/Warehouse-v0"
PRICING = "paretochain/Pricing-v0"


def small_env(n: int = 8, config: str = "lost_sales", **overrides: object):
    return make_vec(WAREHOUSE, n, config=config, tensors=True, check_actions=False, **overrides)


# ---------------------------------------------------------------------------------------------- preferences
def test_preference_grid_matches_the_hand_listed_lattice() -> None:
    assert preference_grid(2, 4).tolist() == [[1, 0], [0.75, 0.25], [0.5, 0.5], [0.25, 0.75], [0, 1]]
    assert preference_grid(3, 2).tolist() == [
        [1, 0, 0],
        [0.5, 0.5, 0],
        [0.5, 0, 0.5],
        [0, 1, 0],
        [0, 0.5, 0.5],
        [0, 0, 1],
    ]


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(1, 8))
def test_preference_grid_points_are_distinct_simplex_multiples_of_one_over_n(k: int, n: int) -> None:
    grid = preference_grid(k, n)
    assert grid.shape == (grid_size(k, n), k) == (math.comb(n + k - 1, k - 1), k)
    assert np.allclose(grid.sum(axis=1), 1.0)
    assert (grid >= 0).all()
    assert np.allclose(grid * n, np.round(grid * n))
    assert len({tuple(row) for row in grid}) == grid.shape[0]


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.floats(0.05, 10.0), st.integers(1, 64))
def test_sampled_preferences_lie_on_the_simplex(k: int, alpha: float, n: int) -> None:
    prefs = PreferenceSampler(k, alpha=alpha).sample(n)
    assert prefs.shape == (n, k)
    assert bool((prefs >= 0).all())
    assert torch.allclose(prefs.sum(dim=1), torch.ones(n), atol=1e-5)


def test_uniform_dirichlet_preferences_average_to_the_simplex_centre() -> None:
    torch.manual_seed(0)
    prefs = PreferenceSampler(3, alpha=1.0).sample(20_000)
    assert torch.allclose(prefs.mean(dim=0), torch.full((3,), 1 / 3), atol=0.01)
    # a flat Dirichlet on 3 objectives has marginal variance (k - 1) / (k^2 (k + 1)) = 1/18
    assert float(prefs[:, 0].var()) == pytest.approx(1 / 18, abs=0.005)


def test_fixed_preference_is_normalised_and_repeated() -> None:
    sampler = PreferenceSampler(2, fixed=[3.0, 1.0])
    assert sampler.sample(4).tolist() == [[0.75, 0.25]] * 4


def test_resample_changes_only_the_rows_of_new_episodes() -> None:
    sampler = PreferenceSampler(3)
    old = sampler.sample(5)
    new = sampler.resample(old, torch.tensor([True, False, False, True, False]))
    assert torch.equal(new[[1, 2, 4]], old[[1, 2, 4]])
    assert not torch.equal(new[[0, 3]], old[[0, 3]])


def test_preference_from_weights_names_unknown_objectives() -> None:
    assert preference_from_weights(["total_cost", "fill_rate"], {"total_cost": 2.0}).tolist() == [1.0, 0.0]
    with pytest.raises(ConfigError, match="unknown objective"):
        preference_from_weights(["total_cost", "fill_rate"], {"profit": 1.0})
    with pytest.raises(ConfigError, match="not all 0"):
        preference_from_weights(["a", "b"], [0.0, 0.0])


# ---------------------------------------------------------------------------------------------- GAE and normalisers
def test_gae_per_objective_matches_a_hand_computed_case() -> None:
    gamma, lam = 0.9, 0.5
    # one env, three steps, two objectives; the episode ends with step 1 (index 1)
    rewards = torch.tensor([[[1.0, 0.0]], [[2.0, -1.0]], [[0.0, 3.0]]])
    values = torch.tensor([[[0.5, 0.1]], [[1.0, 0.2]], [[2.0, 0.3]]])
    dones = torch.tensor([[False], [True], [False]])
    next_value = torch.tensor([[4.0, -2.0]])
    adv, ret = compute_gae(rewards, values, dones, next_value, gamma, lam)
    # objective 0: d2 = 0 + .9*4 - 2 = 1.6; d1 = 2 - 1 = 1 (no bootstrap); d0 = 1 + .9*1 - .5 = 1.4
    #   A2 = 1.6, A1 = 1, A0 = 1.4 + .45*1 = 1.85
    # objective 1: d2 = 3 + .9*(-2) - .3 = .9; d1 = -1 - .2 = -1.2; d0 = 0 + .9*.2 - .1 = .08
    #   A2 = .9, A1 = -1.2, A0 = .08 + .45*(-1.2) = -.46
    expected = torch.tensor([[[1.85, -0.46]], [[1.0, -1.2]], [[1.6, 0.9]]])
    assert torch.allclose(adv, expected, atol=1e-6)
    assert torch.allclose(ret, expected + values)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 8), st.integers(1, 3), st.floats(0.5, 1.0))
def test_gae_with_lambda_one_gives_discounted_returns_to_go(T: int, k: int, gamma: float) -> None:
    g = torch.Generator().manual_seed(T * 10 + k)
    rewards = torch.randn(T, 2, k, generator=g)
    values = torch.randn(T, 2, k, generator=g)
    dones = torch.zeros(T, 2, dtype=torch.bool)
    next_value = torch.randn(2, k, generator=g)
    _, ret = compute_gae(rewards, values, dones, next_value, gamma, 1.0)
    expected = next_value.clone()
    for t in range(T - 1, -1, -1):
        expected = rewards[t] + gamma * expected
        assert torch.allclose(ret[t], expected, atol=1e-4)


def test_running_mean_std_over_batches_matches_the_whole_data() -> None:
    g = torch.Generator().manual_seed(0)
    data = torch.randn(1000, 3, generator=g) * torch.tensor([1.0, 5.0, 0.1]) + 2.0
    rms = RunningMeanStd((3,), epsilon=0.0 + 1e-12)
    for chunk in data.split(137):
        rms.update(chunk)
    assert torch.allclose(rms.mean, data.double().mean(0), atol=1e-6)
    assert torch.allclose(rms.var, data.double().var(0, unbiased=False), rtol=1e-5)


def test_return_normalizer_scales_each_objective_by_its_own_return_std() -> None:
    norm = ReturnNormalizer(num_envs=64, k=2, gamma=0.0)  # gamma 0: the "return" is the reward itself
    g = torch.Generator().manual_seed(1)
    done = torch.zeros(64, dtype=torch.bool)
    for _ in range(50):
        reward = torch.stack([torch.randn(64, generator=g) * 100.0, torch.randn(64, generator=g) * 0.01], dim=1)
        norm(reward, done)
    std = norm.std()
    assert std[0] == pytest.approx(100.0, rel=0.1)
    assert std[1] == pytest.approx(0.01, rel=0.1)
    scaled = norm(torch.tensor([[100.0, 0.01]]).expand(64, 2), done, update=False)
    assert torch.allclose(scaled[0], torch.ones(2), rtol=0.15)


# ---------------------------------------------------------------------------------------------- action heads
def test_squashed_gaussian_log_prob_matches_the_change_of_variables() -> None:
    low, high = np.array([0.0, -2.0], dtype=np.float32), np.array([10.0, 3.0], dtype=np.float32)
    head = SquashedGaussianHead(4, low, high, log_std_init=0.3)
    torch.manual_seed(0)
    hidden = torch.randn(256, 4)
    action, u, logp = head.sample(hidden, torch.ones(256, 2, dtype=torch.bool))
    mean = head.mean(hidden)
    base = torch.distributions.Normal(mean, head.log_std.exp())
    lo, hi = torch.as_tensor(low), torch.as_tensor(high)
    transforms = [
        torch.distributions.TanhTransform(),
        torch.distributions.AffineTransform(lo + (hi - lo) / 2, (hi - lo) / 2),
    ]
    reference = torch.distributions.TransformedDistribution(torch.distributions.Independent(base, 1), transforms)
    inside = (action > lo + 1e-3).all(1) & (action < hi - 1e-3).all(1)
    safe = torch.where(inside.unsqueeze(1), action, (lo + hi) / 2)
    assert torch.allclose(logp[inside], reference.log_prob(safe)[inside], atol=1e-3)
    assert int(inside.sum()) > 200
    assert bool(((action >= lo) & (action <= hi)).all())
    logp2, _ = head.evaluate(hidden, u, torch.ones(256, 2, dtype=torch.bool))
    assert torch.allclose(logp, logp2)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(2, 5), min_size=1, max_size=4), st.integers(0, 10_000))
def test_masked_categorical_heads_never_pick_a_masked_choice(nvec: list[int], seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    discrete = len(nvec) == 1
    head = FactoredCategoricalHead(6, nvec, discrete=discrete)
    with torch.no_grad():
        head.logits.weight.normal_(generator=g)
    hidden = torch.randn(32, 6, generator=g)
    mask = torch.rand(32, sum(nvec), generator=g) < 0.5
    offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
    for j, n in enumerate(nvec):  # at least one allowed choice per dimension
        mask[torch.arange(32), int(offsets[j]) + torch.randint(0, n, (32,), generator=g)] = True
    action, stored, logp = head.sample(hidden, mask)
    greedy = head(hidden, mask)
    for a in (action, greedy):
        flat = a.reshape(32, -1) + torch.as_tensor(offsets)
        assert bool(mask.gather(1, flat).all())
    assert bool(torch.isfinite(logp).all())
    logp2, entropy = head.evaluate(hidden, stored, mask)
    assert torch.allclose(logp, logp2, atol=1e-5)
    assert bool((entropy >= -1e-6).all())


def test_make_head_picks_the_head_of_each_space() -> None:
    assert isinstance(make_head(spaces.Discrete(3), 8), FactoredCategoricalHead)
    assert isinstance(make_head(spaces.MultiDiscrete([2, 3]), 8), FactoredCategoricalHead)
    assert isinstance(make_head(spaces.Box(0.0, 1.0, (2,)), 8), SquashedGaussianHead)


# ---------------------------------------------------------------------------------------------- the agent
def test_config_refuses_unknown_fields_and_bad_values() -> None:
    with pytest.raises(ConfigError, match="learning_rat"):
        MOPPOConfig.load({"learning_rat": 1e-3})
    with pytest.raises(ConfigError, match="gamma"):
        MOPPOConfig.load({"gamma": 1.5})


def test_truncated_episodes_bootstrap_from_the_value_of_their_final_observation() -> None:
    env = small_env(4, horizon=3)
    agent = MOPPO(env, {"num_steps": 3, "norm_return": False, "norm_obs": False, "seed": 5})
    agent._start()
    agent._collect()
    st_ = agent.storage
    twin = small_env(4, horizon=3)
    twin.core.reset(seeds=TRAINING.spread(5, 4))  # the episodes MO-PPO starts a run seeded 5 on
    for t in range(3):
        out = twin.core.step(st_.actions[t], check=False)
        if t < 2:
            assert torch.allclose(st_.rewards[t], out.reward)
            assert not bool(st_.dones[t].any())
        else:
            final_v = agent.critic(out.obs, st_.preferences[t])
            assert torch.allclose(st_.rewards[t], out.reward + agent.config.gamma * final_v, atol=1e-5)
            assert bool(st_.dones[t].all())


def test_learn_logs_the_shared_tags_and_a_callback_can_stop_it() -> None:
    env = small_env(16)
    agent = MOPPO(env, {"num_steps": 100, "update_epochs": 1})
    logger = MemoryLogger()
    calls: list[dict[str, float]] = []
    agent.learn(16 * 100 * 5, logger=logger, callback=lambda stats: calls.append(stats) is not None)
    assert len(calls) == 1  # stopped after the first update
    assert agent.global_step == 1600
    for tag in (
        "charts/SPS",
        "charts/episode_return/total_cost",
        "charts/episode_return/fill_rate",
        "charts/scalarised_return",
        "losses/policy",
        "losses/value",
        "losses/entropy",
    ):
        assert tag in logger.history, tag
    assert logger.last("charts/episode_return/total_cost") < 0


def test_tensorboard_logger_writes_event_files(tmp_path) -> None:
    logger = TensorBoardLogger(tmp_path / "tb")
    logger.scalar("charts/SPS", 1.0, 1)
    logger.close()
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "tb").iterdir())
    NullLogger().scalar("x", 1.0, 0)


def test_act_is_deterministic_and_follows_the_policy_contract() -> None:
    env = small_env(8, config="default")
    agent = MOPPO(env, {"num_steps": 8})
    agent.learn(64)
    obs = env.core.observe()
    pref = torch.tensor([[0.2, 0.3, 0.5]]).expand(8, 3)
    a1, a2 = agent.act(obs, pref), agent.act(obs, pref)
    assert torch.equal(a1, a2)
    assert a1.shape == (8, 3) and a1.dtype == torch.int64
    assert bool(((a1 >= 0) & (a1 < 7)).all())


def test_resumed_training_matches_uninterrupted_training() -> None:
    def build() -> MOPPO:
        return MOPPO(small_env(8, config="backorder_box"), {"num_steps": 10, "update_epochs": 2, "seed": 3})

    straight = build()
    straight.learn(160)
    checkpoint = straight.state_dict()
    straight.learn(160)

    buffer = io.BytesIO()  # through a file, as checkpoints travel
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    resumed = build()
    resumed.load_state_dict(torch.load(buffer, map_location="cpu", weights_only=True))
    resumed.learn(160)
    assert resumed.global_step == straight.global_step == 320
    for a, b in zip(straight.actor.parameters(), resumed.actor.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(straight.obs, resumed.obs)


def test_agent_refuses_a_device_other_than_the_environments() -> None:
    with pytest.raises(ValueError, match="differs from the environment's device"):
        MOPPO(small_env(2), device="meta")


def _mean_cost(env, policy, seeds: list[int]) -> float:
    result = rollout(env, policy, seeds, preference=torch.tensor([1.0, 0.0]))
    return -float(result.returns[:, 0].mean()) / env.core.horizon


class _Constant:
    def __init__(self, value: int) -> None:
        self.value = value

    def act(self, obs, preference=None, action_mask=None):
        return torch.full((obs.shape[0],), self.value, dtype=torch.long)


class _Random:
    def act(self, obs, preference=None, action_mask=None):
        return torch.randint(0, 21, (obs.shape[0],))


@pytest.mark.slow
def test_mo_ppo_learns_lost_sales_beyond_doing_nothing_and_random_orders() -> None:
    torch.manual_seed(0)
    env = small_env(64, horizon=50)
    agent = MOPPO(
        env,
        {
            "num_steps": 50,
            "preference": {"total_cost": 1.0},
            "gamma": 0.95,
            "ent_coef": 0.0,
            "learning_rate": 1e-3,
            "num_minibatches": 8,
            "total_env_steps": 64 * 50 * 25,
        },
    )
    agent.learn(64 * 50 * 25)
    eval_env = small_env(32, horizon=50)
    seeds = list(range(900, 932))
    learned = _mean_cost(eval_env, agent, seeds)
    nothing = _mean_cost(eval_env, _Constant(0), seeds)
    random_cost = _mean_cost(eval_env, _Random(), seeds)
    assert learned < 0.5 * min(nothing, random_cost), (learned, nothing, random_cost)


# ---------------------------------------------------------------------------------------------- Dispatch and Pricing


def family_env(env_id: str, n: int):
    return make_vec(env_id, n, tensors=True, check_actions=False)


def attention_encoder():
    from paretochain.agents.networks import build_encoder

    env = family_env("paretochain/Dispatch-v0", 4)
    torch.manual_seed(0)
    enc = build_encoder(
        "attention",
        env.single_observation_space.shape[0],
        env.core.observation_layout,
        (64,),
        DISPATCH_ATTENTION["attention"],
    )
    return env, enc.eval()


def test_attention_encoder_ignores_what_padded_order_slots_contain() -> None:
    env, enc = attention_encoder()
    seg = env.core.observation_layout.segments
    obs = env.core.observe().clone()
    obs[:, seg["order_valid"].start : seg["order_valid"].start + 3] = 1.0  # three real orders
    obs[:, seg["order_valid"].start + 3 : seg["order_valid"].stop] = 0.0
    orders = obs[:, seg["orders"].start : seg["orders"].stop].view(4, *seg["orders"].shape)
    orders[:, :3] = torch.rand(4, 3, orders.shape[2])
    noisy = obs.clone()
    noisy_orders = noisy[:, seg["orders"].start : seg["orders"].stop].view(4, *seg["orders"].shape)
    noisy_orders[:, 3:] = torch.randn(4, orders.shape[1] - 3, orders.shape[2]) * 5
    with torch.no_grad():
        assert torch.allclose(enc(obs), enc(noisy), atol=1e-5)
        changed = obs.clone()
        changed[:, seg["orders"].start] += 1.0  # a real order's feature does matter
        assert not torch.allclose(enc(obs), enc(changed), atol=1e-5)


def test_attention_encoder_does_not_depend_on_the_order_of_the_slots() -> None:
    env, enc = attention_encoder()
    seg = env.core.observation_layout.segments
    obs = env.core.observe().clone()
    num_slots = seg["orders"].shape[0]
    obs[:, seg["order_valid"].start : seg["order_valid"].stop] = (torch.rand(4, num_slots) < 0.5).float()
    obs[:, seg["orders"].start : seg["orders"].stop] = torch.rand(4, seg["orders"].stop - seg["orders"].start)
    perm = torch.randperm(num_slots)
    shuffled = obs.clone()
    o = shuffled[:, seg["orders"].start : seg["orders"].stop].view(4, *seg["orders"].shape)
    o.copy_(obs[:, seg["orders"].start : seg["orders"].stop].view(4, *seg["orders"].shape)[:, perm])
    shuffled[:, seg["order_valid"].start : seg["order_valid"].stop] = obs[
        :, seg["order_valid"].start : seg["order_valid"].stop
    ][:, perm]
    with torch.no_grad():
        assert torch.allclose(enc(obs), enc(shuffled), atol=1e-4)


def test_pointer_actor_scores_each_order_slot_by_what_it_holds_not_where_it_sits() -> None:
    env = family_env("paretochain/Dispatch-v0", 4)
    torch.manual_seed(0)
    agent = MOPPO(env, DISPATCH_ATTENTION)
    assert isinstance(agent.actor, PointerActor)
    seg = env.core.observation_layout.segments
    num_slots = seg["orders"].shape[0]
    obs = env.core.observe().clone()
    obs[:, seg["order_valid"].start : seg["order_valid"].stop] = 1.0
    obs[:, seg["orders"].start : seg["orders"].stop] = torch.rand(4, seg["orders"].stop - seg["orders"].start)
    perm = torch.randperm(num_slots)
    shuffled = obs.clone()
    shuffled[:, seg["orders"].start : seg["orders"].stop] = (
        obs[:, seg["orders"].start : seg["orders"].stop].view(4, *seg["orders"].shape)[:, perm].reshape(4, -1)
    )
    pref = torch.full((4, agent.k), 1.0 / agent.k)
    mask = torch.ones(4, int(env.single_action_space.n), dtype=torch.bool)
    with torch.no_grad():
        logits = agent.actor.masked_logits(obs, pref, mask)[:, 0]
        moved = agent.actor.masked_logits(shuffled, pref, mask)[:, 0]
    assert torch.allclose(moved[:, :num_slots], logits[:, perm], atol=1e-4), "a slot's score travels with its order"
    assert torch.allclose(moved[:, num_slots:], logits[:, num_slots:], atol=1e-4), (
        "depot and wait do not depend on the slot order"
    )
    assert logits[:, :num_slots].std() > 0, "orders with different features get different scores"


@pytest.mark.parametrize(
    ("env_id", "overrides"),
    [("paretochain/Dispatch-v0", DISPATCH_ATTENTION), ("paretochain/Dispatch-v0", {}), ("paretochain/Pricing-v0", {})],
    ids=["dispatch-attention", "dispatch-mlp", "pricing-mlp"],
)
def test_mo_ppo_trains_on_the_masked_families_and_acts_within_the_masks(env_id: str, overrides: dict) -> None:
    env = family_env(env_id, 8)
    agent = MOPPO(env, {"num_steps": 8, "update_epochs": 1, **overrides})
    agent.learn(64)
    assert agent.global_step == 64
    assert all(torch.isfinite(p).all() for p in agent.actor.parameters())
    masks = env.core.action_masks()
    assert masks is not None
    action = agent.act(env.core.observe(), None, masks)
    index = (
        action.view(-1, 1)
        if action.dim() == 1
        else action + torch.as_tensor(np.concatenate([[0], np.cumsum(env.single_action_space.nvec)[:-1]]))
    )
    assert bool(masks.gather(1, index).all())


@pytest.mark.parametrize(
    ("env_id", "config"), [(WAREHOUSE, "default"), ("paretochain/Dispatch-v0", None)], ids=["warehouse", "dispatch"]
)
def test_learning_continues_after_the_training_env_served_an_evaluation(env_id: str, config: str | None) -> None:
    env = make_vec(env_id, 4, config=config, tensors=True, check_actions=False)
    agent = MOPPO(env, {"num_steps": 4, "update_epochs": 1})
    agent.learn(16)
    rollout(env, agent, [1, 2, 3, 4])  # steps the same core, in inference mode, to the end of its episodes
    agent.learn(16)
    assert agent.global_step == 32
    assert torch.equal(env.core.observe(), agent.obs)


def _teacher_states(teacher, env, steps: int, first_seed: int):
    """Yield ``(obs, mask, teacher's action)`` along ``steps`` steps the teacher drives (inference mode)."""
    core = env.core
    with torch.inference_mode():
        obs = core.reset(seeds=list(range(first_seed, first_seed + core.num_envs)))
        for _ in range(steps):
            mask = core.action_masks()
            target = teacher.act(obs, None, mask)
            yield obs, mask, target
            obs = core.step(target, check=False).obs


def _agreement(agent: MOPPO, teacher, env, steps: int) -> float:
    """Share of the teacher's decisions the agent's deterministic policy repeats, on the teacher's own states."""
    same = total = 0
    for obs, mask, target in _teacher_states(teacher, env, steps, 700):
        live = ~env.core.state.done  # the step's state: the generator steps only after this body
        same += int(((agent.act(obs, None, mask) == target) & live).sum())
        total += int(live.sum())
    return same / max(total, 1)


def test_imitation_fits_the_teachers_decisions_without_counting_as_training() -> None:
    from paretochain.agents.baselines.dispatch import NearestNeighbourPolicy

    env = family_env("paretochain/Dispatch-v0", 16)
    torch.manual_seed(0)
    agent = MOPPO(env, {**DISPATCH_ATTENTION, "num_steps": 16, "num_minibatches": 2, "learning_rate": 1e-3})
    teacher = NearestNeighbourPolicy(env)
    probe = family_env("paretochain/Dispatch-v0", 16)
    before = _agreement(agent, teacher, probe, 40)
    logged = MemoryLogger()
    agent.imitate(teacher, 16 * 16 * 30, logger=logged)
    after = _agreement(agent, teacher, probe, 40)
    assert after > 0.8 and after > before + 0.2, (before, after)
    assert agent.global_step == 0 and agent.num_updates == 0
    assert agent.imitation_steps == 16 * 16 * 30
    assert agent.export_metadata()["training"]["imitation_teacher"] == "NearestNeighbourPolicy"
    probability = [value for _, value in logged.history["imitation/teacher_probability"]]
    assert probability[-1] > probability[0]
    agent.learn(16 * 16)  # training continues from the imitated policy
    assert agent.global_step == 16 * 16


def test_imitation_refuses_continuous_actions() -> None:
    env = small_env(2, config="backorder_box")
    agent = MOPPO(env, {"num_steps": 4})
    with pytest.raises(ValueError, match="discrete actions"):
        agent.imitate(object(), 8)


def test_imitation_refuses_a_teacher_that_breaks_the_masks() -> None:
    class FirstSlot:
        def act(self, obs, preference=None, action_mask=None):
            return torch.zeros(obs.shape[0], dtype=torch.int64)  # order slot 0, served or not

    env = family_env("paretochain/Dispatch-v0", 4)
    agent = MOPPO(env, {**DISPATCH_ATTENTION, "num_steps": 8})
    with pytest.raises(ActionError, match="teacher FirstSlot took an action the environment refuses"):
        agent.imitate(FirstSlot(), 4 * 8 * 4)


def _log_likelihood_of(agent: MOPPO, policy, env, steps: int) -> float:
    """Mean log-probability the agent's actor gives ``policy``'s actions, on ``policy``'s own states."""
    pref = agent.default_preference(env.core.num_envs)
    total, count = 0.0, 0
    for obs, mask, target in _teacher_states(policy, env, steps, 900):
        logp, _ = agent.actor.evaluate(agent._normalize(obs), pref, target, mask)
        total, count = total + float(logp.sum()), count + logp.numel()
    return total / count


def test_an_anchor_keeps_ppo_near_the_imitated_policy_and_survives_a_checkpoint() -> None:
    from paretochain.agents.baselines.pricing import MyopicPolicy

    def trained(anchor_coef: float) -> tuple[MOPPO, MemoryLogger]:
        env = family_env(PRICING, 16)
        torch.manual_seed(0)
        # a large entropy bonus pulls the policy away from the teacher's deterministic choices
        config = {"num_steps": 13, "learning_rate": 3e-3, "ent_coef": 1.0, "anchor_coef": anchor_coef, "seed": 3}
        agent = MOPPO(env, config)
        agent.imitate(MyopicPolicy(env), 16 * 13 * 20)
        logged = MemoryLogger()
        agent.learn(16 * 13 * 20, logger=logged)
        return agent, logged

    free, _ = trained(0.0)
    anchored, logged = trained(5.0)
    probe = family_env(PRICING, 16)
    teacher = MyopicPolicy(probe)
    assert _log_likelihood_of(anchored, teacher, probe, 13) > _log_likelihood_of(free, teacher, probe, 13) + 0.5
    assert "losses/anchor_nll" in logged.history and "losses/anchor_nll" not in free.last_stats
    # the anchor is frozen: the actor moved on, the anchor did not, and a checkpoint keeps it
    anchor, _ = anchored._anchor
    assert not all(p.requires_grad for p in anchor.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(anchor.parameters(), anchored.actor.parameters()))
    state = anchored.state_dict()
    restored = MOPPO(family_env(PRICING, 16), anchored.config)
    restored.load_state_dict(state)
    for a, b in zip(restored._anchor[0].parameters(), anchor.parameters()):
        assert torch.equal(a, b)
    restored.learn(16 * 13)
    assert restored.last_stats["losses/anchor_nll"] >= 0


def test_preference_sampler_draws_each_corner_in_its_share_of_episodes() -> None:
    torch.manual_seed(0)
    prefs = PreferenceSampler(3, alpha=1.0, corner_share=0.5).sample(30_000)
    assert torch.allclose(prefs.sum(1), torch.ones(30_000))
    corners = (prefs == 1.0).any(1)
    assert abs(float(corners.float().mean()) - 0.5) < 0.02
    for i in range(3):
        assert abs(float((prefs[:, i] == 1.0).float().mean()) - 0.5 / 3) < 0.02
    # without corners, a uniform Dirichlet puts 0.9 or more on a given objective about once in a hundred draws
    plain = PreferenceSampler(3, alpha=1.0).sample(30_000)
    assert float((plain[:, 0] >= 0.9).float().mean()) < 0.02


def test_preference_advantage_scale_is_the_std_of_the_scalarised_advantage_at_each_preference() -> None:
    from paretochain.agents.mo_ppo import preference_adv_std

    torch.manual_seed(0)
    advantages = torch.randn(50_000, 3) * torch.tensor([0.5, 1.0, 3.0])
    for w in ([1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.2, 0.3, 0.5]):
        pref = torch.tensor(w).expand(50_000, 3)
        scale = preference_adv_std(advantages, pref)
        expected = (advantages * pref).sum(1).std()
        assert torch.allclose(scale, expected.expand(50_000), rtol=1e-3)


def test_mlp_policy_reads_the_preference_at_its_first_layer() -> None:
    env = make_vec("paretochain/Pricing-v0", 4, config="dp_single_sku", tensors=True, check_actions=False)
    agent = MOPPO(env, {"num_steps": 8, "seed": 0})
    first = agent.actor.torso.encoder.net[0]
    assert first.in_features == agent.obs_dim + agent.k
    obs = env.core.reset(seeds=[0, 1, 2, 3])
    features = [agent.actor.torso.encoder(torch.cat([obs, torch.eye(3)[i].expand(4, 3)], 1)) for i in range(3)]
    assert not torch.allclose(features[0], features[2])  # the state's features differ by preference


def record_step_sizes(agent: MOPPO) -> list[float]:
    """The step size of every optimizer step the agent takes from now on (a list that grows)."""
    rates: list[float] = []
    step = agent.optimizer.step

    def recording_step(*args, **kwargs):  # type: ignore[no-untyped-def]
        rates.append(agent.optimizer.param_groups[0]["lr"])
        return step(*args, **kwargs)

    agent.optimizer.step = recording_step  # type: ignore[method-assign]
    return rates


def test_imitation_uses_its_own_learning_rate_and_epochs_and_ppo_its_own_afterwards() -> None:
    from paretochain.agents.baselines.lost_sales import MyopicPolicy

    env = small_env(8)
    config = {
        "num_steps": 5,
        "num_minibatches": 2,
        "update_epochs": 1,
        "learning_rate": 1e-4,
        "anneal_lr": False,
        "imitation_learning_rate": 3e-3,
        "imitation_epochs": 3,
    }
    agent = MOPPO(env, config)
    step_rates = record_step_sizes(agent)
    agent.imitate(MyopicPolicy(env, 2), 8 * 5 * 2)  # two rollouts
    assert step_rates == [3e-3] * (2 * 3 * 2)  # rollouts x imitation_epochs x minibatches
    step_rates.clear()
    agent.learn(8 * 5)  # one rollout
    assert step_rates == [1e-4] * (1 * 1 * 2)


def test_imitation_options_default_to_the_update_s_learning_rate_and_epochs() -> None:
    from paretochain.agents.baselines.lost_sales import MyopicPolicy

    env = small_env(8)
    agent = MOPPO(env, {"num_steps": 5, "num_minibatches": 2, "update_epochs": 2, "learning_rate": 2e-4})
    rates = record_step_sizes(agent)
    agent.imitate(MyopicPolicy(env, 2), 8 * 5)
    assert rates == [2e-4] * (2 * 2)
    with pytest.raises(ConfigError, match="imitation_epochs"):
        MOPPOConfig.load({"imitation_epochs": 0})
    with pytest.raises(ConfigError, match="imitation_learning_rate"):
        MOPPOConfig.load({"imitation_learning_rate": -1.0})


def test_imitation_balance_is_refused_for_an_actor_without_per_item_decisions() -> None:
    with pytest.raises(ConfigError, match=r"imitation_balance: 0.5 needs one decision per item.*Actor"):
        MOPPO(small_env(2), {"num_steps": 4, "imitation_balance": 0.5})


@pytest.mark.parametrize(
    ("attention", "problem"),
    [
        ({}, r"attention.slots_block is needed .*blocks are \["),
        ({"slots_block": "orders", "heads": 2}, r"attention: unknown \['heads'\]; allowed: slots_block"),
        ({"slots_block": "nowhere"}, r"observation has no block 'nowhere'"),
    ],
)
def test_a_bad_attention_section_is_one_config_error_naming_it(attention: dict, problem: str) -> None:
    env = family_env("paretochain/Dispatch-v0", 2)
    with pytest.raises(ConfigError, match=problem):
        MOPPO(env, {"encoder": "attention", "attention": attention})
