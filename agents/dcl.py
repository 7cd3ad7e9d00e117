"""Deep Controlled Learning: approximate policy iteration with actions labelled by simulation.

Read top to bottom: the config, then the agent (where its states come from, how a
state's candidate actions are valued by rollouts, the classification update), then
state and export. The idea is that of Temizöz et al., "Deep Controlled Learning for
inventory control" (EJOR 2025): a policy improvement step needs no value function when
the simulator can be branched from any state.

One iteration:

1. **States.** The current policy (the network, greedy) plays ``num_envs`` training
   episodes from their start; after ``warmup_periods`` periods, so that the arbitrary
   starting stock is forgotten, the state of every env is kept every ``state_interval``
   periods, ``states_per_env`` times. Each env plays at its own preference (drawn per
   iteration from ``Dirichlet(dirichlet_alpha)``, a share ``corner_share`` of them at a
   corner of the simplex: one objective only), or at the fixed ``preference``.
2. **Rollouts.** Each kept state is branched in the batched core into
   ``candidates x scenarios`` copies (:meth:`~paretochain.envs.state.BatchState.repeat`
   by row, then :meth:`~paretochain.envs.state.BatchState.rekeyed` with one salt per
   scenario): copy ``(a, r)`` takes candidate action ``a``, then follows the current policy
   for ``rollout_horizon - 1`` more periods. Copies of one scenario share their random
   numbers across the candidate actions (common random numbers: the comparison of two
   actions sees the same demand), scenarios are independent. All copies of all states
   step together in one core, on the agent's device.
3. **Labels.** A rollout's value is the discounted sum of its vector rewards, each
   objective divided by its ``reward_scale`` (the mean absolute per-period reward of
   that objective in the first iteration's rollouts, so that preference weights compare
   objectives on like scales), weighted by the state's preference; averaged over the
   scenarios it values the candidate. The best candidate is the state's label; with
   ``significance > 0`` only when its gain over the policy's own action exceeds that many
   standard errors of their paired difference, else the policy's action stays the label
   (argmax over noisy estimates favours the candidates whose estimates vary most).
4. **Classification.** The preference-conditioned network is trained to pick the labels
   (cross-entropy, ``epochs`` passes of minibatches), continuing from its current
   weights, and becomes the policy the next iteration follows.

**Starting policy.** The first iteration follows the network as it is: untrained, or,
with the run config's ``imitation`` section, fitted to a tuned heuristic's decisions
(:meth:`DCLAgent.imitate`, e.g. ``capped_base_stock`` on lost sales). The packaged
lost-sales config starts from capped base-stock, so its first iteration is a policy
improvement step on that heuristic.

**Environment steps** (:attr:`DCLAgent.num_env_steps`) count every simulated period:
the training episodes and every rollout copy's periods.

Candidate actions are every action of a ``Discrete`` space, or with ``candidate_window``
the ``2 * candidate_window + 1`` actions whose indices surround the current policy's
(for ordered ladders such as order quantities); masked actions are never labelled.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from gymnasium import spaces
from pydantic import Field

from paretochain.agents.logging import Logger, NullLogger
from paretochain.agents.networks import Actor, PreferenceTorso, build_encoder, make_head, mask_dim
from paretochain.agents.normalization import ObservationNormalizer
from paretochain.agents.policy import PreferenceConditionedActing, agent_device
from paretochain.agents.preferences import PreferenceAgentConfig, PreferenceSampler, preference_from_weights
from paretochain.agents.rng_state import host_rng_state, set_host_rng_state
from paretochain.envs.core import BatchedCore
from paretochain.envs.state import BatchState
from paretochain.envs.views import BatchedVectorEnv
from paretochain.errors import ConfigError, PolicyFileError
from paretochain.seeds import TRAINING

FORMAT = "paretochain.dcl/1"
#: the most copies one iteration's rollouts may step together (states x candidates x scenarios)
MAX_ROLLOUT_ENVS = 4_000_000


class DCLConfig(PreferenceAgentConfig):
    """Hyperparameters of :class:`DCLAgent` (every field loads from YAML; unknown fields are errors)."""

    warmup_periods: int = Field(
        default=30, ge=0, description="periods each training episode plays before its states are kept"
    )
    states_per_env: int = Field(default=1, ge=1, description="states kept per training episode and iteration")
    state_interval: int = Field(default=10, ge=1, description="periods between two kept states of one episode")
    rollout_horizon: int = Field(
        default=30, ge=1, description="periods of each rollout: the candidate action, then the current policy"
    )
    scenarios: int = Field(default=16, ge=1, description="independent demand scenarios per candidate action")
    candidate_window: int | None = Field(
        default=None,
        ge=0,
        description="value only the actions whose index is within this of the current policy's (ordered ladders); None values every action",
    )
    significance: float = Field(
        default=0.0,
        ge=0,
        description="a candidate replaces the current policy's action as a state's label only when its mean gain over it exceeds this many standard errors of their paired difference over the scenarios (0: the plain best)",
    )
    gamma: float = Field(default=1.0, gt=0, le=1, description="discount of the rollout rewards (1: a plain sum)")
    learning_rate: float = Field(default=1e-3, gt=0, description="Adam step size of the classification")
    epochs: int = Field(
        default=8, ge=1, description="passes over the labelled states after each iteration (and once after imitation)"
    )
    memory_iterations: int = Field(
        default=1,
        ge=1,
        description="the network is trained on the labelled states of this many latest iterations (1: the latest only)",
    )
    minibatch_size: int = Field(default=256, ge=1, description="labelled states per gradient step")
    max_grad_norm: float = Field(default=1.0, gt=0, description="global gradient-norm clip")
    obs_scale: Literal["env", "running"] = Field(
        default="env",
        description="with norm_obs: 'env' divides by the fixed scales the environment declares (running statistics where it declares none); 'running' uses running mean/std of the kept states",
    )
    hidden_sizes: list[int] = Field(
        default=[64, 64],
        min_length=1,
        description="MLP widths: the first encodes the observation, the rest follow the preference concatenation",
    )
    corner_share: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="share of sampled preferences put at a corner of the simplex (one objective only, drawn uniformly)",
    )
    seed: int = Field(default=0, ge=0, description="seeds the network, the preferences and the training episodes")


@dataclass
class LabelledStates:
    """States kept from the training episodes and their labels.

    Attributes:
        state: the environments' states, ``S`` rows.
        obs: their observations, float32 ``(S, obs_dim)``.
        preference: the preference each state is valued at, float32 ``(S, k)``.
        mask: the allowed actions, bool ``(S, n)``.
        policy_action: the current policy's action, int64 ``(S,)``.
        label: the best candidate action by rollouts, int64 ``(S,)`` (filled by :meth:`DCLAgent.label`).
        values: the scalarised value of each candidate ``(S, A)`` (``-inf`` where masked).
        candidates: the candidate actions ``(S, A)``.
    """

    state: BatchState
    obs: torch.Tensor
    preference: torch.Tensor
    mask: torch.Tensor
    policy_action: torch.Tensor
    label: torch.Tensor | None = None
    values: torch.Tensor | None = None
    candidates: torch.Tensor | None = None


class DCLAgent(PreferenceConditionedActing):
    """Deep Controlled Learning on a batched environment with a ``Discrete`` action space and a fixed horizon.

    Args:
        env: a batched view from ``make_vec(..., tensors=True, check_actions=False)``; its core
            plays the training episodes (the agent owns it and resets it every iteration).
        config: hyperparameters (a :class:`DCLConfig`, a mapping, a YAML path or ``None``).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``; must be the environment's device (``"auto"``
            takes the environment's). The rollouts run there too.

    Raises:
        ConfigError: the action space is not ``Discrete``, the episodes have no fixed horizon, the
            kept states and their rollouts do not fit in an episode, or the rollouts would step
            more than :data:`MAX_ROLLOUT_ENVS` copies at once.
    """

    def __init__(
        self,
        env: BatchedVectorEnv,
        config: DCLConfig | Mapping[str, Any] | str | None = None,
        device: str | torch.device = "auto",
    ) -> None:
        self.env = env
        self.core: BatchedCore = env.core
        self.config = cfg = DCLConfig.load(config)
        self.device = agent_device(self.core.device, device, "DCLAgent")
        core = self.core
        space = core.single_action_space
        if not isinstance(space, spaces.Discrete):
            raise ConfigError(f"agent dcl: needs a Discrete action space (every action is valued), this one is {space}")
        if not core.fixed_horizon:
            raise ConfigError("agent dcl: needs episodes of a fixed horizon (the rollouts branch mid-episode states)")
        self.num_actions = int(space.n)
        self.last_kept_period = cfg.warmup_periods + (cfg.states_per_env - 1) * cfg.state_interval
        if self.last_kept_period + cfg.rollout_horizon > core.horizon:
            raise ConfigError(
                f"agent dcl: warmup_periods + (states_per_env - 1) * state_interval + rollout_horizon = "
                f"{self.last_kept_period + cfg.rollout_horizon} periods, more than the episode's horizon of "
                f"{core.horizon}: the last rollouts would run past the end of the episode"
            )
        self.num_candidates = (
            self.num_actions if cfg.candidate_window is None else min(2 * cfg.candidate_window + 1, self.num_actions)
        )
        self.num_envs = core.num_envs
        self.num_states = self.num_envs * cfg.states_per_env
        self.rollout_envs = self.num_states * self.num_candidates * cfg.scenarios
        if self.rollout_envs > MAX_ROLLOUT_ENVS:
            raise ConfigError(
                f"agent dcl: num_envs x states_per_env x candidates x scenarios = {self.rollout_envs:,} rollout copies, "
                f"more than {MAX_ROLLOUT_ENVS:,}; lower one of them"
            )
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)

        self.objective_names = list(core.objectives.names)
        self.k = k = len(self.objective_names)
        self.obs_dim = obs_dim = int(core.single_observation_space.shape[0])
        self.mask_dim = mask_dim(space)
        hidden = tuple(cfg.hidden_sizes)
        torso = PreferenceTorso(
            build_encoder("mlp", obs_dim, core.observation_layout, hidden), k, hidden[1:] or hidden[:1]
        )
        self.actor = Actor(torso, make_head(space, torso.out_dim)).to(self.device)
        self.optimizer = torch.optim.Adam(self.actor.parameters(), lr=cfg.learning_rate)
        declared = core.observation_scale() if cfg.obs_scale == "env" else None
        self.obs_norm = ObservationNormalizer(
            obs_dim, self.device, fixed_scale=None if declared is None else torch.as_tensor(declared)
        )
        fixed = (
            None
            if cfg.preference is None
            else preference_from_weights(self.objective_names, cfg.preference, "DCLConfig.preference")
        )
        self.sampler = PreferenceSampler(k, self.device, cfg.dirichlet_alpha, fixed)
        #: the divisor of each objective's reward when rollouts are scalarised; set by the first iteration
        self.reward_scale: torch.Tensor | None = None
        self._branches: BatchedCore | None = None  # the rollout core, built on first use
        self.global_step = 0
        self.iteration = 0
        self.imitation_steps = 0
        self.imitation_teacher: str | None = None
        self._seeded = False
        self.last_stats: dict[str, float] = {}
        #: (obs, preference, mask, label) of the latest ``memory_iterations`` iterations
        self.memory: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    # ------------------------------------------------------------------------------------------ acting
    def _normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return self.obs_norm.normalize(obs) if self.config.norm_obs else obs

    def _masks(self, core: BatchedCore, n: int) -> torch.Tensor:
        masks = core.action_masks()
        if masks is None:
            return torch.ones(n, self.mask_dim, dtype=torch.bool, device=self.device)
        return masks.to(self.device, torch.bool)

    def sample_preferences(self, n: int) -> torch.Tensor:
        """``n`` preferences ``(n, k)``: the fixed one, or Dirichlet draws with a ``corner_share`` of corners."""
        pref = self.sampler.sample(n)
        if self.sampler.fixed is None and self.config.corner_share > 0 and self.k > 1:
            corner = torch.rand(n, device=self.device) < self.config.corner_share
            which = torch.randint(self.k, (n,), device=self.device)
            one_hot = torch.nn.functional.one_hot(which, self.k).to(pref.dtype)
            pref = torch.where(corner.unsqueeze(1), one_hot, pref)
        return pref

    # ------------------------------------------------------------------------------------------ states
    def _new_episodes(self) -> torch.Tensor:
        """Every training env starts a new episode (the first ones on the run's training seeds)."""
        if not self._seeded:
            self._seeded = True
            return self.core.reset(seeds=TRAINING.spread(self.config.seed, self.num_envs))
        return self.core.reset()

    @torch.inference_mode()
    def collect_states(self, policy: Any = None, every_period: bool = False) -> tuple[LabelledStates, dict[str, float]]:
        """Play one training episode per env up to the last kept state; the kept states (unlabelled).

        ``policy`` (the policy contract) replaces the network, as in :meth:`imitate`; ``every_period``
        keeps the state of every period after the warm-up. Also returns the mean per-period reward of
        each objective after the warm-up (``charts/period_reward/*``).
        """
        cfg = self.config
        core = self.core
        n = self.num_envs
        obs = self._new_episodes()
        preference = self.sample_preferences(n)
        kept: list[tuple[BatchState, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        rewards = torch.zeros(self.k, dtype=torch.float64, device=self.device)
        counted = 0
        for t in range(self.last_kept_period + 1):
            mask = self._masks(core, n)
            action = (self if policy is None else policy).act(obs, preference, mask)
            if policy is not None:
                self._check_teacher_action(action)
            if t >= cfg.warmup_periods and (every_period or (t - cfg.warmup_periods) % cfg.state_interval == 0):
                kept.append((core.state.clone(), obs.clone(), preference, mask, action.clone()))
            if t == self.last_kept_period:
                break
            out = core.step(action, check=False)
            if t >= cfg.warmup_periods:
                rewards += out.reward.sum(0).double()
                counted += n
            obs = out.obs
        states = _concat_states([s for s, *_ in kept])
        batch = LabelledStates(
            state=states,
            obs=torch.cat([o for _, o, *_ in kept]),
            preference=torch.cat([p for *_, p, _, _ in kept]),
            mask=torch.cat([m for *_, m, _ in kept]),
            policy_action=torch.cat([a for *_, a in kept]),
        )
        stats: dict[str, float] = {}
        if counted:
            for name, value in zip(self.objective_names, (rewards / counted).tolist()):
                stats[f"charts/period_reward/{name}"] = value
        return batch, stats

    def _check_teacher_action(self, action: torch.Tensor) -> None:
        """A teacher's actions must lie in the space and the masks (ActionError otherwise)."""
        self.core.check_action(action)

    # ------------------------------------------------------------------------------------------ rollouts
    def candidates(self, policy_action: torch.Tensor) -> torch.Tensor:
        """The candidate actions of each state ``(S, A)``: every action, or a window around the policy's."""
        a = self.num_candidates
        offsets = torch.arange(a, device=policy_action.device)
        if self.config.candidate_window is None:
            return offsets.expand(policy_action.shape[0], a)
        low = (policy_action - self.config.candidate_window).clamp(0, self.num_actions - a)
        return low.unsqueeze(1) + offsets

    def _branch_core(self) -> BatchedCore:
        if self._branches is None:
            self._branches = type(self.core)(self.core.config, num_envs=self.rollout_envs, device=self.device)  # type: ignore[call-arg]
        return self._branches

    @torch.inference_mode()
    def label(self, batch: LabelledStates, salt_offset: int = 0, policy: Any = None) -> LabelledStates:
        """Value every candidate action of every state by rollouts and label the best (see the module docstring).

        Rollout copy ``(s, a, r)`` is row ``(s * A + a) * R + r``; scenario ``r`` of every state uses
        salt ``salt_offset + r``, so the same states and offset give the same labels again. After the
        candidate action the rollouts follow the network, or ``policy`` (the policy contract) when given.
        """
        cfg = self.config
        s_count, a_count, r_count = batch.state.batch_size, self.num_candidates, cfg.scenarios
        if s_count * a_count * r_count != self.rollout_envs:
            raise ValueError(f"label: {s_count} states given, this agent values {self.num_states} at a time")
        candidates = self.candidates(batch.policy_action)
        allowed = batch.mask.gather(1, candidates)  # (S, A)
        # a masked candidate is played as the policy's action (always allowed) and never labelled
        played = torch.where(allowed, candidates, batch.policy_action.unsqueeze(1))
        per_state = a_count * r_count
        rows = torch.arange(s_count, device=self.device).repeat_interleave(per_state)
        salts = (torch.arange(r_count, device=self.device) + salt_offset).repeat(s_count * a_count)
        core = self._branch_core()
        core.state = batch.state[rows].rekeyed(salts)
        preference = batch.preference.repeat_interleave(per_state, 0)
        returns = torch.zeros(self.rollout_envs, self.k, device=self.device)
        absolute = torch.zeros(self.k, dtype=torch.float64, device=self.device)
        action = played.repeat_interleave(r_count, 1).reshape(-1)
        discount = 1.0
        obs = torch.empty(0, device=self.device)  # the copies' observations from the second period on
        for h in range(cfg.rollout_horizon):
            if h > 0:
                action = (self if policy is None else policy).act(obs, preference, self._masks(core, self.rollout_envs))
            out = core.step(action, check=False)
            returns += discount * out.reward
            absolute += out.reward.abs().sum(0).double()
            discount *= cfg.gamma
            obs = out.obs
        if self.reward_scale is None:
            scale = (absolute / (self.rollout_envs * cfg.rollout_horizon)).to(torch.float32)
            self.reward_scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        total = (returns * (preference / self.reward_scale)).sum(1)
        per_scenario = total.view(s_count, a_count, r_count)
        values = torch.where(allowed, per_scenario.mean(2), torch.full((), -math.inf, device=self.device))
        # the gain of each candidate over the policy's own action, scenario by scenario (common random numbers)
        own = (candidates == batch.policy_action.unsqueeze(1)).float().argmax(1)
        gain = per_scenario - per_scenario[torch.arange(s_count, device=self.device), own].unsqueeze(1)
        best = values.argmax(1, keepdim=True)
        best_gain = gain.gather(1, best.unsqueeze(2).expand(-1, -1, r_count)).squeeze(1)  # (S, R)
        error = best_gain.std(1) / math.sqrt(r_count) if r_count > 1 else torch.zeros(s_count, device=self.device)
        convincing = best_gain.mean(1) > cfg.significance * error
        best_action = candidates.gather(1, best).squeeze(1)
        batch.values, batch.candidates = values, candidates
        batch.label = torch.where(convincing | (cfg.significance == 0), best_action, batch.policy_action)
        return batch

    # ------------------------------------------------------------------------------------------ classification
    def fit(
        self, obs: torch.Tensor, preference: torch.Tensor, mask: torch.Tensor, label: torch.Tensor
    ) -> dict[str, float]:
        """``epochs`` passes of cross-entropy on labelled states; the last pass's loss and accuracy."""
        cfg = self.config
        # copies made outside inference mode, so that autograd may use them
        obs, preference, mask, label = obs.clone(), preference.clone(), mask.clone(), label.clone()
        if cfg.norm_obs and not self.obs_norm.fixed:
            self.obs_norm.update(obs)
        x = self._normalize(obs)
        n = x.shape[0]
        size = min(cfg.minibatch_size, n)
        loss_sum = torch.zeros((), device=self.device)
        hits = torch.zeros((), device=self.device)
        for _ in range(cfg.epochs):
            loss_sum = torch.zeros((), device=self.device)
            hits = torch.zeros((), device=self.device)
            order = torch.randperm(n, device=self.device)
            for start in range(0, n, size):
                idx = order[start : start + size]
                logits = self.actor.head.masked_logits(self.actor.torso(x[idx], preference[idx]), mask[idx])[:, 0]
                loss = torch.nn.functional.cross_entropy(logits, label[idx])
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                loss_sum += loss.detach() * idx.numel()
                hits += (logits.detach().argmax(1) == label[idx]).sum()
        return {"losses/cross_entropy": float(loss_sum) / n, "losses/accuracy": float(hits) / n}

    # ------------------------------------------------------------------------------------------ training loop
    @property
    def update_env_steps(self) -> int:
        """Environment steps of one iteration: the training episodes' periods and every rollout copy's."""
        return self.num_envs * self.last_kept_period + self.rollout_envs * self.config.rollout_horizon

    @property
    def num_env_steps(self) -> int:
        """Environment steps simulated so far (training episodes and rollouts; imitation not counted)."""
        return self.global_step

    @property
    def fixed_preference(self) -> np.ndarray | None:
        """The preference every state is labelled at (``preference`` in the config), or None when sampled."""
        fixed = self.sampler.fixed
        return None if fixed is None else np.asarray(fixed.detach().cpu().numpy(), dtype=np.float64)

    def learn(
        self,
        num_env_steps: int,
        logger: Logger | None = None,
        callback: Callable[[dict[str, float]], bool] | None = None,
    ) -> dict[str, float]:
        """Run policy-improvement iterations for at least ``num_env_steps`` environment steps (whole iterations).

        Args:
            num_env_steps: environment steps to add (rounded up to whole iterations of :attr:`update_env_steps`).
            logger: receives, every iteration, ``charts/SPS``, ``charts/period_reward/<objective>`` (the
                current policy's mean reward per period after the warm-up), ``charts/label_agreement``
                (share of states whose label is the policy's own action), ``charts/value_gain`` (mean
                scalarised value of the label over the policy's action), ``losses/cross_entropy`` and
                ``losses/accuracy``.
            callback: called with the same statistics (plus ``global_step``) after every iteration;
                returning ``False`` stops.

        Returns:
            the statistics of the latest iteration.
        """
        logger = logger or NullLogger()
        iterations = max(1, math.ceil(num_env_steps / self.update_env_steps))
        stats = dict(self.last_stats)
        for _ in range(iterations):
            t0 = time.perf_counter()
            batch, stats = self.collect_states()
            self.label(batch, salt_offset=self.iteration * self.config.scenarios)
            assert batch.label is not None and batch.values is not None and batch.candidates is not None
            policy_column = (batch.candidates == batch.policy_action.unsqueeze(1)).float().argmax(1, keepdim=True)
            gain = batch.values.max(1).values - batch.values.gather(1, policy_column).squeeze(1)
            stats["charts/label_agreement"] = float((batch.label == batch.policy_action).float().mean())
            stats["charts/value_gain"] = float(gain[torch.isfinite(gain)].mean())
            self.memory = [*self.memory, (batch.obs, batch.preference, batch.mask, batch.label)]
            self.memory = self.memory[-self.config.memory_iterations :]
            stats.update(self.fit(*(torch.cat(part) for part in zip(*self.memory))))
            self.iteration += 1
            self.global_step += self.update_env_steps
            stats["charts/SPS"] = self.update_env_steps / max(time.perf_counter() - t0, 1e-9)
            stats["charts/iteration"] = float(self.iteration)
            for tag, value in stats.items():
                logger.scalar(tag, value, self.global_step)
            stats["global_step"] = float(self.global_step)
            self.last_stats = stats
            if callback is not None and callback(stats) is False:
                break
        return stats

    def imitate(
        self,
        teacher: Any,
        num_env_steps: int,
        logger: Logger | None = None,
        callback: Callable[[dict[str, float]], bool] | None = None,
    ) -> DCLAgent:
        """Fit the network to a teacher policy's decisions (behaviour cloning) before :meth:`learn`.

        The teacher (the policy contract, e.g. a tuned baseline) plays the training episodes; every
        period after ``warmup_periods`` up to the last kept state is a labelled example (the teacher's
        action, at the preference drawn for the episode, which the teacher ignores). Once the teacher
        has played, the network is fitted to all examples as after an iteration (``epochs`` passes). The steps count in :attr:`imitation_steps`, not in :attr:`num_env_steps`. The first
        iteration of :meth:`learn` then improves on (the network's copy of) the teacher.

        Raises:
            ActionError: a teacher action outside the space or the masks.
        """
        logger = logger or NullLogger()
        rounds = max(1, math.ceil(num_env_steps / (self.num_envs * max(self.last_kept_period, 1))))
        self.imitation_teacher = type(teacher).__name__
        examples = []
        for _ in range(rounds):
            batch, period = self.collect_states(policy=teacher, every_period=True)
            self.imitation_steps += self.num_envs * self.last_kept_period
            examples.append((batch.obs, batch.preference, batch.mask, batch.policy_action))
            stats: dict[str, float] = {"imitation_step": float(self.imitation_steps)}
            stats.update({f"imitation/{k.split('/', 1)[1]}": v for k, v in period.items()})
            if callback is not None and callback(stats) is False:
                break
        stats.update(
            {f"imitation/{k.split('/', 1)[1]}": v for k, v in self.fit(*(torch.cat(p) for p in zip(*examples))).items()}
        )
        for tag, value in stats.items():
            if tag != "imitation_step":
                logger.scalar(tag, value, self.imitation_steps)
        return self

    # ------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: network, optimiser, normaliser, reward scale, RNG, env, counters."""
        rng = host_rng_state()
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return copy.deepcopy(
            {
                "format": FORMAT,
                "config": self.config.model_dump(mode="json"),
                "actor": self.actor.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "obs_norm": self.obs_norm.state_dict(),
                "reward_scale": None if self.reward_scale is None else self.reward_scale.clone(),
                "rng": rng,
                "env": self.core.state_dict(),
                "seeded": self._seeded,
                "global_step": self.global_step,
                "iteration": self.iteration,
                "imitation": {"steps": self.imitation_steps, "teacher": self.imitation_teacher},
                "memory": [list(part) for part in self.memory],
            }
        )

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output (the environment must have the same config and batch size)."""
        if not isinstance(state, Mapping) or state.get("format") != FORMAT:
            got = state.get("format") if isinstance(state, Mapping) else type(state).__name__
            raise PolicyFileError(f"not a DCL checkpoint (format {got!r}, expected {FORMAT!r})")
        self.actor.load_state_dict(state["actor"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.obs_norm.load_state_dict(state["obs_norm"])
        scale = state["reward_scale"]
        if scale is not None and (not isinstance(scale, torch.Tensor) or scale.shape != (self.k,)):
            raise PolicyFileError(f"checkpoint reward_scale must be a tensor of {self.k} entries")
        self.reward_scale = None if scale is None else scale.to(self.device, torch.float32).clone()
        self.core.load_state_dict(state["env"])
        self._seeded = bool(state["seeded"])
        self.global_step = int(state["global_step"])
        self.iteration = int(state["iteration"])
        memory = state.get("memory", [])
        if not isinstance(memory, list) or not all(
            isinstance(part, (list, tuple)) and len(part) == 4 and all(isinstance(x, torch.Tensor) for x in part)
            for part in memory
        ):
            raise PolicyFileError("checkpoint memory must be a list of (obs, preference, mask, label) tensors")
        self.memory = [tuple(x.to(self.device).clone() for x in part) for part in memory]  # type: ignore[misc]
        imitation = state.get("imitation", {})
        self.imitation_steps = int(imitation.get("steps", 0))
        self.imitation_teacher = imitation.get("teacher")
        rng = state["rng"]
        set_host_rng_state(rng)
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)

    # ------------------------------------------------------------------------------------------ export
    def export_module(self) -> torch.nn.Module:
        """A deterministic, TorchScript-able ``forward(obs, preference, action_mask) -> action`` on the CPU."""
        from paretochain.agents.export import PolicyModule

        mean, std = self.obs_norm.scale()
        clip = self.obs_norm.clip
        if not self.config.norm_obs:
            mean, std, clip = torch.zeros_like(mean), torch.ones_like(std), float("inf")
        return PolicyModule(self.actor, mean, std, clip)

    def export_metadata(self) -> dict[str, Any]:
        """What :func:`~paretochain.agents.export.export_policy` writes about this agent."""
        fixed = None if self.sampler.fixed is None else self.sampler.fixed.tolist()
        scale = None if self.reward_scale is None else self.reward_scale.tolist()
        return {
            "agent": "DCL",
            "agent_config": self.config.model_dump(mode="json"),
            "training": {
                "global_step": self.global_step,
                "iterations": self.iteration,
                "num_envs": self.num_envs,
                "imitation_steps": self.imitation_steps,
                "imitation_teacher": self.imitation_teacher,
            },
            "preference": {
                "semantics": (
                    "weights over the objectives, in objective order, non-negative and summing to 1; during training "
                    "they weighed each objective's rollout return divided by reward_scale (its mean absolute reward "
                    "per period in the first iteration's rollouts)"
                ),
                "trained_on": "fixed"
                if fixed is not None
                else f"Dirichlet(alpha={self.config.dirichlet_alpha}) per episode, a share "
                f"{self.config.corner_share} at the corners",
                "default": fixed if fixed is not None else [1.0 / self.k] * self.k,
                "reward_scale": scale,
            },
        }


def _concat_states(states: list[BatchState]) -> BatchState:
    """The rows of several states of one family, one after the other."""
    first = states[0]
    if len(states) == 1:
        return first
    fields: dict[str, Any] = {}
    for name, value in first.items():
        if isinstance(value, dict):
            fields[name] = {key: torch.cat([getattr(s, name)[key] for s in states]) for key in value}
        else:
            fields[name] = torch.cat([getattr(s, name) for s in states])
    return type(first)(**fields)
