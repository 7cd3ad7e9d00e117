"""The learned epoch-dispatch policy: the per-order attention network, imitation of anticipative labels, export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from paretochain.agents.baselines.epoch import HindsightEpochPolicy, PerEnvironmentPolicy, epoch_envs
from paretochain.agents.mo_ppo import MOPPO
from paretochain.agents.networks import OrderDecisionActor
from paretochain.envs import make_vec
from paretochain.train.config import load_run_config

ENV_ID = "paretochain/DispatchEpoch-v0"
TINY: dict[str, Any] = {
    "generator": {"num_customers": 8, "area_km": 10.0},
    "num_vehicles": 2,
    "epoch": {"routing_iterations": 30, "routing_time_limit_s": 0.5},
}


def packaged_hyperparameters(**changes: Any) -> dict[str, Any]:
    """The packaged run config's MO-PPO settings (its attention actor), with ``changes``."""
    run = load_run_config("dispatch_epoch_mo_ppo")
    return {**run.hyperparameters, "seed": 0, **changes}


def tiny_agent(num_envs: int = 4, **changes: Any) -> MOPPO:
    env = make_vec(ENV_ID, num_envs, config="default", tensors=True, check_actions=False, **TINY)
    torch.manual_seed(0)
    return MOPPO(env, packaged_hyperparameters(**changes), device="cpu")


def started_batch(agent: MOPPO, seeds: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Observations and masks of the first epoch of ``seeds``."""
    obs = agent.core.reset(seeds=seeds)
    return obs, agent.core.action_masks().clone()


def test_the_packaged_run_config_builds_the_per_order_attention_actor() -> None:
    agent = tiny_agent()
    assert isinstance(agent.actor, OrderDecisionActor)
    obs, mask = started_batch(agent, [0, 1, 2, 3])
    action = agent.act(obs, None, mask)
    assert action.shape == (4, agent.core.max_orders) and action.dtype == torch.int64
    pairs = mask.reshape(4, -1, 2)
    assert bool((action[~pairs[..., 1]] == 0).all()), "an empty slot is never dispatched"
    assert bool((action[~pairs[..., 0]] == 1).all()), "a must-go order always goes"


def _permuted(obs: torch.Tensor, mask: torch.Tensor, seg: Any, perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    b = obs.shape[0]
    out = obs.clone()
    orders = seg["orders"]
    out[:, orders.start : orders.stop] = (
        obs[:, orders.start : orders.stop].view(b, *orders.shape)[:, perm].reshape(b, -1)
    )
    valid = seg["order_valid"]
    out[:, valid.start : valid.stop] = obs[:, valid.start : valid.stop][:, perm]
    return out, mask.reshape(b, -1, 2)[:, perm].reshape(b, -1)


def test_the_network_is_permutation_equivariant_over_orders() -> None:
    agent = tiny_agent()
    seg = agent.core.observation_layout.segments
    obs, mask = started_batch(agent, [0, 1, 2, 3])
    norm = agent._normalize(obs)
    pref = torch.full((4, agent.k), 1.0 / agent.k)
    perm = torch.randperm(agent.core.max_orders, generator=torch.Generator().manual_seed(1))
    shuffled, shuffled_mask = _permuted(norm, mask, seg, perm)
    with torch.no_grad():
        logits = agent.actor.masked_logits(norm, pref, mask)
        shuffled_logits = agent.actor.masked_logits(shuffled, pref, shuffled_mask)
    assert torch.allclose(logits[:, perm], shuffled_logits, atol=1e-5)
    assert not torch.allclose(logits[:, :, 1], logits[:, perm, 1]), "the test needs slots that score differently"


def test_the_network_ignores_what_padded_slots_hold() -> None:
    agent = tiny_agent()
    seg = agent.core.observation_layout.segments
    obs, mask = started_batch(agent, [0, 1, 2, 3])
    norm = agent._normalize(obs)
    valid = norm[:, seg["order_valid"].start : seg["order_valid"].stop] > 0.5
    assert bool((~valid).any()) and bool(valid.any()), "the test needs padded and real slots"
    noisy = norm.clone()
    orders = noisy[:, seg["orders"].start : seg["orders"].stop].view(4, *seg["orders"].shape)
    orders[~valid] = torch.rand(int((~valid).sum()), seg["orders"].shape[1]) * 5
    pref = torch.full((4, agent.k), 1.0 / agent.k)
    with torch.no_grad():
        clean_scores = agent.actor.masked_logits(norm, pref, mask)[..., 1]
        noisy_scores = agent.actor.masked_logits(noisy, pref, mask)[..., 1]
    assert torch.allclose(clean_scores[valid], noisy_scores[valid], atol=1e-5)


def _label_loss(agent: MOPPO, seeds: list[int]) -> float:
    """Mean negative log-likelihood of the hindsight plan's decisions (the anticipative labels) at the first epoch."""
    obs, mask = started_batch(agent, seeds)
    teacher = PerEnvironmentPolicy(agent.env, lambda e: HindsightEpochPolicy(e, iterations=60, time_limit_s=1.0))
    labels = teacher.act(obs, None, mask)
    pref = agent.default_preference(len(seeds))
    with torch.no_grad():
        logp, _ = agent.actor.evaluate(agent._normalize(obs), pref, labels, mask)
    return float(-logp.mean())


def test_imitation_of_the_hindsight_labels_reduces_the_label_loss() -> None:
    agent = tiny_agent(update_epochs=8, learning_rate=3e-3)
    seeds = [1000, 1001, 1002, 1003]  # states imitation does not visit
    before = _label_loss(agent, seeds)
    teacher = PerEnvironmentPolicy(agent.env, lambda e: HindsightEpochPolicy(e, iterations=60, time_limit_s=1.0))
    agent.imitate(teacher, num_env_steps=4 * 12 * 6)
    after = _label_loss(agent, seeds)
    assert after < 0.8 * before


def test_the_exported_policy_returns_the_agents_per_order_decisions(tmp_path: Path) -> None:
    from paretochain.agents.export import export_policy, load_policy

    agent = tiny_agent()
    path = export_policy(agent, tmp_path, pt2=False)
    loaded = load_policy(path)
    obs, mask = started_batch(agent, [5, 6, 7, 8])
    for pref in (None, torch.tensor([0.2, 0.5, 0.3])):
        expected = agent.act(obs, pref, mask)
        got = loaded.act(obs, pref, mask)
        assert torch.equal(got.to(torch.int64), expected)
    assert loaded.metadata["env_id"] == ENV_ID
    assert loaded.metadata["action"]["mask_dim"] == 2 * agent.core.max_orders


class WindowOpensSoonTeacher:
    """Must-go orders, and the optional orders whose window opens before the next epoch: a minority label."""

    def __init__(self, env: Any) -> None:
        self.envs = epoch_envs(env)

    def act(self, obs: torch.Tensor, preference: Any = None, action_mask: Any = None) -> torch.Tensor:
        rows = []
        for e in self.envs:
            pairs = e.action_masks().reshape(-1, 2)
            inst = e.instance
            assert inst is not None
            soon = inst.window_start < e.clock + e.config.epoch.epoch_min
            rows.append(np.where(pairs[:, 0] & pairs[:, 1], soon, pairs[:, 1]))
        return torch.as_tensor(np.stack(rows).astype(np.int64))


def _agreement_on_optional_orders(
    agent: MOPPO, teacher: WindowOpensSoonTeacher, seeds: list[int]
) -> tuple[float, float]:
    """Share of the optional decisions where the agent's greedy action is the teacher's, and the share of the
    teacher's dispatch-now decisions the agent also makes (its recall), over whole episodes of ``seeds``."""
    core = agent.core
    obs = core.reset(seeds=seeds)
    agree = total = hit = positives = 0
    for _ in range(core.horizon):
        mask = core.action_masks().clone()
        labels = teacher.act(obs, None, mask)
        chosen = agent.act(obs, None, mask)
        pairs = mask.reshape(len(seeds), -1, 2)
        optional = pairs[..., 0] & pairs[..., 1]
        agree += int((chosen == labels)[optional].sum())
        total += int(optional.sum())
        hit += int(((chosen == 1) & (labels == 1))[optional].sum())
        positives += int((labels == 1)[optional].sum())
        out = core.step(labels)
        obs = out.obs
        if bool(out.terminated.all()):
            break
    assert 0 < positives < 0.5 * total, "the test needs a minority of dispatch-now labels"
    return agree / total, hit / positives


def test_the_100_customer_run_configs_imitation_learns_the_minority_dispatch_now_label() -> None:
    run = load_run_config("dispatch_epoch100_mo_ppo")
    env = make_vec(ENV_ID, 4, config="default", tensors=True, check_actions=False, **TINY)
    torch.manual_seed(0)
    agent = MOPPO(env, {**run.hyperparameters, "seed": 0}, device="cpu")
    teacher = WindowOpensSoonTeacher(env)
    agent.imitate(teacher, num_env_steps=4 * 14 * 2)
    agreement, recall = _agreement_on_optional_orders(agent, teacher, [2000, 2001, 2002, 2003])
    assert agreement > 0.8
    assert recall > 0.6, "the classifier must not settle on postponing every optional order"


def test_class_balanced_imitation_gives_each_open_choice_the_same_total_weight_and_forced_ones_none() -> None:
    agent = tiny_agent(imitation_balance=1.0)
    slots = agent.core.max_orders
    # 2 rows: slot 0 forced (must-go), slots 1-4 open, the rest empty (only postpone allowed)
    mask = torch.zeros(2, slots, 2, dtype=torch.bool)
    mask[:, 0, 1] = True
    mask[:, 1:5] = True
    mask[:, 5:, 0] = True
    actions = torch.zeros(2, slots, dtype=torch.int64)
    actions[:, 0] = 1
    actions[0, 1] = 1  # 1 open dispatch-now decision against 7 open postpones
    weights = agent._imitation_weights(actions, mask.reshape(2, -1))
    open_ = mask.all(-1)
    assert bool((weights[~open_] == 0).all()), "forced decisions and empty slots weigh nothing"
    dispatched, postponed = weights[open_ & (actions == 1)].sum(), weights[open_ & (actions == 0)].sum()
    assert torch.isclose(dispatched, postponed), "balance 1: both choices carry the same total weight"
    assert torch.isclose(weights[open_].mean(), torch.tensor(1.0)), "open decisions weigh one each on average"
    plain = tiny_agent(imitation_balance=0.0)._imitation_weights(actions, mask.reshape(2, -1))
    assert torch.equal(plain, open_.float()), "balance 0 is plain cloning"
    half = tiny_agent(imitation_balance=0.5)._imitation_weights(actions, mask.reshape(2, -1))
    ratio = half[0, 1] / half[0, 2]
    assert torch.isclose(ratio, torch.tensor(7.0).sqrt()), "balance 0.5: the rare choice weighs sqrt(7) times more"


def test_class_balanced_imitation_recalls_more_of_the_minority_label_than_plain_cloning() -> None:
    recalls = {}
    for balance in (0.0, 1.0):
        env = make_vec(ENV_ID, 4, config="default", tensors=True, check_actions=False, **TINY)
        torch.manual_seed(0)
        agent = MOPPO(env, packaged_hyperparameters(imitation_balance=balance), device="cpu")
        teacher = WindowOpensSoonTeacher(env)
        agent.imitate(teacher, num_env_steps=4 * 12 * 2)  # the update's 4 passes at 3e-4: too few for plain cloning
        _, recalls[balance] = _agreement_on_optional_orders(agent, teacher, [2000, 2001, 2002, 2003])
    assert recalls[0.0] < 0.3, "plain cloning with few passes postpones nearly every optional order"
    assert recalls[1.0] > recalls[0.0] + 0.2


def test_an_agent_restored_from_its_checkpoint_acts_as_saved_and_trains_on() -> None:
    agent = tiny_agent(num_steps=4)
    agent.learn(4 * 4)
    saved = agent.state_dict()
    restored = tiny_agent(num_steps=4)
    restored.load_state_dict(saved)  # the end of a run exports best/ this way; --resume too
    obs, mask = started_batch(restored, [9, 10, 11, 12])
    assert torch.equal(restored.act(obs, None, mask), agent.act(obs, None, mask))
    restored.learn(4 * 4)
    assert restored.global_step == 2 * 4 * 4
