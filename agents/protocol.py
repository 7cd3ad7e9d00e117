"""The agent protocol: what every trainable agent offers, and all a training run uses.

MO-PPO (:class:`~paretochain.agents.mo_ppo.MOPPO`), MO-DQN
(:class:`~paretochain.agents.mo_dqn.MODQNAgent`) and the SB3 adapter
(:class:`~paretochain.agents.sb3.train.SB3Agent`) implement it;
:mod:`paretochain.train.run` builds an agent from the run config and then talks only to
this interface. A new agent implements it and adds one line to the registry in
:mod:`paretochain.train.agents`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch

from paretochain.agents.logging import Logger

if TYPE_CHECKING:
    from paretochain.envs.views import BatchedVectorEnv


@runtime_checkable
class Agent(Protocol):
    """A trainable agent on a batched environment."""

    @property
    def objective_names(self) -> Sequence[str]:
        """The environment's objectives, in reward order."""
        ...

    @property
    def env(self) -> BatchedVectorEnv:
        """The batched view the agent trains on (its ``core`` names the environment in exports)."""
        ...

    @property
    def device(self) -> torch.device:
        """Where the agent's networks live."""
        ...

    @property
    def num_env_steps(self) -> int:
        """Environment steps trained so far, summed over the batch (imitation steps not counted)."""
        ...

    @property
    def update_env_steps(self) -> int:
        """Environment steps of the agent's smallest unit of training (a rollout, a vector step).

        :meth:`learn` trains in whole units, so a run's budget is rounded up to a multiple.
        """
        ...

    @property
    def fixed_preference(self) -> np.ndarray | None:
        """The one preference (float64 ``(k,)``, summing to 1) the agent is trained for; None when conditioned."""
        ...

    def learn(
        self,
        num_env_steps: int,
        logger: Logger | None = None,
        callback: Callable[[dict[str, float]], bool] | None = None,
    ) -> dict[str, float]:
        """Train for ``num_env_steps`` more environment steps (whole units); callable repeatedly.

        ``logger`` receives the statistics under the tags of :mod:`paretochain.agents.logging`;
        ``callback`` is called with them (plus ``global_step``) at every log and stops training by
        returning False. Returns the latest statistics.
        """
        ...

    def act(
        self,
        obs: torch.Tensor,
        preference: torch.Tensor | None = None,
        action_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The policy contract (:class:`~paretochain.agents.policy.Policy`): greedy actions for a batch."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """The whole training state (networks, optimiser, normalisers, RNG, env): tensors and plain data only."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; raises PolicyFileError for a state of another agent or environment."""
        ...

    def export_module(self) -> torch.nn.Module:
        """A deterministic, TorchScript-able ``forward(obs, preference, action_mask) -> action`` on the CPU."""
        ...

    def export_metadata(self) -> dict[str, Any]:
        """What the policy file's ``metadata.json`` says about the agent (plain data)."""
        ...


@runtime_checkable
class ImitatingAgent(Agent, Protocol):
    """An agent that can first fit a baseline's decisions (a run's ``imitation`` section)."""

    def imitate(
        self,
        teacher: Any,
        num_env_steps: int,
        logger: Logger | None = None,
        callback: Callable[[dict[str, float]], bool] | None = None,
    ) -> Any:
        """Fit ``teacher``'s decisions for ``num_env_steps`` environment steps (not counted in :attr:`num_env_steps`)."""
        ...
