"""A Stable-Baselines3 ``VecEnv`` over a batched core: N environments step in one call.

SB3's default vector env (``DummyVecEnv``) steps its environments one after the
other in Python; :class:`CoreVecEnv` hands the whole batch of actions to the
family's batched core at once and converts the results to numpy once. It follows
SB3's conventions: the observation returned with ``done`` starts the next episode,
the last one of the finished episode is in ``infos[i]["terminal_observation"]``,
``infos[i]["TimeLimit.truncated"]`` tells a cut episode from a terminal one, and
``infos[i]["episode"]`` carries the Monitor-style ``{"r", "l", "t"}`` summary (so
no ``VecMonitor`` is needed). ``env_method("action_masks")`` and
:meth:`CoreVecEnv.action_masks` give the masks sb3-contrib's MaskablePPO reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from paretochain.agents.sb3.scalarize import Scalarization, ScalarizedEnv
from paretochain.envs.core import BatchedCore
from paretochain.envs.episodes import autoreset
from paretochain.envs.views import BatchedVectorEnv


class CoreVecEnv(VecEnv):
    """SB3 vector env stepping every environment of a batched core in one call.

    Rewards are scalarised with ``scalarization``; each ``infos[i]`` holds the
    vector reward (``"vector_reward"``, float32 ``(k,)``), and on the last step of an
    episode ``"episode_vector_return"`` (float64 ``(k,)``) beside SB3's keys.

    Seeding: ``seed(s)`` (or SB3's ``seed=`` argument) makes the next ``reset`` start
    environment ``i`` from seed ``s + i``, exactly the episode ``gymnasium.make(...)``
    plays with ``reset(seed=s + i)``; later episodes continue each environment's own
    stream. Without a seed the first reset draws seeds from numpy's global generator
    (which SB3 seeds).

    Args:
        env: a batched core or a :class:`~paretochain.envs.views.BatchedVectorEnv`
            (from ``make_vec``) whose core is used; it may live on a GPU, observations
            are copied to the host once per step.
        scalarization: how vector rewards become scalars.
        check_actions: validate each batch of actions (and masks) before stepping.
        replace_masked: for agents that ignore masks (plain PPO, DQN) on a family with
            masks: an action (or, for MultiDiscrete, an entry) its mask forbids is replaced
            by the lowest-index allowed choice before stepping, so the environment only
            ever sees allowed actions. MaskablePPO needs no replacement.
    """

    def __init__(
        self,
        env: BatchedCore | BatchedVectorEnv,
        scalarization: Scalarization,
        check_actions: bool = True,
        replace_masked: bool = False,
    ) -> None:
        core = env.core if isinstance(env, BatchedVectorEnv) else env
        k = len(core.objectives)
        if scalarization.num_objectives != k:
            raise ValueError(
                f"scalarization has {scalarization.num_objectives} weights, the environment {k} objectives"
            )
        self.render_mode = None  # read by VecEnv.__init__
        super().__init__(core.num_envs, core.single_observation_space, core.single_action_space)
        self.core = core
        self.scalarization = scalarization
        self.check_actions = check_actions
        self.replace_masked = replace_masked
        self.objective_names = core.objectives.names
        self._discrete = isinstance(core.single_action_space, spaces.Discrete)
        self._actions: np.ndarray | None = None
        self._episode_return = np.zeros(self.num_envs)
        self._episode_vector_return = np.zeros((self.num_envs, k))
        self._episode_length = np.zeros(self.num_envs, dtype=np.int64)
        self._start_time = time.time()

    # ------------------------------------------------------------------ reset and step
    def reset(self) -> VecEnvObs:
        seeds: list[int] | None
        if any(s is not None for s in self._seeds):
            seeds = [int(s) if s is not None else int(np.random.randint(2**31)) for s in self._seeds]
        elif self.core.seeded:
            seeds = None
        else:
            seeds = [int(s) for s in np.random.randint(0, 2**31 - 1, size=self.num_envs)]
        with torch.inference_mode():
            obs = self.core.reset(seeds=seeds)
            obs_np = obs.cpu().numpy()
        self._reset_seeds()
        self._reset_options()
        self._episode_return[:] = 0.0
        self._episode_vector_return[:] = 0.0
        self._episode_length[:] = 0
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs_np

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        core = self.core
        assert self._actions is not None, "step_wait called before step_async"
        with torch.inference_mode():
            action = torch.as_tensor(self._actions, device=core.device)
            if self._discrete:
                action = action.reshape(self.num_envs)
            if self.replace_masked:
                action = self._allowed_action(action)
            out = core.step(action, check=self.check_actions)
            step_end = autoreset(core, out.obs, out.terminated, out.truncated)
            terminal_obs = step_end.final_obs.cpu().numpy() if step_end.reset else None
            obs_np = step_end.obs.cpu().numpy()
            vector = out.reward.cpu().numpy()
            flags = torch.stack([out.terminated, out.truncated]).cpu().numpy()
        terminated, truncated = flags[0], flags[1]
        dones = terminated | truncated
        rewards = self.scalarization(vector).astype(np.float32)
        self._episode_return += rewards
        self._episode_vector_return += vector
        self._episode_length += 1
        infos: list[dict[str, Any]] = [{"vector_reward": v} for v in vector]
        if terminal_obs is not None:
            elapsed = round(time.time() - self._start_time, 6)
            for i in np.flatnonzero(dones):
                info = infos[i]
                info["terminal_observation"] = terminal_obs[i]
                info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                info["episode"] = {"r": float(self._episode_return[i]), "l": int(self._episode_length[i]), "t": elapsed}
                info["episode_vector_return"] = self._episode_vector_return[i].copy()
            self._episode_return[dones] = 0.0
            self._episode_vector_return[dones] = 0.0
            self._episode_length[dones] = 0
        return obs_np, rewards, dones, infos

    # ------------------------------------------------------------------ masks
    def _allowed_action(self, action: torch.Tensor) -> torch.Tensor:
        """Replace choices the current masks forbid by the lowest-index allowed choice (vectorised)."""
        masks = self.core.action_masks()
        if masks is None:
            return action
        space = self.action_space
        if isinstance(space, spaces.Discrete):
            allowed = masks.gather(1, action.long().view(-1, 1)).squeeze(1)
            return torch.where(allowed, action.long(), masks.to(torch.int64).argmax(1))
        assert isinstance(space, spaces.MultiDiscrete)
        sizes = [int(n) for n in space.nvec]
        columns = []
        for d, branch in enumerate(torch.split(masks, sizes, dim=1)):
            choice = action[:, d].long()
            ok = branch.gather(1, choice.view(-1, 1)).squeeze(1)
            columns.append(torch.where(ok, choice, branch.to(torch.int64).argmax(1)))
        return torch.stack(columns, dim=1)

    def action_masks(self) -> np.ndarray:
        """Bool masks of the whole batch, ``(N, n)`` (``(N, sum(nvec))`` for MultiDiscrete); all True without masks."""
        with torch.inference_mode():
            masks = self.core.action_masks()
            if masks is not None:
                return masks.cpu().numpy()
        space = self.action_space
        n = (
            space.n
            if isinstance(space, spaces.Discrete)
            else int(np.sum(space.nvec))
            if isinstance(space, spaces.MultiDiscrete)
            else 1
        )
        return np.ones((self.num_envs, int(n)), dtype=bool)

    # ------------------------------------------------------------------ VecEnv plumbing
    def close(self) -> None:
        return None

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The adapter's attribute, repeated once per selected environment (they share one core)."""
        value = getattr(self, attr_name)  # raises AttributeError, which has_attr relies on
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Per-environment results; ``"action_masks"`` returns each selected environment's mask."""
        idx = list(self._get_indices(indices))
        if method_name == "action_masks":
            masks = self.action_masks()
            return [masks[i] for i in idx]
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in idx]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]


def make_scalarized_env(env_id: str, scalarization: Scalarization, config: Any = None, **overrides: Any) -> gym.Env:
    """One ``gymnasium.make`` env with its reward scalarised (:class:`ScalarizedEnv`)."""
    return ScalarizedEnv(gym.make(env_id, config=config, **overrides), scalarization)


def make_default_sb3_vec_env(
    env_id: str,
    num_envs: int,
    scalarization: Scalarization,
    config: Any = None,
    seed: int | None = None,
    **overrides: Any,
) -> VecEnv:
    """SB3's own vector env (``make_vec_env``: a ``DummyVecEnv`` of Monitor-wrapped single envs).

    The plain alternative to :class:`CoreVecEnv`, kept for comparisons and for tools
    that need one Gymnasium env per slot.
    """
    factory: Callable[[], gym.Env] = lambda: make_scalarized_env(env_id, scalarization, config, **overrides)  # noqa: E731
    return make_vec_env(factory, n_envs=num_envs, seed=seed, vec_env_cls=DummyVecEnv)
