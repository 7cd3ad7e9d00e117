"""Stable-Baselines3 agents behind the shared agent interface.

:class:`SB3Agent` builds an SB3 PPO, DQN or sb3-contrib MaskablePPO model on a
batched environment (through :class:`~paretochain.agents.sb3.vec_env.CoreVecEnv`,
optionally inside SB3's ``VecNormalize``), with the vector reward scalarised by a
fixed preference, and exposes what every trainable agent of paretochain offers:

- ``learn(num_env_steps, logger, callback)``, callable repeatedly (SB3's
  ``reset_num_timesteps=False``);
- ``act(obs, preference=None, action_mask=None)`` on batched tensors (deterministic);
- ``state_dict()`` / ``load_state_dict(d)`` (tensors and plain data only: the policy's
  and optimiser's state dicts, SB3's counters, the replay buffer's arrays, the
  normaliser statistics, the random generators' states, the step counter; nothing is
  pickled, so a checkpoint cannot run code);
- ``export_module()``: a TorchScript-able module ``forward(obs, preference, action_mask)``
  with SB3's observation normalisation, the mask and the action clipping inside.

Masks: MaskablePPO samples within the masks; plain PPO and DQN do not know them, so
on a family with masks the adapter replaces a forbidden choice by the lowest-index
allowed one before stepping (``CoreVecEnv(replace_masked=True)``), and ``act`` and the
exported module take the argmax over allowed choices only.

SB3 agents are not preference-conditioned: ``act`` ignores ``preference`` (the
preference they serve is the fixed scalarisation of their config).

Resuming from a ``state_dict`` restores the model, optimiser, normaliser and
generators exactly; the environments are re-seeded deterministically from
``seed + step counter`` (episodes in progress when the state was taken start over).
"""

import copy
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from gymnasium import spaces
from pydantic import Field, model_validator
from sb3_contrib import MaskablePPO
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter
from stable_baselines3.common.logger import Logger as SB3Logger
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from torch import nn

from paretochain.agents.config_words import refuse_renamed_fields
from paretochain.agents.export import PolicyModule
from paretochain.agents.logging import Logger, NullLogger
from paretochain.agents.rng_state import host_rng_state, set_host_rng_state
from paretochain.agents.sb3.scalarize import Scalarization, make_scalarization
from paretochain.agents.sb3.vec_env import CoreVecEnv
from paretochain.envs.config import ConfigModel
from paretochain.envs.registration import resolve_device
from paretochain.envs.views import BatchedVectorEnv
from paretochain.errors import ConfigError, PolicyFileError

STATE_FORMAT = "paretochain.sb3/2"
ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "dqn": DQN, "maskable_ppo": MaskablePPO}


class SB3AgentConfig(ConfigModel):
    """Hyperparameters of an SB3 agent; the PPO ones apply to PPO and MaskablePPO."""

    algo: Literal["ppo", "dqn", "maskable_ppo"] = Field(
        default="ppo",
        description="SB3 PPO, SB3 DQN (Discrete only) or sb3-contrib MaskablePPO (Discrete/MultiDiscrete)",
    )
    weights: dict[str, float] | list[float] | None = Field(
        default=None, description="preference over the objectives, by name or in reward order; None = equal weights"
    )
    scalarization: Literal["linear", "chebyshev"] = Field(
        default="linear", description="how the vector reward becomes a scalar"
    )
    utopia: dict[str, float] | list[float] | None = Field(
        default=None, description="per-step utopia point (chebyshev only)"
    )
    rho: float = Field(default=0.0, ge=0, description="augmentation weight of the Chebyshev function")
    norm_obs: bool = Field(
        default=True, description="wrap in SB3's VecNormalize for observations (statistics exported with the policy)"
    )
    norm_return: bool = Field(
        default=True, description="scale rewards by VecNormalize's running std of the discounted return"
    )
    clip_observations: float = Field(default=10.0, gt=0, description="normalised observations are clipped to +-this")
    hidden_sizes: list[int] = Field(
        default=[64, 64], min_length=1, description="hidden layer sizes of the policy and value (or Q) networks"
    )
    activation: Literal["tanh", "relu"] = Field(default="tanh", description="activation of the hidden layers")
    learning_rate: float = Field(default=3e-4, gt=0, le=1, description="Adam step size")
    gamma: float = Field(default=0.99, gt=0, le=1, description="discount factor")
    batch_size: int = Field(default=256, ge=1, description="minibatch size of each gradient step")
    n_steps: int = Field(default=128, ge=1, description="PPO: steps per environment per rollout")
    n_epochs: int = Field(default=4, ge=1, description="PPO: passes over each rollout")
    gae_lambda: float = Field(default=0.95, ge=0, le=1, description="PPO: GAE lambda")
    clip_range: float = Field(default=0.2, gt=0, description="PPO: policy ratio clip")
    ent_coef: float = Field(default=0.0, ge=0, description="PPO: entropy bonus weight")
    vf_coef: float = Field(default=0.5, ge=0, description="PPO: value loss weight")
    max_grad_norm: float = Field(default=0.5, gt=0, description="gradient norm clip")
    buffer_size: int = Field(default=100_000, ge=1, description="DQN: replay buffer capacity, in transitions")
    learning_starts: int = Field(default=1_000, ge=0, description="DQN: transitions collected before the first update")
    train_freq: int = Field(default=4, ge=1, description="DQN: vector-env steps between updates")
    gradient_steps: int = Field(default=1, ge=1, description="DQN: gradient steps per update")
    target_update_interval: int = Field(default=1_000, ge=1, description="DQN: env steps between target network copies")
    exploration_fraction: float = Field(
        default=0.2, gt=0, le=1, description="DQN: share of the run over which epsilon decays"
    )
    exploration_final_eps: float = Field(default=0.05, ge=0, le=1, description="DQN: final epsilon")
    extra: dict[str, Any] = Field(default_factory=dict, description="further keyword arguments for the SB3 constructor")
    seed: int = Field(default=0, ge=0, description="seed of SB3, the generators and the environments")
    log_interval_steps: int = Field(
        default=10_000, ge=1, description="env steps between logged statistics (and callback calls)"
    )

    _renamed = model_validator(mode="before")(refuse_renamed_fields)


# ---------------------------------------------------------------------------------- export
_DISCRETE, _MULTI_DISCRETE, _BOX = 0, 1, 2


class SB3Actor(nn.Module):
    """Deterministic action of an SB3 policy from a normalised observation, free of SB3.

    ``forward(obs, preference, action_mask) -> action`` on observations normalised as SB3's
    ``VecNormalize`` does (the :class:`~paretochain.agents.export.PolicyModule` around it does
    that): the features, latent and head layers of the policy run; Discrete and MultiDiscrete
    actions are the (masked) argmax of the logits or Q-values of each branch, Box actions the
    Gaussian mean clipped to the bounds. ``preference`` is accepted for the common signature
    and ignored.
    """

    if TYPE_CHECKING:  # buffers, declared for type checkers only (TorchScript reads class annotations)
        low: torch.Tensor
        high: torch.Tensor

    def __init__(
        self, body: nn.Module, head: nn.Module, kind: int, nvec: list[int], low: torch.Tensor, high: torch.Tensor
    ) -> None:
        super().__init__()
        self.body = body
        self.head = head
        self.is_box = kind == _BOX
        self.is_discrete = kind == _DISCRETE
        self.nvec = nvec
        self.register_buffer("low", low)
        self.register_buffer("high", high)

    def forward(self, obs: torch.Tensor, preference: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        out = self.head(self.body(obs))
        if self.is_box:
            return torch.maximum(torch.minimum(out, self.high), self.low)
        masked = out.masked_fill(~action_mask.to(torch.bool), float("-inf"))
        if self.is_discrete:
            return masked.argmax(dim=1)
        actions: list[torch.Tensor] = []
        for branch in torch.split(masked, self.nvec, dim=1):
            actions.append(branch.argmax(dim=1))
        return torch.stack(actions, dim=1)


def _plain_features(extractor: nn.Module) -> nn.Module:
    if not isinstance(extractor, FlattenExtractor):
        raise NotImplementedError(f"export supports SB3's FlattenExtractor only, got {type(extractor).__name__}")
    return nn.Flatten()


def _script_ready(module: nn.Module) -> nn.Module:
    """Cast numpy integers SB3 leaves in layer sizes (``Linear.out_features``) to Python ints for TorchScript."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            layer.in_features, layer.out_features = int(layer.in_features), int(layer.out_features)
    return module


# ---------------------------------------------------------------------------------- logging
class _ForwardSB3Figures(KVWriter):
    """Sends every numeric figure SB3 records to a paretochain logger under SB3's own tag.

    ``train/*`` (losses, ``approx_kl``, ``explained_variance``, ...), ``rollout/ep_rew_mean``
    and ``rollout/ep_len_mean`` (the scalarised reward SB3 trains on), ``time/fps``, ...: the
    names SB3 users know, at SB3's step counter.
    """

    def __init__(self) -> None:
        self.logger: Logger = NullLogger()

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        for key, value in key_values.items():
            if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
                self.logger.scalar(key, float(value), step)

    def close(self) -> None:
        return None


class _StatsCallback(BaseCallback):
    """Collects finished episodes' vector returns; every ``interval`` steps logs them and asks ``stop_if``."""

    def __init__(
        self,
        logger: Logger,
        objective_names: list[str],
        scalarization: Scalarization,
        interval: int,
        user_callback: Callable[[dict[str, float]], bool] | None,
    ) -> None:
        super().__init__()
        self.out = logger
        self.objective_names = objective_names
        self.scalarization = scalarization
        self.interval = interval
        self.user_callback = user_callback
        self.returns: list[np.ndarray] = []
        self.scalar_returns: list[float] = []
        self.lengths: list[int] = []
        self.latest: dict[str, float] = {}
        self._last_step = 0
        self._last_time = time.time()

    def _on_training_start(self) -> None:
        self._last_step = self.num_timesteps
        self._last_time = time.time()

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            vector = info.get("episode_vector_return")
            if vector is not None:
                self.returns.append(vector)
                if "episode" in info:
                    self.lengths.append(int(info["episode"]["l"]))
                self.scalar_returns.append(
                    float(info["episode"]["r"]) if "episode" in info else float(self.scalarization(vector))
                )
        if self.num_timesteps - self._last_step >= self.interval:
            return self.flush()
        return True

    def _on_training_end(self) -> None:
        if self.num_timesteps > self._last_step:
            self.flush()

    def flush(self) -> bool:
        now = time.time()
        step = self.num_timesteps
        stats: dict[str, float] = {
            "step": float(step),
            "SPS": (step - self._last_step) / max(now - self._last_time, 1e-9),
        }
        self.out.scalar("charts/SPS", stats["SPS"], step)
        if self.returns:
            mean = np.mean(self.returns, axis=0)
            for name, value in zip(self.objective_names, mean):
                stats[f"episode_return/{name}"] = float(value)
                self.out.scalar(f"charts/episode_return/{name}", float(value), step)
            # the sum of the scalarised per-step rewards (for Chebyshev this differs from the Chebyshev value of the return)
            stats["scalarised_return"] = float(np.mean(self.scalar_returns))
            self.out.scalar("charts/scalarised_return", stats["scalarised_return"], step)
            stats["episodes"] = float(len(self.returns))
        if self.lengths:
            stats["episode_length"] = float(np.mean(self.lengths))
            self.out.scalar("charts/episode_length", stats["episode_length"], step)
        self.returns, self.scalar_returns, self.lengths = [], [], []
        self._last_step, self._last_time = step, now
        self.latest = stats
        if self.user_callback is not None:
            return bool(self.user_callback(stats))
        return True


# ---------------------------------------------------------------------------------- agent
class SB3Agent:
    """An SB3 model trained on a batched paretochain environment.

    Args:
        env: a batched env from ``make_vec(env_id, num_envs, device, config, tensors=True,
            check_actions=False)``; its core is stepped by :class:`CoreVecEnv`.
        config: hyperparameters (an :class:`SB3AgentConfig`, a mapping, a YAML path, or
            ``None`` for the defaults).
        device: where SB3's networks live: ``"auto"``, ``"cpu"`` or ``"cuda"``. The
            environment stays where ``make_vec`` put it; SB3 moves data through numpy.
    """

    def __init__(
        self,
        env: BatchedVectorEnv,
        config: SB3AgentConfig | dict[str, Any] | str | None = None,
        device: str | torch.device = "auto",
    ) -> None:
        self.config = cfg = SB3AgentConfig.load(config)
        self.env = env
        self.device = resolve_device(device)
        core = env.core
        self.objective_names = core.objectives.names
        space = core.single_action_space
        if cfg.algo == "dqn" and not isinstance(space, spaces.Discrete):
            raise ConfigError(
                f"algo 'dqn' needs a Discrete action space, this environment has {space} (use ppo or maskable_ppo)"
            )
        if cfg.algo == "maskable_ppo" and not isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
            raise ConfigError(
                f"algo 'maskable_ppo' needs Discrete or MultiDiscrete actions, this environment has {space}"
            )
        self.scalarization = make_scalarization(
            self.objective_names, cfg.weights, cfg.scalarization, cfg.utopia, cfg.rho
        )
        with torch.inference_mode():
            has_masks = core.action_masks() is not None
        # plain PPO and DQN ignore masks: forbidden choices are replaced by allowed ones (see CoreVecEnv)
        self.vec_env = CoreVecEnv(
            core, self.scalarization, check_actions=False, replace_masked=has_masks and cfg.algo != "maskable_ppo"
        )
        self.venv: VecEnv = self.vec_env
        if cfg.norm_obs or cfg.norm_return:
            self.venv = VecNormalize(
                self.vec_env,
                norm_obs=cfg.norm_obs,
                norm_reward=cfg.norm_return,
                clip_obs=cfg.clip_observations,
                gamma=cfg.gamma,
            )
        self._losses = _ForwardSB3Figures()
        self.model = self._build_model()
        self._last_stats: dict[str, float] = {}

    def _build_model(self) -> BaseAlgorithm:
        cfg = self.config
        activation = nn.Tanh if cfg.activation == "tanh" else nn.ReLU
        common: dict[str, Any] = dict(
            learning_rate=cfg.learning_rate,
            gamma=cfg.gamma,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            device=self.device,
            verbose=0,
        )
        if cfg.algo == "dqn":
            kwargs: dict[str, Any] = dict(
                policy_kwargs=dict(net_arch=list(cfg.hidden_sizes), activation_fn=activation),
                buffer_size=cfg.buffer_size,
                learning_starts=cfg.learning_starts,
                train_freq=cfg.train_freq,
                gradient_steps=cfg.gradient_steps,
                target_update_interval=cfg.target_update_interval,
                exploration_fraction=cfg.exploration_fraction,
                exploration_final_eps=cfg.exploration_final_eps,
                max_grad_norm=cfg.max_grad_norm,
            )
        else:
            kwargs = dict(
                policy_kwargs=dict(
                    net_arch=dict(pi=list(cfg.hidden_sizes), vf=list(cfg.hidden_sizes)), activation_fn=activation
                ),
                n_steps=cfg.n_steps,
                n_epochs=cfg.n_epochs,
                gae_lambda=cfg.gae_lambda,
                clip_range=cfg.clip_range,
                ent_coef=cfg.ent_coef,
                vf_coef=cfg.vf_coef,
                max_grad_norm=cfg.max_grad_norm,
            )
        kwargs.update(common)
        kwargs.update(cfg.extra)
        try:
            model = ALGORITHMS[cfg.algo]("MlpPolicy", self.venv, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"SB3 {cfg.algo} rejected its arguments (check 'extra'): {exc}") from None
        model.set_logger(SB3Logger(folder=None, output_formats=[self._losses]))
        return model

    # ------------------------------------------------------------------ training
    @property
    def num_env_steps(self) -> int:
        """Environment steps taken so far (summed over the batch)."""
        return int(self.model.num_timesteps)

    @property
    def update_env_steps(self) -> int:
        """Environment steps of SB3's unit of training: a rollout (PPO) or ``train_freq`` vector steps (DQN)."""
        n_envs = int(self.model.n_envs)
        if isinstance(self.model, OnPolicyAlgorithm):  # (DQN's n_steps is its n-step return, not a rollout)
            return int(self.model.n_steps) * n_envs
        freq = getattr(self.model, "train_freq", None)
        per_env = int(freq.frequency) if freq is not None and str(freq.unit.value) == "step" else 1
        return per_env * n_envs

    @property
    def fixed_preference(self) -> np.ndarray:
        """The scalarisation's weights (equal weights when the config gives none): SB3 agents train at one preference."""
        return np.asarray(self.scalarization.weights, dtype=np.float64).copy()

    def learn(
        self,
        num_env_steps: int,
        logger: Logger | None = None,
        callback: Callable[[dict[str, float]], bool] | None = None,
    ) -> dict[str, float]:
        """Train for ``num_env_steps`` more environment steps (rounded up to whole rollouts for PPO).

        Args:
            num_env_steps: steps summed over the batch.
            logger: receives ``charts/SPS``, ``charts/episode_return/<objective>``,
                ``charts/scalarised_return`` and ``charts/episode_length`` every
                ``log_interval_steps``, and every figure SB3 records under SB3's own tag
                (``train/*``, ``rollout/ep_rew_mean``, ``rollout/ep_len_mean``, ``time/fps``, ...)
                when SB3 dumps its logs.
            callback: called with the same statistics; returning False stops training.

        Caveat: SB3's schedules (DQN's epsilon, learning-rate schedules) follow SB3's
        progress, which each call measures up to the end of *that* call; training in
        chunks therefore runs them differently from one call with the whole budget
        (DQN's epsilon reaches its final value within the first chunk).

        Returns:
            the latest statistics.
        """
        out = logger if logger is not None else NullLogger()
        self._losses.logger = out
        stats = _StatsCallback(out, self.objective_names, self.scalarization, self.config.log_interval_steps, callback)
        self.model.learn(
            total_timesteps=int(num_env_steps), callback=stats, reset_num_timesteps=False, progress_bar=False
        )
        self._losses.logger = NullLogger()
        self._last_stats = stats.latest
        return stats.latest

    # ------------------------------------------------------------------ acting and export
    def _policy_module(self, detached: bool) -> PolicyModule:
        policy: Any = self.model.policy
        space = self.vec_env.action_space
        if isinstance(self.model, DQN):
            q_net = policy.q_net
            body: nn.Module = nn.Sequential(_plain_features(q_net.features_extractor))
            head: nn.Module = q_net.q_net
        else:
            if getattr(policy, "squash_output", False):
                raise NotImplementedError("export of policies with squashed outputs (gSDE) is not supported")
            body = nn.Sequential(_plain_features(policy.pi_features_extractor), policy.mlp_extractor.policy_net)
            head = policy.action_net
        if detached:
            body, head = _script_ready(copy.deepcopy(body)), _script_ready(copy.deepcopy(head))
        obs_dim = int(np.prod(self.vec_env.observation_space.shape))
        # VecNormalize's observation normalisation, clip((obs - mean) / sqrt(var + eps)), or none
        mean, std, clip = torch.zeros(obs_dim), torch.ones(obs_dim), float("inf")
        if isinstance(self.venv, VecNormalize) and self.venv.norm_obs:
            rms: Any = self.venv.obs_rms
            var = torch.as_tensor(rms.var, dtype=torch.float32)
            mean = torch.as_tensor(rms.mean, dtype=torch.float32)
            std = torch.sqrt(var + float(self.venv.epsilon))
            clip = float(self.venv.clip_obs)
        if isinstance(space, spaces.Discrete):
            kind, nvec = _DISCRETE, [int(space.n)]
            low = high = torch.zeros(1)
        elif isinstance(space, spaces.MultiDiscrete):
            kind, nvec = _MULTI_DISCRETE, [int(n) for n in space.nvec]
            low = high = torch.zeros(1)
        elif isinstance(space, spaces.Box):
            kind, nvec = _BOX, [1]  # unused for Box; a non-empty list keeps TorchScript's type inference happy
            low, high = (
                torch.as_tensor(space.low, dtype=torch.float32),
                torch.as_tensor(space.high, dtype=torch.float32),
            )
        else:
            raise NotImplementedError(f"unsupported action space {space}")
        dev = self.model.device
        actor = SB3Actor(body, head, kind, nvec, low, high).to(dev)
        return PolicyModule(actor, mean.to(dev), std.to(dev), clip, detached=detached)

    def export_module(self) -> nn.Module:
        """A copy of the deterministic policy as a TorchScript-able ``forward(obs, preference, action_mask)``, in eval mode on the CPU."""
        return self._policy_module(detached=True).cpu().eval()

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, preference: torch.Tensor | None = None, action_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Deterministic actions for a batch of observations (the policy contract); ``preference`` is ignored."""
        module = self._policy_module(detached=False)
        dev = self.model.device
        x = torch.as_tensor(obs, device=dev)
        if x.dim() == 1:
            x = x.unsqueeze(0)
        if action_mask is None:
            mask = torch.ones((x.shape[0], self._mask_width()), dtype=torch.bool, device=dev)
        else:
            mask = torch.as_tensor(action_mask, device=dev).to(torch.bool)
        pref = torch.zeros((x.shape[0], len(self.objective_names)), device=dev)
        was_training = self.model.policy.training
        self.model.policy.set_training_mode(False)
        action = module(x, pref, mask)
        self.model.policy.set_training_mode(was_training)
        return action.to(obs.device if isinstance(obs, torch.Tensor) else "cpu")

    def _mask_width(self) -> int:
        """Length of an action mask row: ``n``, ``sum(nvec)``, or the Box size (ignored) as in export metadata."""
        space = self.vec_env.action_space
        if isinstance(space, spaces.Discrete):
            return int(space.n)
        if isinstance(space, spaces.MultiDiscrete):
            return int(np.sum(space.nvec))
        return int(np.prod(space.shape))

    def export_metadata(self) -> dict[str, Any]:
        """What :func:`~paretochain.agents.export.export_policy` writes about this agent."""
        s = self.scalarization
        return {
            "agent": f"SB3 {self.config.algo}",
            "agent_config": self.config.model_dump(mode="json"),
            "training": {"global_step": self.num_env_steps, "num_envs": self.vec_env.num_envs},
            "preference": {
                "semantics": (
                    "ignored by this policy: it was trained on one fixed scalarisation of the vector reward "
                    f"({s.describe()}), given under 'scalarization'"
                ),
                "trained_on": "fixed",
                "default": s.weights.tolist(),
                "scalarization": {
                    "kind": s.kind,
                    "weights": s.weights.tolist(),
                    "utopia": None if s.utopia is None else s.utopia.tolist(),
                    "rho": s.rho,
                    "normalized_rewards": bool(self.config.norm_return),
                },
            },
        }

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as tensors and plain data (no pickled objects).

        The policy's and optimiser's state dicts, SB3's counters, the replay buffer's
        arrays (DQN), the normaliser statistics, the generators' states and the step counter.
        """
        model = self.model
        counters: dict[str, float | int] = {name: getattr(model, name) for name in _COUNTERS if hasattr(model, name)}
        rng = host_rng_state()
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        space_rng = getattr(model.action_space, "_np_random", None)
        if space_rng is not None:  # DQN explores with action_space.sample()
            rng["action_space"] = space_rng.bit_generator.state
        return copy.deepcopy(
            {
                "format": STATE_FORMAT,
                "config": self.config.model_dump(mode="json"),
                "policy": model.policy.state_dict(),
                "optimizer": model.policy.optimizer.state_dict(),
                "counters": counters,
                "episode_infos": [
                    {key: float(value) for key, value in info.items()} for info in (model.ep_info_buffer or [])
                ],
                "replay_buffer": _replay_buffer_state(model) if isinstance(model, DQN) else None,
                "normalizer": _normalizer_state(self.venv) if isinstance(self.venv, VecNormalize) else None,
                "num_env_steps": self.num_env_steps,
                "rng": rng,
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the environments restart from seeds derived from the step counter."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise PolicyFileError(
                f"not an SB3 agent state (expected format {STATE_FORMAT!r}, got {state.get('format') if isinstance(state, dict) else type(state).__name__!r})"
            )
        try:
            algo = state["config"]["algo"]
            if algo != self.config.algo:
                raise PolicyFileError(f"state holds a {algo} model, this agent is {self.config.algo}")
            model = self.model
            model.policy.load_state_dict(state["policy"])
            model.policy.optimizer.load_state_dict(state["optimizer"])
            for name, value in state["counters"].items():
                if name not in _COUNTERS:
                    raise PolicyFileError(f"unknown SB3 counter {name!r} in this state")
                setattr(model, name, type(getattr(model, name))(value))
            model.ep_info_buffer = deque(
                (dict(info) for info in state["episode_infos"]), maxlen=model._stats_window_size
            )
            model.ep_success_buffer = deque(maxlen=model._stats_window_size)
            model._last_obs = None  # the environments restart (see below)
            if state["replay_buffer"] is not None and isinstance(model, DQN):
                _load_replay_buffer(model, state["replay_buffer"])
            if state["normalizer"] is not None and isinstance(self.venv, VecNormalize):
                _load_normalizer(self.venv, state["normalizer"])
            rng = state["rng"]
            set_host_rng_state(rng)
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
            if "action_space" in rng:
                model.action_space.np_random.bit_generator.state = rng["action_space"]
            self.vec_env.seed(self.config.seed + int(state["num_env_steps"]))
        except PolicyFileError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
            raise PolicyFileError(f"this SB3 state does not fit this agent: {type(exc).__name__}: {exc}") from None


# SB3 attributes that carry training progress (schedules, target updates, exploration) across a resume
_COUNTERS = (
    "num_timesteps",
    "_n_updates",
    "_episode_num",
    "_current_progress_remaining",
    "_n_calls",
    "exploration_rate",
)
_REPLAY_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def _replay_buffer_state(model: DQN) -> dict[str, Any] | None:
    """The replay buffer's arrays as tensors, with its write position."""
    buffer = model.replay_buffer
    if buffer is None:
        return None
    arrays = {
        name: torch.from_numpy(getattr(buffer, name))
        for name in _REPLAY_ARRAYS
        if getattr(buffer, name, None) is not None
    }
    return {"arrays": arrays, "pos": int(buffer.pos), "full": bool(buffer.full)}


def _load_replay_buffer(model: DQN, state: dict[str, Any]) -> None:
    buffer = model.replay_buffer
    if buffer is None:
        raise PolicyFileError("this state holds a replay buffer but the agent has none")
    for name, tensor in state["arrays"].items():
        target = getattr(buffer, name, None) if name in _REPLAY_ARRAYS else None
        if not isinstance(target, np.ndarray) or not isinstance(tensor, torch.Tensor):
            raise PolicyFileError(f"replay buffer entry {name!r} does not fit this agent")
        array = tensor.numpy()
        if array.shape != target.shape or array.dtype != target.dtype:
            raise PolicyFileError(
                f"replay buffer {name}: the state holds {array.dtype}{list(array.shape)}, the agent needs {target.dtype}{list(target.shape)}"
            )
        np.copyto(target, array)
    buffer.pos, buffer.full = int(state["pos"]), bool(state["full"])


def _normalizer_state(venv: VecNormalize) -> dict[str, Any]:
    """VecNormalize's running statistics (``obs_rms`` exists only when it normalises observations)."""

    def stats(rms: Any) -> dict[str, Any] | None:
        if rms is None:
            return None
        return {
            "mean": torch.from_numpy(np.array(rms.mean)),
            "var": torch.from_numpy(np.array(rms.var)),
            "count": float(rms.count),
        }

    return {
        "obs_rms": stats(getattr(venv, "obs_rms", None)),
        "ret_rms": stats(venv.ret_rms),
        "returns": torch.from_numpy(np.array(venv.returns)),
    }


def _load_normalizer(venv: VecNormalize, state: dict[str, Any]) -> None:
    for name in ("obs_rms", "ret_rms"):
        saved, rms = state[name], getattr(venv, name, None)
        if saved is None or rms is None:
            continue
        mean, var = saved["mean"].numpy(), saved["var"].numpy()
        if mean.shape != np.shape(rms.mean) or var.shape != np.shape(rms.var):
            raise PolicyFileError(f"normaliser {name}: the state's shape {list(mean.shape)} does not fit this agent")
        rms.mean, rms.var, rms.count = mean.copy(), var.copy(), float(saved["count"])
    returns = state["returns"].numpy()
    if returns.shape != np.shape(venv.returns):
        raise PolicyFileError(
            f"normaliser returns: the state holds {returns.shape[0]} environments, not {venv.num_envs}"
        )
    venv.returns = returns.copy()
