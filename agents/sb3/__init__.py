"""The Stable-Baselines3 path: a VecEnv adapter over the batched core, scalarisation, and SB3 agents.

- :class:`CoreVecEnv`: SB3 ``VecEnv`` stepping every environment of a batched core in one call;
- :class:`Scalarization`, :func:`make_scalarization`, :class:`ScalarizedEnv`: linear and
  Chebyshev scalarisation of vector rewards, the vector kept in ``info``;
- :class:`SB3Agent`, :class:`SB3AgentConfig`: PPO, DQN and MaskablePPO behind the shared
  agent interface (``learn``, ``act``, ``state_dict``, ``export_module``).
"""

from paretochain.agents.sb3.scalarize import Scalarization, ScalarizedEnv, make_scalarization
from paretochain.agents.sb3.train import SB3Actor, SB3Agent, SB3AgentConfig
from paretochain.agents.sb3.vec_env import CoreVecEnv, make_default_sb3_vec_env, make_scalarized_env

__all__ = [
    "CoreVecEnv",
    "SB3Actor",
    "SB3Agent",
    "SB3AgentConfig",
    "Scalarization",
    "ScalarizedEnv",
    "make_default_sb3_vec_env",
    "make_scalarization",
    "make_scalarized_env",
]
