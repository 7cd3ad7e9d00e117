"""Multi-objective PPO: one preference-conditioned agent for the whole Pareto front.

Read top to bottom: the config, then the agent (networks, rollout on the batched
environment, per-objective advantages, the clipped update), then state and export.

What makes it multi-objective (after Xu et al. 2020, Basaklar et al. 2023):

- the actor and the critic read the preference ``w`` (a point of the simplex)
  concatenated to the encoded observation, so one network serves every trade-off;
- the critic has a **vector value head**: one value per objective;
- generalised advantage estimation runs per objective, and the policy gradient
  uses the advantage scalarised by the episode's preference, ``w . A``, then
  normalised over the minibatch;
- each objective's reward is divided by the running std of its own discounted
  return (:class:`~paretochain.agents.normalization.ReturnNormalizer`), so the
  preference weighs objectives on comparable scales (it is applied to these
  normalised objectives during training; see ``preference_semantics`` in exports);
- preferences are drawn per episode from ``Dirichlet(alpha)`` on the simplex, or fixed.

The rollout steps the batched core directly, on its device: actions are sampled
with masks applied, no tensor is read back to the host per step on a GPU (episode
statistics are accumulated on the device and read once per logging interval).
Truncated episodes are bootstrapped with ``gamma * V(final observation)``;
terminated ones are not.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import torch
from gymnasium import spaces
from pydantic import Field

from paretochain.agents.logging import Logger, NullLogger
from paretochain.agents.networks import (
    Actor,
    ItemOrderActor,
    OrderDecisionActor,
    PerItemChoiceActor,
    PointerActor,
    PreferenceTorso,
    SlotAttentionEncoder,
    VectorCritic,
    build_encoder,
    make_head,
    mask_dim,
)
from paretochain.agents.normalization import ObservationNormalizer, ReturnNormalizer
from paretochain.agents.policy import PreferenceConditionedActing, agent_device, set_learning_rate
from paretochain.agents.preferences import PreferenceAgentConfig, PreferenceSampler, preference_from_weights
from paretochain.agents.rng_state import host_rng_state, set_host_rng_state
from paretochain.agents.rollout_storage import RolloutStorage
from paretochain.envs.core import BatchedCore
from paretochain.envs.episodes import EpisodeTracker, autoreset, episodes_may_have_ended
from paretochain.envs.views import BatchedVectorEnv
from paretochain.errors import ActionError, ConfigError, PolicyFileError
from paretochain.seeds import TRAINING


class MOPPOConfig(PreferenceAgentConfig):
    """Hyperparameters of :class:`MOPPO` (every field loads from YAML; unknown fields are errors)."""

    num_steps: int = Field(
        default=32,
        ge=1,
        description="steps per environment in each rollout (rollout = num_steps x num_envs transitions)",
    )
    learning_rate: float = Field(default=3e-4, gt=0, description="Adam step size at the start of training")
    anneal_lr: bool = Field(default=True, description="decay the learning rate linearly to 0 over total_env_steps")
    total_env_steps: int = Field(
        default=1_000_000, ge=1, description="planned run length in env steps, used only by the learning-rate schedule"
    )
    gamma: float = Field(default=0.99, gt=0, le=1, description="discount factor of every objective")
    gae_lambda: float = Field(default=0.95, ge=0, le=1, description="GAE lambda (1 = Monte Carlo, 0 = one-step TD)")
    num_minibatches: int = Field(default=4, ge=1, description="minibatches per epoch of the update")
    update_epochs: int = Field(default=4, ge=1, description="passes over each rollout")
    clip_coef: float = Field(default=0.2, gt=0, description="PPO's surrogate clipping range")
    clip_vloss: bool = Field(
        default=False, description="clip the value update around the rollout's values (same range as clip_coef)"
    )
    ent_coef: float = Field(default=0.01, ge=0, description="weight of the entropy bonus")
    anchor_coef: float = Field(
        default=0.0,
        ge=0,
        description="after imitate(): weight of the negative log-likelihood of the action the imitated policy (frozen when imitation ends) takes greedily in each visited state; keeps PPO from drifting far from it (0: off; no effect without imitation)",
    )
    imitation_learning_rate: float | None = Field(
        default=None,
        gt=0,
        description="imitate(): Adam step size of the behaviour cloning (None: learning_rate); cloning a teacher exactly usually wants a larger step than the PPO fine-tuning that follows it",
    )
    imitation_epochs: int | None = Field(
        default=None, ge=1, description="imitate(): passes over each rollout of teacher play (None: update_epochs)"
    )
    imitation_balance: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="imitate() with one decision per item (OrderDecisionActor, ItemOrderActor): weight each item decision the mask leaves open by (its choice's share of the rollout's open decisions) ** -imitation_balance, so a rare choice is not outvoted by a common one (DispatchEpoch: 1 open order in 5 is labelled dispatch-now); 0: plain cloning, 1: every choice carries the same total weight",
    )
    vf_coef: float = Field(default=0.5, ge=0, description="weight of the value loss (mean over objectives)")
    max_grad_norm: float = Field(default=0.5, gt=0, description="global gradient-norm clip")
    target_kl: float | None = Field(
        default=None, gt=0, description="stop the epochs of an update early once the approximate KL exceeds this"
    )
    obs_scale: Literal["env", "running"] = Field(
        default="env",
        description="with norm_obs: 'env' divides by the fixed scales the environment declares (Warehouse: stock and demand in periods of mean demand) and falls back to running statistics where it declares none; 'running' uses running mean/std",
    )
    norm_return: bool = Field(
        default=True, description="divide each objective's reward by the running std of its discounted return"
    )
    norm_adv: bool = Field(default=True, description="normalise the scalarised advantage per minibatch")
    preference_adv_scale: bool = Field(
        default=True,
        description="with sampled preferences, divide each sample's scalarised advantage w . A by its rollout std at that preference, sqrt(w' Cov(A) w), so that every preference pulls on the shared network with the same strength (an objective whose advantages vary most, such as a cost charged once at the season's end, no longer drowns the others); a positive factor per preference, so each preference's own optimum is unchanged",
    )
    corner_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="with sampled preferences, the share of episodes trained at a corner of the simplex (one objective only), the rest drawn from the Dirichlet; the Dirichlet alone almost never comes near a corner, where the policy would then extrapolate",
    )
    encoder: Literal["mlp", "attention", "items"] = Field(
        default="mlp",
        description="observation encoder: MLP, a transformer over order slots (Dispatch), or 'items': the actor is one small network shared by every node and SKU (Warehouse with a ladder action; ItemOrderActor, options in 'items'), the critic an MLP",
    )
    items: dict[str, Any] = Field(
        default_factory=dict,
        description="with encoder 'items': ItemOrderActor arguments (hidden_sizes of the shared per-item network, default [64, 64]; embed_dim of the learned per-item embedding, default 8; head: 'logits', one free logit per ladder entry (default), or 'order_up_to', a target inventory position and a sharpness per item, each ladder entry scored by how near it brings the position to the target, which needs fixed observation scales)",
    )
    attention: dict[str, Any] = Field(
        default_factory=dict,
        description="SlotAttentionEncoder arguments (slots_block, valid_block, embed_dim, num_heads, num_layers)",
    )
    pointer: bool = Field(
        default=True,
        description="with the attention encoder, score each slot from its own embedding instead of one fixed output per slot position: a Discrete action whose first choices are the slots (Dispatch: serve order slot a; PointerActor), or one 0/1 decision per slot (DispatchEpoch: dispatch now; OrderDecisionActor)",
    )
    hidden_sizes: list[int] = Field(
        default=[64, 64],
        min_length=1,
        description="MLP widths: the first encodes the observation, the rest follow the preference concatenation",
    )
    seed: int = Field(default=0, ge=0, description="seeds the networks, the sampling and the environments' episodes")
    log_interval: int = Field(
        default=1, ge=1, description="updates between two log lines (the only host syncs of training)"
    )


def preference_adv_std(advantages: torch.Tensor, preferences: torch.Tensor) -> torch.Tensor:
    """The std of the scalarised advantage at each sample's preference, ``sqrt(w' Cov(A) w)``, ``(n,)``.

    Args:
        advantages: per-objective advantages ``(n, k)`` of a rollout.
        preferences: the preference of each sample ``(n, k)``.
    """
    cov = torch.cov(advantages.T).reshape(advantages.shape[1], advantages.shape[1])
    var = torch.einsum("ni,ij,nj->n", preferences, cov, preferences)
    return var.clamp(min=1e-8).sqrt()


class MOPPO(PreferenceConditionedActing):
    """Preference-conditioned PPO with a vector critic on a batched environment.

    Args:
        env: a batched view from ``make_vec(..., tensors=True, check_actions=False)``
            (only its ``core`` is used; the agent steps it directly). The agent owns it:
            evaluate on another env; if it was stepped meanwhile, :meth:`learn` starts
            new episodes on it.
        config: hyperparameters (a :class:`MOPPOConfig`, a mapping, a YAML path or ``None``).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``; must be the environment's device
            (``"auto"`` takes the environment's).
    """

    def __init__(
        self,
        env: BatchedVectorEnv,
        config: MOPPOConfig | Mapping[str, Any] | str | None = None,
        device: str | torch.device = "auto",
    ) -> None:
        self.env = env
        self.core: BatchedCore = env.core
        self.config = cfg = MOPPOConfig.load(config)
        self.device = agent_device(self.core.device, device, "MOPPO")
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)

        core = self.core
        self.num_envs = core.num_envs
        self.objective_names = list(core.objectives.names)
        self.k = k = len(self.objective_names)
        self.obs_dim = obs_dim = int(core.single_observation_space.shape[0])
        self.action_space = core.single_action_space
        self.mask_dim = mask_dim(self.action_space)
        self.has_masks = core.action_masks() is not None
        hidden = tuple(cfg.hidden_sizes)

        def torso() -> PreferenceTorso:
            # an MLP encoder reads the preference beside the observation (see PreferenceTorso)
            kind = "mlp" if cfg.encoder == "items" else cfg.encoder  # with per-item actors the critic is an MLP
            at_input = kind == "mlp"
            width = obs_dim + k if at_input else obs_dim
            encoder = build_encoder(kind, width, core.observation_layout, hidden, cfg.attention)
            return PreferenceTorso(encoder, k, hidden[1:] or hidden[:1], preference_at_input=at_input)

        actor_torso = torso()
        encoder = actor_torso.encoder
        if cfg.encoder == "items":
            self.actor: Actor | PointerActor | OrderDecisionActor | ItemOrderActor = self._item_actor(core, cfg)
        elif (
            cfg.pointer
            and isinstance(encoder, SlotAttentionEncoder)
            and isinstance(self.action_space, spaces.Discrete)
            and int(self.action_space.n) > encoder.num_slots
        ):
            self.actor = PointerActor(actor_torso, int(self.action_space.n)).to(self.device)
        elif (
            cfg.pointer
            and isinstance(encoder, SlotAttentionEncoder)
            and isinstance(self.action_space, spaces.MultiDiscrete)
            and self.action_space.nvec.shape == (encoder.num_slots,)
            and bool((self.action_space.nvec == 2).all())
        ):
            self.actor = OrderDecisionActor(actor_torso, encoder.num_slots).to(self.device)
        else:
            self.actor = Actor(actor_torso, make_head(self.action_space, actor_torso.out_dim)).to(self.device)
        if cfg.imitation_balance > 0 and not isinstance(self.actor, PerItemChoiceActor):
            raise ConfigError(
                f"MOPPOConfig.imitation_balance: {cfg.imitation_balance} needs one decision per item "
                "(encoder: items, or the attention encoder with pointer: true on a per-slot 0/1 action); "
                f"this run's actor is a {type(self.actor).__name__}"
            )
        self.critic = VectorCritic(torso(), k).to(self.device)
        self.optimizer = torch.optim.Adam(
            [*self.actor.parameters(), *self.critic.parameters()], lr=cfg.learning_rate, eps=1e-5
        )

        declared = env.core.observation_scale() if cfg.obs_scale == "env" else None
        self.obs_norm = ObservationNormalizer(
            obs_dim, self.device, fixed_scale=None if declared is None else torch.as_tensor(declared)
        )
        self.ret_norm = ReturnNormalizer(self.num_envs, k, cfg.gamma, self.device)
        fixed = (
            None
            if cfg.preference is None
            else preference_from_weights(self.objective_names, cfg.preference, "MOPPOConfig.preference")
        )
        self.sampler = PreferenceSampler(k, self.device, cfg.dirichlet_alpha, fixed, cfg.corner_share)

        box = isinstance(self.action_space, spaces.Box)
        stored_shape: tuple[int, ...] = () if self.action_space.shape == () else tuple(self.action_space.shape)
        if box:
            assert isinstance(self.actor, Actor)
            stored_shape = (self.actor.head.dim,)
        self.storage = RolloutStorage(
            cfg.num_steps,
            self.num_envs,
            obs_dim,
            stored_shape,
            torch.float32 if box else torch.int64,
            k,
            self.mask_dim if self.has_masks else 0,
            self.device,
        )
        self._all_true = torch.ones(self.num_envs, self.mask_dim, dtype=torch.bool, device=self.device)
        self.global_step = 0
        self.num_updates = 0
        self.last_stats: dict[str, float] = {}
        self.imitation_steps = 0
        self.imitation_teacher: str | None = None
        # the policy imitation produced, frozen with its observation normaliser (with anchor_coef > 0)
        self._anchor: (
            tuple[Actor | PointerActor | OrderDecisionActor | ItemOrderActor, ObservationNormalizer] | None
        ) = None
        self._started = False
        self.episodes = EpisodeTracker(self.num_envs, k, self.device)

    def _item_actor(self, core: BatchedCore, cfg: MOPPOConfig) -> ItemOrderActor:
        """The per-item actor of ``encoder: items``; ConfigError where the environment has no items to share it over."""
        num_nodes, num_warehouses, num_skus = (
            getattr(core, a, None) for a in ("num_nodes", "num_warehouses", "num_skus")
        )
        space = self.action_space
        if (
            not isinstance(num_nodes, int)
            or not isinstance(num_warehouses, int)
            or not isinstance(num_skus, int)
            or not isinstance(space, spaces.MultiDiscrete)
            or space.nvec.shape != (num_nodes * num_skus,)
            or len(set(space.nvec.tolist())) != 1
        ):
            raise ConfigError(
                "MOPPOConfig.encoder: 'items' needs a Warehouse environment whose action is one ladder choice per node "
                f"and SKU (action.kind: ladder); this one's action space is {space}"
            )
        unknown = set(cfg.items) - {"hidden_sizes", "embed_dim", "head"}
        if unknown:
            raise ConfigError(f"MOPPOConfig.items: unknown {sorted(unknown)}; allowed: embed_dim, head, hidden_sizes")
        head = cfg.items.get("head", "logits")
        if head not in ("logits", "order_up_to"):
            raise ConfigError(f"MOPPOConfig.items.head: {head!r} is not one of 'logits', 'order_up_to'")
        blocks = {name: (s.start, s.stop, tuple(s.shape)) for name, s in core.observation_layout.segments.items()}
        order_up_to = self._order_up_to_inputs(core, cfg) if head == "order_up_to" else None
        return ItemOrderActor(
            blocks,
            num_nodes,
            num_warehouses,
            num_skus,
            int(space.nvec[0]),
            self.k,
            hidden_sizes=tuple(cfg.items.get("hidden_sizes", (64, 64))),
            embed_dim=int(cfg.items.get("embed_dim", 8)),
            order_up_to=order_up_to,
        ).to(self.device)

    @staticmethod
    def _order_up_to_inputs(core: Any, cfg: MOPPOConfig) -> dict[str, torch.Tensor]:
        """What the order-up-to head of :class:`ItemOrderActor` reads, in periods of each node's mean demand.

        The actor sees observations divided by the environment's fixed scales (``norm_obs`` with
        ``obs_scale: env``) or as they are (``norm_obs: false``); running statistics subtract a mean
        and rescale every entry differently as training goes, so no fixed sum of entries is the
        inventory position and they are refused.
        """
        if cfg.norm_obs and cfg.obs_scale != "env":
            raise ConfigError(
                "MOPPOConfig.items.head: 'order_up_to' reads the inventory position from fixed observation scales; "
                f"obs_scale is {cfg.obs_scale!r} (use obs_scale: env, or norm_obs: false)"
            )
        entries = getattr(core, "inventory_position_entries", None)
        scale = core.observation_scale() if cfg.norm_obs else None
        if entries is None or (cfg.norm_obs and scale is None):
            raise ConfigError(
                "MOPPOConfig.items.head: 'order_up_to' needs an environment that declares its inventory position "
                "and observation scales (Warehouse)"
            )
        index, sign = entries()
        mean = np.maximum(np.asarray(core.node_mean, dtype=np.float64), 1e-6)  # (N, S) units per period
        per_entry = np.ones(index.shape) if scale is None else np.asarray(scale, dtype=np.float64)[index]
        weight = sign * per_entry / mean[:, :, None]
        ladder = np.asarray(core.ladder_units, dtype=np.float64) / mean[:, :, None]
        # start by covering the mean demand over the lead time and the period (the textbook base-stock level)
        target = np.asarray(core.lead_time_periods, dtype=np.float64) + 1.0
        return {
            "position_index": torch.as_tensor(index, dtype=torch.int64),
            "position_weight": torch.as_tensor(weight, dtype=torch.float32),
            "ladder_periods": torch.as_tensor(ladder, dtype=torch.float32),
            "target_init": torch.as_tensor(target, dtype=torch.float32),
        }

    # ------------------------------------------------------------------------------------------ acting
    def _normalize(self, obs: torch.Tensor, norm: ObservationNormalizer | None = None) -> torch.Tensor:
        """``obs`` through ``norm`` (default: the running normaliser), or as is with ``norm_obs`` off."""
        return (self.obs_norm if norm is None else norm).normalize(obs) if self.config.norm_obs else obs

    # ------------------------------------------------------------------------------------------ rollout
    @torch.inference_mode()
    def _start(self) -> None:
        """Seed every environment of the batch and draw the first preferences."""
        n = self.num_envs
        seeds = TRAINING.spread(self.config.seed, n)  # never a validation or test episode
        self.obs = self.core.reset(seeds=seeds)
        self.preference = self.sampler.sample(n)
        self.episodes.episode_return = torch.zeros(n, self.k, device=self.device)
        self.episodes.episode_length = torch.zeros(n, device=self.device)
        self._started = True

    @torch.inference_mode()
    def _restart(self) -> None:
        """New episodes for the whole batch, continuing each env's seed stream.

        Used when the environment was stepped or reset by someone else since the last
        rollout (an evaluation on the training env, for instance): the episodes the agent
        was playing are gone, so it starts fresh ones rather than learn from a mismatch.
        """
        self.obs = self.core.reset()
        self.preference = self.sampler.sample(self.num_envs)
        self.episodes.episode_return = torch.zeros_like(self.episodes.episode_return)
        self.episodes.episode_length = torch.zeros_like(self.episodes.episode_length)
        self.ret_norm.returns = torch.zeros_like(self.ret_norm.returns)

    def _reset_stats(self) -> None:
        self.episodes.clear_finished()

    @torch.inference_mode()
    def _collect(self, teacher: Any = None) -> None:
        """Fill the rollout storage with ``num_steps`` batched steps (no host sync on a GPU).

        Runs in inference mode, like the environment views and :func:`~paretochain.evaluate.rollout.rollout`,
        so that the core's state tensors may be shared with them. With a ``teacher`` (see
        :meth:`imitate`) the teacher's actions are taken and stored, and the step counter
        of training does not advance.
        """
        cfg, core, st = self.config, self.core, self.storage
        on_cpu = self.device.type == "cpu"
        for t in range(cfg.num_steps):
            if cfg.norm_obs:
                self.obs_norm.update(self.obs)
            obs_n = self._normalize(self.obs)
            masks = core.action_masks() if self.has_masks else None
            mask = self._all_true if masks is None else masks
            if teacher is None:
                action, stored, logp = self.actor.sample(obs_n, self.preference, mask)
                if self._anchor is not None:
                    anchor, anchor_norm = self._anchor
                    greedy = anchor(self._normalize(self.obs, anchor_norm), self.preference, mask)
                    st.anchor_actions[t] = greedy.reshape(st.actions.shape[1:])
            else:
                action = teacher.act(self.obs, self.preference, masks).to(self.device, torch.int64)
                try:  # a refused action would have probability 0 under the masked policy
                    core.check_action(action)
                except ActionError as exc:
                    raise ActionError(
                        f"MOPPO.imitate: the teacher {type(teacher).__name__} took an action the environment refuses: {exc}"
                    ) from None
                stored, logp = action.reshape(st.actions.shape[1:]), torch.zeros_like(st.logprobs[t])
            st.obs[t] = obs_n
            st.preferences[t] = self.preference
            st.actions[t] = stored
            st.logprobs[t] = logp
            st.values[t] = self.critic(obs_n, self.preference)
            if st.masks is not None:
                st.masks[t] = mask

            out = core.step(action, check=False)
            done = out.terminated | out.truncated
            reward = out.reward.to(torch.float32)
            self.episodes.record(reward, done, self.preference)  # episode statistics, on the device

            scaled = self.ret_norm(reward, done) if cfg.norm_return else reward
            # bootstrap truncated (not terminated) episodes from the value of their final observation
            cut = out.truncated & ~out.terminated
            if episodes_may_have_ended(core, cut, sync=on_cpu):
                final_v = self.critic(self._normalize(out.obs), self.preference)
                scaled = scaled + cfg.gamma * final_v * cut.unsqueeze(1).float()
            st.rewards[t] = scaled
            st.dones[t] = done

            # autoreset, as the vector view does it, and a new preference for every new episode
            step_end = autoreset(core, out.obs, out.terminated, out.truncated, sync=on_cpu)
            self.obs = step_end.obs
            if step_end.reset:  # a fixed horizon ends every episode at once: all preferences are drawn anew
                self.preference = (
                    self.sampler.sample(self.num_envs)
                    if core.fixed_horizon
                    else self.sampler.resample(self.preference, done)
                )
        if teacher is None:
            self.global_step += cfg.num_steps * self.num_envs
        else:
            self.imitation_steps += cfg.num_steps * self.num_envs

    # ------------------------------------------------------------------------------------------ update
    def _update(self, imitation: bool = False) -> dict[str, torch.Tensor]:
        """One PPO update on the stored rollout; with ``imitation`` the policy loss is the
        negative log-likelihood of the stored (teacher's) actions instead, without entropy bonus,
        over ``imitation_epochs`` passes."""
        cfg, st = self.config, self.storage
        epochs = cfg.imitation_epochs if imitation and cfg.imitation_epochs is not None else cfg.update_epochs
        with torch.no_grad():
            next_value = self.critic(self._normalize(self.obs), self.preference)
            st.finish(next_value, cfg.gamma, cfg.gae_lambda)
        b = st.flat()
        scalar_adv = (b["advantages"] * b["preferences"]).sum(-1)
        if cfg.preference_adv_scale and self.sampler.fixed is None and self.k > 1:
            scalar_adv = scalar_adv / preference_adv_std(b["advantages"], b["preferences"])
        n = scalar_adv.shape[0]
        mb_size = max(1, n // cfg.num_minibatches)
        masks = b.get("masks")
        params = [*self.actor.parameters(), *self.critic.parameters()]
        anchored = not imitation and self._anchor is not None
        # class-balanced cloning weighs each per-item teacher choice (None: every sample alike)
        weights = self._imitation_weights(b["actions"], masks) if imitation and cfg.imitation_balance > 0 else None
        names: tuple[str, ...] = (
            ("teacher_probability",) if imitation else ("approx_kl", "old_approx_kl", "clip_fraction")
        )
        names += ("anchor_nll",) if anchored else ()
        sums = {name: torch.zeros((), device=self.device) for name in ("policy", "value", "entropy", *names)}
        count = 0
        for _ in range(epochs):
            perm = torch.randperm(n, device=self.device)
            kl_epoch = torch.zeros((), device=self.device)
            for start in range(0, n, mb_size):
                idx = perm[start : start + mb_size]
                obs, pref = b["obs"][idx], b["preferences"][idx]
                mask = self._all_true[:1].expand(idx.numel(), -1) if masks is None else masks[idx]
                if weights is not None:
                    item_logp, entropy = self.actor.evaluate_items(obs, pref, b["actions"][idx], mask)  # type: ignore[union-attr]
                    new_logp = item_logp.sum(-1)
                else:
                    new_logp, entropy = self.actor.evaluate(obs, pref, b["actions"][idx], mask)
                log_ratio = new_logp - b["logprobs"][idx]
                ratio = log_ratio.exp()
                if weights is not None:  # class-balanced cloning of the teacher's per-item choices
                    pg_loss = -(weights[idx] * item_logp).sum(-1).mean()
                elif imitation:  # behaviour cloning of the stored (teacher's) actions
                    pg_loss = -new_logp.mean()
                else:
                    adv = scalar_adv[idx]
                    if cfg.norm_adv and idx.numel() > 1:
                        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                    pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean()

                new_v = self.critic(obs, pref)
                ret = b["returns"][idx]
                if cfg.clip_vloss:
                    old_v = b["values"][idx]
                    clipped = old_v + (new_v - old_v).clamp(-cfg.clip_coef, cfg.clip_coef)
                    v_loss = 0.5 * torch.max((new_v - ret).square(), (clipped - ret).square()).mean()
                else:
                    v_loss = 0.5 * (new_v - ret).square().mean()
                ent = entropy.mean()
                loss = pg_loss + cfg.vf_coef * v_loss - (0.0 if imitation else cfg.ent_coef) * ent
                if anchored:  # behaviour cloning of the frozen imitated policy's greedy actions
                    anchor_logp, _ = self.actor.evaluate(obs, pref, b["anchor_actions"][idx], mask)
                    anchor_nll = -anchor_logp.mean()
                    loss = loss + cfg.anchor_coef * anchor_nll

                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                self.optimizer.step()

                with torch.no_grad():
                    sums["policy"] += pg_loss.detach()
                    sums["value"] += v_loss.detach()
                    sums["entropy"] += ent.detach()
                    if imitation:  # stored log-probabilities are 0: the ratio is the teacher action's probability
                        sums["teacher_probability"] += ratio.mean()
                    else:
                        approx_kl = ((ratio - 1) - log_ratio).mean()
                        kl_epoch = approx_kl
                        sums["approx_kl"] += approx_kl
                        sums["old_approx_kl"] += (-log_ratio).mean()
                        sums["clip_fraction"] += ((ratio - 1).abs() > cfg.clip_coef).float().mean()
                    if anchored:
                        sums["anchor_nll"] += anchor_nll.detach()
                count += 1
            if not imitation and cfg.target_kl is not None and float(kl_epoch) > cfg.target_kl:
                break
        if not imitation:
            self.num_updates += 1
        means = {name: v / max(count, 1) for name, v in sums.items()}
        return {**means, **self._explained_variance(b["values"], b["returns"])}

    def _imitation_weights(self, actions: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
        """Weights ``(n, items)`` of the rollout's per-item teacher choices for class-balanced cloning.

        An item decision the mask leaves open weighs ``share ** -imitation_balance``, where
        ``share`` is its choice's share of all open decisions in the rollout; forced decisions
        weigh 0 (their log-probability is 0 anyway). Scaled so that the open decisions weigh
        one each on average, as in plain cloning.
        """
        choices = int(np.max(self.action_space.nvec))  # type: ignore[attr-defined]
        actions = actions.long()
        n, items = actions.shape
        if masks is None:
            open_ = torch.ones(n, items, dtype=torch.bool, device=actions.device)
        else:
            open_ = masks.to(torch.bool).reshape(n, items, choices).sum(-1) > 1
        counts = torch.zeros(choices, device=actions.device).index_add_(
            0, actions[open_], torch.ones(int(open_.sum()), device=actions.device)
        )
        share = counts / counts.sum().clamp(min=1.0)
        per_choice = torch.where(counts > 0, share.clamp(min=1e-12).pow(-self.config.imitation_balance), 0.0)
        weights = torch.where(open_, per_choice[actions], 0.0)
        return weights * (open_.sum() / weights.sum().clamp(min=1e-12))

    def _explained_variance(self, values: torch.Tensor, returns: torch.Tensor) -> dict[str, torch.Tensor]:
        """``1 - Var(returns - values) / Var(returns)`` of the rollout's value predictions, per objective and averaged.

        1 is a perfect critic, 0 one that predicts the mean. An objective whose returns do
        not vary in the rollout has nothing to explain and is left out (one host sync per update).
        """
        with torch.no_grad():
            var_returns = returns.var(0)
            per_objective = 1.0 - (returns - values).var(0) / var_returns.clamp(min=1e-12)
            varies = (var_returns > 0).tolist()
        out = {
            f"explained_variance/{name}": per_objective[i] for i, name in enumerate(self.objective_names) if varies[i]
        }
        if any(varies):
            out["explained_variance"] = per_objective[torch.as_tensor(varies, device=values.device)].mean()
        return out

    def _set_learning_rate(self) -> None:
        cfg = self.config
        set_learning_rate(self.optimizer, cfg.learning_rate, cfg.anneal_lr, self.global_step, cfg.total_env_steps)

    # ------------------------------------------------------------------------------------------ training loop
    def learn(
        self,
        num_env_steps: int,
        logger: Logger | None = None,
        callback: Callable[[dict[str, float]], bool] | None = None,
    ) -> dict[str, float]:
        """Train for at least ``num_env_steps`` more environment steps (whole rollouts); call again to continue.

        Args:
            num_env_steps: environment steps to add (rounded up to whole rollouts of
                ``num_steps x num_envs``).
            logger: receives ``charts/SPS``, ``charts/episode_return/<objective>``,
                ``charts/scalarised_return``, ``charts/learning_rate`` and ``losses/*``
                every ``log_interval`` updates.
            callback: called with the same statistics (plus ``global_step``) at every
                log; returning ``False`` stops training after that update.

        Returns:
            the statistics of the latest log.
        """
        logger = logger or NullLogger()
        if not self._started:
            self._start()
        elif not torch.equal(self.core.observe(), self.obs):
            self._restart()
        per_update = self.config.num_steps * self.num_envs
        updates = max(1, math.ceil(num_env_steps / per_update))
        t0, step0 = time.perf_counter(), self.global_step
        stats: dict[str, float] = dict(self.last_stats)
        for i in range(updates):
            self._set_learning_rate()
            self._collect()
            losses = self._update()
            if (self.num_updates % self.config.log_interval == 0) or i == updates - 1:
                stats = self._log(losses, logger, time.perf_counter() - t0, self.global_step - step0)
                t0, step0 = time.perf_counter(), self.global_step
                if callback is not None and callback(stats) is False:
                    break
        return stats

    @property
    def num_env_steps(self) -> int:
        """Environment steps trained so far, summed over the batch (:attr:`global_step`; imitation not counted)."""
        return self.global_step

    @property
    def update_env_steps(self) -> int:
        """Environment steps of one rollout (``num_steps x num_envs``): :meth:`learn` trains in whole rollouts."""
        return self.config.num_steps * self.num_envs

    @property
    def fixed_preference(self) -> np.ndarray | None:
        """The preference every episode is trained at (``preference`` in the config), or None when sampled."""
        fixed = self.sampler.fixed
        return None if fixed is None else np.asarray(fixed.detach().cpu().numpy(), dtype=np.float64)

    def imitate(
        self,
        teacher: Any,
        num_env_steps: int,
        logger: Logger | None = None,
        callback: Callable[[dict[str, float]], bool] | None = None,
    ) -> MOPPO:
        """Warm-start from a teacher policy (behaviour cloning) before :meth:`learn`.

        The teacher (the policy contract: ``act(obs, preference, action_mask)``, for
        instance a baseline of :mod:`paretochain.agents.baselines`) drives this agent's
        environment for ``num_env_steps`` steps, rollout by rollout. After each rollout
        the actor is fitted to the teacher's actions (negative log-likelihood, with the
        preferences drawn as in training, which the teacher is given: most baselines ignore them,
        ``best_fixed_price_per_preference`` reads them) and the vector
        critic to the returns the teacher earned, with the update's minibatches and
        ``imitation_epochs`` and ``imitation_learning_rate`` (by default the update's
        epochs and learning rate). The observation and return normalisers learn from these
        steps too. The steps do not count towards :attr:`global_step` (the learning
        rate schedule of :meth:`learn`); :attr:`imitation_steps` counts them.

        With ``anchor_coef > 0`` the actor as imitation leaves it is frozen (with its
        observation normaliser) as an anchor: :meth:`learn` then adds ``anchor_coef`` times
        the negative log-likelihood of the anchor's greedy action in every visited state
        to the loss, a pull back towards the imitated decisions that keeps PPO from
        drifting into a collapse.

        Only for discrete actions (``Discrete``, ``MultiDiscrete``). Every teacher action
        is checked against the space and the masks (:class:`~paretochain.errors.ActionError`
        otherwise).

        Args:
            teacher: the policy to imitate.
            num_env_steps: environment steps of teacher play (rounded up to whole rollouts).
            logger: receives ``imitation/*`` (the teacher's episode returns, the losses
                and the mean probability the actor gives the teacher's action).
            callback: called with the same statistics (plus ``imitation_step``) after every
                ``log_interval`` rollouts; returning ``False`` stops.
        """
        if isinstance(self.action_space, spaces.Box):
            raise ValueError("MOPPO.imitate: behaviour cloning needs discrete actions; this environment's are a Box")
        logger = logger or NullLogger()
        if not self._started:
            self._start()
        elif not torch.equal(self.core.observe(), self.obs):
            self._restart()
        self._reset_stats()
        rollouts = max(1, math.ceil(num_env_steps / (self.config.num_steps * self.num_envs)))
        self.imitation_teacher = type(teacher).__name__
        imitation_lr = self.config.imitation_learning_rate
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.learning_rate if imitation_lr is None else imitation_lr
        for i in range(rollouts):
            self._collect(teacher)
            losses = self._update(imitation=True)
            if (i + 1) % self.config.log_interval == 0 or i == rollouts - 1:
                stats: dict[str, float] = {"imitation_step": float(self.imitation_steps)}
                count = float(self.episodes.finished_count)
                if count > 0:
                    for name, value in zip(self.objective_names, (self.episodes.finished_return / count).tolist()):
                        stats[f"imitation/episode_return/{name}"] = value
                stats.update({f"imitation/{name}": float(value) for name, value in losses.items()})
                self._reset_stats()
                for tag, value in stats.items():
                    if tag != "imitation_step":
                        logger.scalar(tag, value, self.imitation_steps)
                if callback is not None and callback(stats) is False:
                    break
        self._reset_stats()
        if self.config.anchor_coef > 0:
            self._set_anchor()
        return self

    def _set_anchor(self, state: Mapping[str, Any] | None = None) -> None:
        """Freeze a copy of the actor and its observation normaliser (or load ``state`` into one) as the anchor."""
        anchor = copy.deepcopy(self.actor).eval().requires_grad_(False)
        anchor_norm = copy.deepcopy(self.obs_norm)
        if state is not None:
            anchor.load_state_dict(state["actor"])
            anchor_norm.load_state_dict(state["obs_norm"])
        self._anchor = (anchor, anchor_norm)
        if self.storage.anchor_actions is None:
            self.storage.anchor_actions = torch.zeros_like(self.storage.actions)

    def _log(self, losses: dict[str, torch.Tensor], logger: Logger, seconds: float, steps: int) -> dict[str, float]:
        step = self.global_step
        stats: dict[str, float] = {"global_step": float(step), "charts/SPS": steps / max(seconds, 1e-9)}
        stats["charts/learning_rate"] = float(self.optimizer.param_groups[0]["lr"])
        episodes = self.episodes
        count = float(episodes.finished_count)
        if count > 0:
            mean = (episodes.finished_return / count).tolist()
            for name, value in zip(self.objective_names, mean):
                stats[f"charts/episode_return/{name}"] = value
            stats["charts/scalarised_return"] = float(episodes.finished_scalarised) / count
            stats["charts/episodes"] = count
            stats["charts/episode_length"] = float(episodes.finished_length) / count
        self._reset_stats()
        for name, value in losses.items():
            stats[f"losses/{name}"] = float(value)
        for tag, value in stats.items():
            if tag != "global_step":
                logger.scalar(tag, value, step)
        self.last_stats = stats
        return stats

    # ------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: networks, optimiser, normalisers, RNG states, env state, counters.

        The environment part is every tensor attribute of the batched core (keys,
        counters, stock, pipeline, ...) plus ``host_t``, so a resumed run continues the
        same episodes with the same draws.
        """
        if not self._started:
            self._start()
        rng = host_rng_state()
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        # a snapshot: parameters and optimiser moments are copied, not referenced
        return copy.deepcopy(
            {
                "format": "paretochain.mo_ppo/1",
                "config": self.config.model_dump(mode="json"),
                "actor": self.actor.state_dict(),
                "critic": self.critic.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "obs_norm": self.obs_norm.state_dict(),
                "ret_norm": self.ret_norm.state_dict(),
                "rng": rng,
                "env": self.core.state_dict(),
                "obs": self.obs.clone(),
                "preference": self.preference.clone(),
                "episode_return": self.episodes.episode_return.clone(),
                "episode_length": self.episodes.episode_length.clone(),
                "global_step": self.global_step,
                "num_updates": self.num_updates,
                "imitation": {"steps": self.imitation_steps, "teacher": self.imitation_teacher},
                "anchor": None
                if self._anchor is None
                else {"actor": self._anchor[0].state_dict(), "obs_norm": self._anchor[1].state_dict()},
            }
        )

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output (the environment must have the same config and batch size)."""
        if state.get("format") != "paretochain.mo_ppo/1":
            raise PolicyFileError(
                f"not an MO-PPO checkpoint (format {state.get('format')!r}, expected 'paretochain.mo_ppo/1')"
            )
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.obs_norm.load_state_dict(state["obs_norm"])
        self.ret_norm.load_state_dict(state["ret_norm"])
        self.core.load_state_dict(state["env"])
        dev = self.device
        self.obs = state["obs"].to(dev).clone()
        self.preference = state["preference"].to(dev).clone()
        self.episodes.episode_return = state["episode_return"].to(dev).clone()
        # states written before episode lengths were tracked count them from the resume
        length = state.get("episode_length")
        self.episodes.episode_length = (
            torch.zeros(self.num_envs, device=dev) if length is None else length.to(dev).clone()
        )
        self.global_step = int(state["global_step"])
        self.num_updates = int(state["num_updates"])
        imitation = state.get("imitation", {})
        self.imitation_steps = int(imitation.get("steps", 0))
        self.imitation_teacher = imitation.get("teacher")
        anchor = state.get("anchor")
        self._anchor = None
        if anchor is not None:
            self._set_anchor(anchor)
        self._started = True
        rng = state["rng"]
        set_host_rng_state(rng)
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)

    # ------------------------------------------------------------------------------------------ export
    def export_module(self) -> torch.nn.Module:
        """A deterministic, TorchScript-able ``forward(obs, preference, action_mask) -> action`` on the CPU.

        Observation normalisation (the current running statistics) and the action
        post-processing (squash and rescale to the Box bounds, or the masked argmax)
        are inside. See :func:`paretochain.agents.export.export_policy`.
        """
        from paretochain.agents.export import PolicyModule

        mean, std = self.obs_norm.scale()
        clip = self.obs_norm.clip
        if not self.config.norm_obs:  # the observation as the agent acts on it: unscaled and unclipped
            mean, std, clip = torch.zeros_like(mean), torch.ones_like(std), float("inf")
        return PolicyModule(self.actor, mean, std, clip)

    def export_metadata(self) -> dict[str, Any]:
        """What :func:`~paretochain.agents.export.export_policy` writes about this agent."""
        fixed = None if self.sampler.fixed is None else self.sampler.fixed.tolist()
        return {
            "agent": "MOPPO",
            "agent_config": self.config.model_dump(mode="json"),
            "training": {
                "global_step": self.global_step,
                "num_updates": self.num_updates,
                "num_envs": self.num_envs,
                "imitation_steps": self.imitation_steps,
                "imitation_teacher": self.imitation_teacher,
            },
            "preference": {
                "semantics": (
                    "weights over the objectives, in objective order, non-negative and summing to 1; during training "
                    "they weighed per-objective advantages computed on rewards divided by the running std of each "
                    "objective's discounted return"
                    + ("" if self.config.norm_return else " (return normalisation off: raw rewards)")
                ),
                "trained_on": "fixed"
                if fixed is not None
                else f"Dirichlet(alpha={self.config.dirichlet_alpha}) per episode, a corner of the simplex in a share "
                f"{self.config.corner_share} of them",
                "default": fixed if fixed is not None else [1.0 / self.k] * self.k,
                "return_std": self.ret_norm.std().tolist() if self.config.norm_return else [1.0] * self.k,
            },
        }
