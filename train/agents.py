"""The agents a run can train, and how a run config becomes one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from paretochain.envs.config import ConfigModel, format_validation_error
from paretochain.errors import ConfigError

if TYPE_CHECKING:
    from paretochain.agents.protocol import Agent
    from paretochain.envs.views import BatchedVectorEnv
    from paretochain.train.config import RunConfig


def _registry() -> dict[str, tuple[type, type[ConfigModel], dict[str, Any], str]]:
    """agent name -> (agent class, its config class, fixed hyperparameters, where a fixed preference goes)."""
    from paretochain.agents.dcl import DCLAgent, DCLConfig
    from paretochain.agents.mo_dqn import MODQNAgent, MODQNConfig
    from paretochain.agents.mo_ppo import MOPPO, MOPPOConfig
    from paretochain.agents.sb3.train import SB3Agent, SB3AgentConfig

    return {
        "mo_ppo": (MOPPO, MOPPOConfig, {}, "preference"),
        "mo_dqn": (MODQNAgent, MODQNConfig, {}, "preference"),
        "dcl": (DCLAgent, DCLConfig, {}, "preference"),
        "sb3_ppo": (SB3Agent, SB3AgentConfig, {"algo": "ppo"}, "weights"),
        "sb3_dqn": (SB3Agent, SB3AgentConfig, {"algo": "dqn"}, "weights"),
        "sb3_maskable_ppo": (SB3Agent, SB3AgentConfig, {"algo": "maskable_ppo"}, "weights"),
    }


def agent_config(run: RunConfig) -> ConfigModel:
    """The agent's validated config: the run's hyperparameters, its seed, preference and budget."""
    _, config_cls, fixed, preference_field = _registry()[run.agent]
    data: dict[str, Any] = dict(run.hyperparameters)
    fields = config_cls.model_fields
    data.update(fixed)
    if "seed" in fields:
        data.setdefault("seed", run.seed)
    if "total_env_steps" in fields:
        data.setdefault("total_env_steps", run.budget_env_steps)
    if run.preference is not None and preference_field in fields:
        data[preference_field] = run.preference
    try:
        return config_cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, config_cls, f"hyperparameters of agent {run.agent!r}")) from None


def can_imitate(agent: str) -> bool:
    """Whether the agent of that name fits a baseline's decisions first (a run's ``imitation`` section)."""
    return callable(getattr(_registry()[agent][0], "imitate", None))


def build_agent(run: RunConfig, env: BatchedVectorEnv, device: str) -> Agent:
    """Instantiate the run's agent on a batched environment; it implements :class:`~paretochain.agents.protocol.Agent`."""
    agent_cls, *_ = _registry()[run.agent]
    agent: Agent = agent_cls(env, agent_config(run), device=device)
    return agent
