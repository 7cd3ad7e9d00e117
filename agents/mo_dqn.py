"""Multi-objective DQN: Envelope Q-learning (Yang, Sun and Narasimhan, NeurIPS 2019).

One network learns a **vector** Q-function ``Q(s, a, w)`` (one value per objective)
for every preference ``w`` on the simplex at once. Acting with a preference ``w``
picks ``argmax_a w . Q(s, a, w)``. The *envelope* target of a transition
``(s, a, r, s')`` for a preference ``w`` looks at a set ``W`` of sampled preferences
and takes the best continuation under ``w`` over all of them:

    (a*, w*) = argmax_{a', w' in W} w . Q(s', a', w')
    y        = r + gamma * (1 - terminated) * Q_target(s', a*, w*)

(double Q-learning: the online network picks ``(a*, w*)``, the target network values
it). The loss mixes the vector regression ``|y - Q(s, a, w)|^2`` with the scalar one
``(w . y - w . Q(s, a, w))^2`` along a homotopy ``(1 - lambda) L_A + lambda L_B``, with
``lambda`` growing from 0 to ``final_homotopy`` over ``homotopy_steps`` env steps. The paper
writes L_B with an absolute value (``scalar_loss="absolute"``); that regresses on the
*median* of the target instead of its mean, which the Bellman equation needs, and biases
the values wherever per-step rewards are skewed (a lost-sales penalty that falls in few periods).

``MultiDiscrete`` actions use action branching (Tavakoli et al., AAAI 2018): a shared
trunk, one head per action dimension, each head a vector Q over its own choices; each
branch gets its own envelope target from the shared reward. Masks (where the family
has them) restrict the greedy and random choices and the target's ``a*``.

Everything runs on the device of the batched env: the rollout, the replay buffer and
the updates; the host reads statistics once per logging interval.

Scaling: observations are divided by the fixed scales the environment declares
(``obs_scale="env"``; running statistics of everything collected where it declares
none or with ``obs_scale="running"``; exported with the policy), and each
objective's reward is divided by the root mean square of its per-step reward over
the first ``learning_starts`` steps,
frozen then so that the targets do not move. A preference therefore weighs the
*scaled* objectives; one-objective preferences (the simplex corners) mean the same
either way.

Read top to bottom: the config, the networks, the replay buffer, the agent
(acting, collecting, the envelope update, ``learn``), checkpoints and export.
"""

import copy
import random
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from gymnasium import spaces
from pydantic import Field, model_validator
from torch import nn

from paretochain.agents.config_words import refuse_renamed_fields
from paretochain.agents.export import PolicyModule
from paretochain.agents.logging import Logger, NullLogger
from paretochain.agents.networks import BranchingVectorQNetwork, EnvelopeQActor, branch_index
from paretochain.agents.normalization import ObservationNormalizer
from paretochain.agents.policy import set_learning_rate
from paretochain.agents.preferences import PreferenceAgentConfig, PreferenceSampler, preference_from_weights
from paretochain.agents.rng_state import host_rng_state, set_host_rng_state
from paretochain.envs.episodes import EpisodeTracker, autoreset
from paretochain.envs.registration import resolve_device
from paretochain.envs.views import BatchedVectorEnv
from paretochain.errors import ConfigError, PolicyFileError

STATE_FORMAT = "paretochain.mo_dqn/1"


class MODQNConfig(PreferenceAgentConfig):
    """Hyperparameters of Envelope MO-DQN. Step counts are environment steps summed over the batch."""

    hidden_sizes: list[int] = Field(
        default=[128, 128], min_length=1, description="hidden sizes of the shared trunk over (observation, preference)"
    )
    branch_hidden: int = Field(default=64, ge=1, description="hidden size inside each action branch's head")
    learning_rate: float = Field(default=5e-4, gt=0, le=1, description="Adam step size (at the start, with anneal_lr)")
    anneal_lr: bool = Field(
        default=False,
        description="decay the step size linearly towards 0 over total_env_steps (to 1/1000 of it at most), so the last updates average the replay's noise instead of following it",
    )
    total_env_steps: int = Field(
        default=1_000_000, ge=1, description="planned run length in env steps, used only by the step-size schedule"
    )
    gamma: float = Field(default=0.99, gt=0, le=1, description="discount factor")
    buffer_size: int = Field(default=100_000, ge=1, description="replay capacity in transitions (on the env's device)")
    batch_size: int = Field(
        default=64, ge=1, description="transitions per gradient step (each paired with every sampled preference)"
    )
    learning_starts: int = Field(
        default=2_000,
        ge=1,
        description="steps collected before the first update; normaliser and reward scales are frozen then",
    )
    train_every: int = Field(default=1, ge=1, description="vector steps between updates once learning")
    gradient_steps: int = Field(default=1, ge=1, description="gradient steps per update")
    target_update_interval: int = Field(default=250, ge=1, description="gradient steps between target network updates")
    tau: float = Field(default=1.0, gt=0, le=1, description="target update rate (1 = copy)")
    num_preference_samples: int = Field(
        default=4, ge=1, description="size of the preference set W of the envelope target"
    )
    final_homotopy: float = Field(default=1.0, ge=0, le=1, description="final weight lambda of the scalar loss L_B")
    scalar_loss: Literal["squared", "absolute"] = Field(
        default="squared",
        description="L_B on the scalarised error: 'squared' regresses on the mean target (the Bellman equation's expectation); 'absolute' (the paper's |.|) on its median, which biases the values where rewards are skewed",
    )
    homotopy_steps: int = Field(default=100_000, ge=1, description="steps over which lambda grows linearly from 0")
    epsilon_start: float = Field(default=1.0, ge=0, le=1, description="initial exploration rate")
    epsilon_final: float = Field(default=0.05, ge=0, le=1, description="final exploration rate")
    exploration_steps: int = Field(default=20_000, ge=1, description="steps over which epsilon decays linearly")
    dirichlet_alpha: float = Field(
        default=1.0, gt=0, description="Dirichlet concentration of the per-episode behaviour preferences (1 = uniform)"
    )
    preference: dict[str, float] | list[float] | None = Field(
        default=None,
        description="fixed preference (by objective name or in order) to train for alone (W is then just it); None samples one per episode",
    )
    obs_scale: Literal["env", "running"] = Field(
        default="env",
        description="with norm_obs: 'env' divides by the fixed scales the environment declares (Warehouse: stock and demand in periods of mean demand) and falls back to running statistics where it declares none; 'running' uses running statistics of all collected observations",
    )
    scale_rewards: bool = Field(
        default=True,
        description="divide each objective's reward by its per-step root mean square over the first learning_starts steps",
    )
    clip_observations: float = Field(default=10.0, gt=0, description="normalised observations are clipped to +-this")
    double_q: bool = Field(default=True, description="online network selects (a*, w*), target network values it")
    max_grad_norm: float = Field(default=10.0, gt=0, description="gradient norm clip")
    seed: int = Field(default=0, ge=0, description="seed of the generators and the environments")
    log_interval_steps: int = Field(
        default=10_000, ge=1, description="steps between logged statistics (and callback calls)"
    )

    _renamed = model_validator(mode="before")(refuse_renamed_fields)


# ---------------------------------------------------------------------------------- replay buffer
class DeviceReplayBuffer:
    """A ring of transitions kept as tensors on one device; adding and sampling never sync with the host.

    Stores ``obs``, ``action`` ``(D,)``, vector ``reward`` ``(k,)``, ``next_obs`` (the
    observation before any reset), ``terminated`` and the next state's action mask.
    """

    def __init__(
        self, capacity: int, obs_dim: int, action_dims: int, k: int, mask_width: int, device: torch.device
    ) -> None:
        self.capacity, self.device = capacity, device
        self.obs = torch.zeros((capacity, obs_dim), device=device)
        self.next_obs = torch.zeros((capacity, obs_dim), device=device)
        self.action = torch.zeros((capacity, action_dims), dtype=torch.int64, device=device)
        self.reward = torch.zeros((capacity, k), device=device)
        self.terminated = torch.zeros(capacity, device=device)
        self.next_mask = torch.ones((capacity, mask_width), dtype=torch.bool, device=device)
        self.pos = 0
        self.size = 0

    def add(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        reward: torch.Tensor,
        next_obs: torch.Tensor,
        terminated: torch.Tensor,
        next_mask: torch.Tensor | None,
    ) -> None:
        n = obs.shape[0]
        if n > self.capacity:
            raise ConfigError(f"buffer_size ({self.capacity}) must hold at least one batch of {n} transitions")
        idx = (self.pos + torch.arange(n, device=self.device)) % self.capacity
        self.obs[idx] = obs
        self.next_obs[idx] = next_obs
        self.action[idx] = action
        self.reward[idx] = reward
        self.terminated[idx] = terminated.to(torch.float32)
        if next_mask is not None:
            self.next_mask[idx] = next_mask
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, n: int) -> tuple[torch.Tensor, ...]:
        idx = torch.randint(0, self.size, (n,), device=self.device)
        return (
            self.obs[idx],
            self.action[idx],
            self.reward[idx],
            self.next_obs[idx],
            self.terminated[idx],
            self.next_mask[idx],
        )

    def state_dict(self) -> dict[str, Any]:
        fields = ("obs", "next_obs", "action", "reward", "terminated", "next_mask")
        state: dict[str, Any] = {f: getattr(self, f)[: self.size].clone() for f in fields}
        state.update(pos=self.pos, size=self.size)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        size = int(state["size"])
        for f in ("obs", "next_obs", "action", "reward", "terminated", "next_mask"):
            getattr(self, f)[:size] = state[f].to(self.device)
        self.pos, self.size = int(state["pos"]), size


# ---------------------------------------------------------------------------------- the agent
class MODQNAgent:
    """Envelope Q-learning on a batched paretochain environment.

    Args:
        env: a batched env from ``make_vec(env_id, num_envs, device, config, tensors=True,
            check_actions=False)`` with Discrete or MultiDiscrete actions; the agent steps
            its core directly and keeps everything on the core's device.
        config: an :class:`MODQNConfig`, a mapping, a YAML path or ``None`` for the defaults.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``; must match the env's device.
    """

    def __init__(
        self,
        env: BatchedVectorEnv,
        config: MODQNConfig | dict[str, Any] | str | None = None,
        device: str | torch.device = "auto",
    ) -> None:
        self.config = cfg = MODQNConfig.load(config)
        self.env = env
        self.core = core = env.core
        self.device = resolve_device(device)
        if self.device.type != core.device.type:
            raise ConfigError(
                f"MO-DQN device {self.device} differs from the environment's {core.device}; build the env with make_vec(..., device={str(self.device)!r})"
            )
        space = core.single_action_space
        if isinstance(space, spaces.Discrete):
            self.nvec, self.discrete = [int(space.n)], True
        elif isinstance(space, spaces.MultiDiscrete):
            self.nvec, self.discrete = [int(n) for n in space.nvec], False
        else:
            raise ConfigError(
                f"MO-DQN needs Discrete or MultiDiscrete actions, this environment has {space} (use MO-PPO for Box)"
            )
        self.objective_names = core.objectives.names
        self.k = k = len(self.objective_names)
        obs_dim = int(np.prod(core.single_observation_space.shape))
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)

        dev = self.device
        self.q_net = BranchingVectorQNetwork(obs_dim, k, self.nvec, cfg.hidden_sizes, cfg.branch_hidden).to(dev)
        self.target_net = copy.deepcopy(self.q_net)
        self.target_net.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=cfg.learning_rate)
        declared = core.observation_scale() if cfg.obs_scale == "env" else None
        self.obs_norm = ObservationNormalizer(
            obs_dim,
            dev,
            clip=cfg.clip_observations,
            fixed_scale=None if declared is None else torch.as_tensor(declared),
        )
        self.reward_scale = torch.ones(k, device=dev)
        self._reward_stats = torch.zeros(3, k, device=dev, dtype=torch.float64)  # count, sum, sum of squares
        self.frozen = False
        self.mask_width = int(sum(self.nvec))
        self.index = branch_index(self.nvec).to(dev)
        self.buffer = DeviceReplayBuffer(cfg.buffer_size, obs_dim, len(self.nvec), k, self.mask_width, dev)
        fixed = (
            None
            if cfg.preference is None
            else preference_from_weights(self.objective_names, cfg.preference, "preference")
        )
        self.preferences = PreferenceSampler(k, dev, alpha=cfg.dirichlet_alpha, fixed=fixed)
        self._fixed_preference = fixed

        self.num_env_steps = 0
        self.num_vector_steps = 0
        self.num_updates = 0
        seeds = np.random.SeedSequence(cfg.seed).generate_state(core.num_envs, np.uint32).tolist()
        with torch.inference_mode():
            self._obs = core.reset(seeds=[int(s) for s in seeds])
            self._preference = self.preferences.sample(core.num_envs)
            self.episodes = EpisodeTracker(core.num_envs, k, dev)
        self._reset_stats()

    # ------------------------------------------------------------------ acting
    def _normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs`` through the observation normaliser, or as is with ``norm_obs`` off."""
        return self.obs_norm.normalize(obs) if self.config.norm_obs else obs

    def _allowed(self, flat_mask: torch.Tensor | None, n: int) -> torch.Tensor:
        """``(n, D, n_max)`` bool: which choice of each branch is allowed."""
        if flat_mask is None:
            flat_mask = torch.ones((n, self.mask_width), dtype=torch.bool, device=self.device)
        padded = torch.cat([flat_mask.to(torch.bool), torch.zeros_like(flat_mask[:, :1], dtype=torch.bool)], dim=1)
        return padded[:, self.index]

    def _greedy(self, obs: torch.Tensor, preference: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        q = self.q_net(self._normalize(obs), preference)
        score = (q * preference[:, None, None, :]).sum(-1)
        return score.masked_fill(~allowed, float("-inf")).argmax(-1)  # (B, D)

    def _to_env(self, action: torch.Tensor) -> torch.Tensor:
        return action[:, 0] if self.discrete else action

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Greedy actions under ``preference`` (the configured fixed preference, else equal weights, when ``None``), within ``action_mask``."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        if x.dim() == 1:
            x = x.unsqueeze(0)
        n = x.shape[0]
        if preference is None:
            fixed = self.preferences.fixed
            w = (
                fixed.expand(n, self.k)
                if fixed is not None
                else torch.full((n, self.k), 1.0 / self.k, device=self.device)
            )
        else:
            w = torch.as_tensor(preference, dtype=torch.float32, device=self.device).expand(n, self.k)
        mask = None if action_mask is None else torch.as_tensor(action_mask, device=self.device)
        return self._to_env(self._greedy(x, w, self._allowed(mask, n)))

    def epsilon(self) -> float:
        cfg = self.config
        share = min(1.0, self.num_env_steps / cfg.exploration_steps)
        return cfg.epsilon_start + share * (cfg.epsilon_final - cfg.epsilon_start)

    def homotopy(self) -> float:
        return self.config.final_homotopy * min(1.0, self.num_env_steps / self.config.homotopy_steps)

    # ------------------------------------------------------------------ collecting
    @torch.inference_mode()
    def _collect_step(self) -> None:
        """One vector step of epsilon-greedy behaviour; the transition goes to the device buffer."""
        core, n = self.core, self.core.num_envs
        obs, pref = self._obs, self._preference
        allowed = self._allowed(core.action_masks(), n)
        greedy = self._greedy(obs, pref, allowed)
        random_choice = torch.rand(allowed.shape, device=self.device).masked_fill(~allowed, -1.0).argmax(-1)
        explore = torch.rand((n, 1), device=self.device) < self.epsilon()
        action = torch.where(explore, random_choice, greedy)
        out = core.step(self._to_env(action), check=False)
        self.buffer.add(obs, action, out.reward, out.obs, out.terminated, core.action_masks())
        if self.config.norm_obs:
            self.obs_norm.update(obs)
        if not self.frozen:
            r = out.reward.to(torch.float64)
            self._reward_stats += torch.stack([torch.ones_like(r).sum(0), r.sum(0), r.square().sum(0)])

        step_end = autoreset(core, out.obs, out.terminated, out.truncated, sync=self.device.type != "cuda")
        self.episodes.record(out.reward, step_end.done, pref)
        self._obs = step_end.obs
        self._preference = self.preferences.resample(pref, step_end.done)
        self.num_env_steps += n

    def _freeze_scales(self) -> None:
        """End of the warm-up: freeze the per-objective reward scales."""
        if self.config.scale_rewards:
            count, _, squares = self._reward_stats
            rms = (squares / count.clamp(min=1)).sqrt()
            self.reward_scale = torch.where(rms > 1e-8, rms, torch.ones_like(rms)).to(torch.float32)
        self.frozen = True

    # ------------------------------------------------------------------ the envelope update
    def envelope_target(
        self,
        reward: torch.Tensor,
        next_obs: torch.Tensor,
        terminated: torch.Tensor,
        next_allowed: torch.Tensor,
        weights: torch.Tensor,
    ) -> torch.Tensor:
        """Envelope targets ``y[b, j, d]`` ``(B, J, D, k)`` for every transition ``b``, preference ``w_j`` and branch ``d``.

        ``(a*, w*) = argmax over a' (allowed) and w_l in weights of w_j . Q_online(s', a', w_l)``
        (``Q_target`` without double Q-learning), then ``y = r + gamma (1 - terminated)
        Q_target(s', a*, w*)``. ``reward`` is already scaled; ``next_obs`` normalised.
        """
        b, j = reward.shape[0], weights.shape[0]
        s_rep = next_obs.repeat_interleave(j, dim=0)  # row b*J + l pairs s'_b with w_l
        w_rep = weights.repeat(b, 1)
        q_target = self.target_net(s_rep, w_rep)
        q_select = self.q_net(s_rep, w_rep) if self.config.double_q else q_target
        d, a, k = q_select.shape[1:]
        q_select = q_select.view(b, j, d, a, k)
        q_target = q_target.view(b, j, d, a, k)
        score = torch.einsum("blhak,jk->bjhla", q_select, weights)  # (B, J_pref, D, L_cand, A)
        score = score.masked_fill(~next_allowed[:, None, :, None, :], float("-inf"))
        best = score.reshape(b, j, d, j * a).argmax(-1)  # flat (l, a) per (b, j, d)
        l_star, a_star = best // a, best % a
        values = q_target.permute(0, 2, 1, 3, 4).reshape(b, 1, d, j * a, k).expand(b, j, d, j * a, k)
        picked = values.gather(3, (l_star * a + a_star)[..., None, None].expand(b, j, d, 1, k)).squeeze(3)
        not_done = (1.0 - terminated)[:, None, None, None]
        return reward[:, None, None, :] + self.config.gamma * not_done * picked

    def _set_learning_rate(self) -> None:
        cfg = self.config
        set_learning_rate(self.optimizer, cfg.learning_rate, cfg.anneal_lr, self.num_env_steps, cfg.total_env_steps)

    def _update(self) -> None:
        cfg = self.config
        obs, action, reward, next_obs, terminated, next_mask = self.buffer.sample(cfg.batch_size)
        b = obs.shape[0]
        weights = (
            self.preferences.sample(cfg.num_preference_samples)
            if self.preferences.fixed is None
            else self.preferences.fixed[None, :]
        )
        j = weights.shape[0]
        obs_n, next_n = self._normalize(obs), self._normalize(next_obs)
        reward = reward / self.reward_scale
        with torch.no_grad():
            y = self.envelope_target(reward, next_n, terminated, self._allowed(next_mask, b), weights)  # (B, J, D, k)
        q = self.q_net(obs_n.repeat_interleave(j, dim=0), weights.repeat(b, 1))  # (B*J, D, A, k)
        d, k = q.shape[1], q.shape[3]
        idx = action.repeat_interleave(j, dim=0)[:, :, None, None].expand(b * j, d, 1, k)
        q_sa = q.gather(2, idx).squeeze(2).view(b, j, d, k)
        w = weights[None, :, None, :]
        loss_a = (q_sa - y).square().sum(-1).mean()
        scalar_error = (q_sa * w).sum(-1) - (y * w).sum(-1)
        loss_b = (scalar_error.square() if cfg.scalar_loss == "squared" else scalar_error.abs()).mean()
        lam = self.homotopy()
        loss = (1.0 - lam) * loss_a + lam * loss_b
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.q_net.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.num_updates += 1
        if self.num_updates % cfg.target_update_interval == 0:
            with torch.no_grad():
                for p, tp in zip(self.q_net.parameters(), self.target_net.parameters()):
                    tp.lerp_(p, cfg.tau)
        self._loss_sums += torch.stack([loss_a.detach(), loss_b.detach(), q_sa.detach().mean()])
        self._loss_count += 1

    # ------------------------------------------------------------------ training loop
    def learn(
        self,
        num_env_steps: int,
        logger: Logger | None = None,
        callback: Callable[[dict[str, float]], bool] | None = None,
    ) -> dict[str, float]:
        """Train for ``num_env_steps`` more environment steps (whole vector steps); callable repeatedly.

        Args:
            num_env_steps: steps summed over the batch.
            logger: receives ``charts/SPS``, ``charts/episode_return/<objective>``,
                ``charts/scalarised_return``, ``charts/epsilon`` and ``losses/*`` every
                ``log_interval_steps``.
            callback: called with the same statistics; returning False stops training.

        Returns:
            the latest statistics.
        """
        cfg = self.config
        out = logger if logger is not None else NullLogger()
        goal = self.num_env_steps + int(num_env_steps)
        self._last_log_time = time.time()
        self._last_log_step = self.num_env_steps
        stats = self.latest_stats
        while self.num_env_steps < goal:
            self._collect_step()
            self.num_vector_steps += 1
            if self.num_env_steps >= cfg.learning_starts:
                if not self.frozen:
                    self._freeze_scales()
                if self.num_vector_steps % cfg.train_every == 0:
                    self._set_learning_rate()
                    for _ in range(cfg.gradient_steps):
                        self._update()
            if self.num_env_steps - self._last_log_step >= cfg.log_interval_steps or self.num_env_steps >= goal:
                stats = self._flush(out)
                if callback is not None and not callback(stats):
                    break
        return stats

    @property
    def update_env_steps(self) -> int:
        """Environment steps of one vector step (``num_envs``): :meth:`learn` trains in whole vector steps."""
        return int(self.core.num_envs)

    @property
    def fixed_preference(self) -> np.ndarray | None:
        """The preference every episode is trained at (``preference`` in the config), or None when sampled."""
        return None if self._fixed_preference is None else self._fixed_preference.copy()

    def _reset_stats(self) -> None:
        dev = self.device
        self.episodes.clear_finished()
        self._loss_sums = torch.zeros(3, device=dev)
        self._loss_count = 0
        self.latest_stats: dict[str, float] = {}

    def _flush(self, out: Logger) -> dict[str, float]:
        """Read the device accumulators once, log them and start new ones."""
        now, step = time.time(), self.num_env_steps
        stats: dict[str, float] = {
            "step": float(step),
            "SPS": (step - self._last_log_step) / max(now - self._last_log_time, 1e-9),
        }
        stats["epsilon"], stats["homotopy"] = self.epsilon(), self.homotopy()
        episodes = self.episodes
        count = float(episodes.finished_count)
        if count > 0:
            returns = (episodes.finished_return / count).tolist()
            for name, value in zip(self.objective_names, returns):
                stats[f"episode_return/{name}"] = value
            stats["scalarised_return"] = float(episodes.finished_scalarised) / count
            stats["episodes"] = count
            stats["episode_length"] = float(episodes.finished_length) / count
        if self._loss_count:
            qa, qb, qmean = (self._loss_sums / self._loss_count).tolist()
            stats.update({"loss/vector": qa, "loss/scalar": qb, "loss/q_mean": qmean})
        for key, value in stats.items():
            if key in ("step", "episodes"):
                continue
            tag = "losses/" + key[len("loss/") :] if key.startswith("loss/") else "charts/" + key
            out.scalar(tag, value, step)
        self._reset_stats()
        self.latest_stats = stats
        self._last_log_step, self._last_log_time = step, now
        return stats

    # ------------------------------------------------------------------ checkpoints and export
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: networks, optimiser, scales, buffer, generators, env state, counters."""
        rng = host_rng_state()
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "format": STATE_FORMAT,
            "config": self.config.model_dump(mode="json"),
            "q_net": copy.deepcopy(self.q_net.state_dict()),
            "target_net": copy.deepcopy(self.target_net.state_dict()),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "normalizer": self.obs_norm.state_dict(),
            "reward_scale": self.reward_scale.clone(),
            "reward_stats": self._reward_stats.clone(),
            "frozen": self.frozen,
            "buffer": self.buffer.state_dict(),
            "rng": rng,
            "env": self.core.state_dict(),
            "rollout": {
                "obs": self._obs.clone(),
                "preference": self._preference.clone(),
                "episode_return": self.episodes.episode_return.clone(),
                "episode_length": self.episodes.episode_length.clone(),
            },
            "num_env_steps": self.num_env_steps,
            "num_updates": self.num_updates,
            "num_vector_steps": self.num_vector_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from an agent with the same env and network shapes."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            got = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise PolicyFileError(f"not an MO-DQN agent state (expected format {STATE_FORMAT!r}, got {got!r})")
        try:
            self.q_net.load_state_dict(state["q_net"])
            self.target_net.load_state_dict(state["target_net"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.obs_norm.load_state_dict(state["normalizer"])
        except (RuntimeError, KeyError) as exc:
            raise PolicyFileError(f"MO-DQN state does not fit this agent's networks: {exc}") from None
        dev = self.device
        self.reward_scale = state["reward_scale"].to(dev).clone()
        self._reward_stats = state["reward_stats"].to(dev).clone()
        self.frozen = bool(state["frozen"])
        self.buffer.load_state_dict(state["buffer"])
        self.core.load_state_dict(state["env"])
        roll = state["rollout"]
        self._obs, self._preference = roll["obs"].to(dev).clone(), roll["preference"].to(dev).clone()
        self.episodes.episode_return = roll["episode_return"].to(dev).clone()
        # states written before episode lengths were tracked count them from the resume
        length = roll.get("episode_length")
        self.episodes.episode_length = (
            torch.zeros_like(self.episodes.episode_return[:, 0]) if length is None else length.to(dev).clone()
        )
        self.num_env_steps, self.num_updates = int(state["num_env_steps"]), int(state["num_updates"])
        self.num_vector_steps = int(state["num_vector_steps"])
        rng = state["rng"]
        set_host_rng_state(rng)
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self._reset_stats()

    def export_metadata(self) -> dict[str, Any]:
        """What :func:`~paretochain.agents.export.export_policy` writes about this agent."""
        fixed = self.preferences.fixed
        return {
            "agent": "MODQN",
            "agent_config": self.config.model_dump(mode="json"),
            "training": {
                "global_step": self.num_env_steps,
                "num_updates": self.num_updates,
                "num_envs": self.core.num_envs,
            },
            "preference": {
                "semantics": (
                    "weights over the objectives, in objective order, non-negative and summing to 1; the policy maximises "
                    "w . Q(s, a, w), where Q was learned on per-step rewards divided by 'reward_scale' (each objective's "
                    "root mean square per step during the warm-up)"
                ),
                "trained_on": "fixed"
                if fixed is not None
                else f"Dirichlet(alpha={self.config.dirichlet_alpha}) per episode",
                "default": fixed.tolist() if fixed is not None else [1.0 / self.k] * self.k,
                "reward_scale": self.reward_scale.tolist(),
            },
        }

    def export_module(self) -> nn.Module:
        """A copy of the greedy policy, ``forward(obs, preference, action_mask)``, TorchScript-able, on the CPU in eval mode."""
        mean, std = self.obs_norm.scale()
        clip = self.obs_norm.clip
        if not self.config.norm_obs:
            mean, std, clip = torch.zeros_like(mean), torch.ones_like(std), float("inf")
        return PolicyModule(EnvelopeQActor(self.q_net, self.nvec, self.discrete), mean, std, clip).cpu().eval()
