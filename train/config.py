"""The typed config of a training run (``paretochain train CONFIG.yaml``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from paretochain.envs.config import ConfigModel, apply_overrides, read_yaml, resolve_config_path
from paretochain.errors import ConfigError

AgentName = Literal["mo_ppo", "mo_dqn", "dcl", "sb3_ppo", "sb3_dqn", "sb3_maskable_ppo"]


class EnvSection(ConfigModel):
    """Which environment a run trains on."""

    id: str = Field(default="paretochain/Warehouse-v0", description="registered environment id")
    config: str | dict[str, Any] | None = Field(
        default="default", description="packaged config name, YAML path, or an inline mapping"
    )
    overrides: dict[str, Any] = Field(default_factory=dict, description="config fields replacing those of `config`")

    @field_validator("id")
    @classmethod
    def _registered(cls, env_id: str) -> str:
        from paretochain.envs.registration import FAMILIES

        if env_id not in FAMILIES:
            raise ValueError(f"unknown environment id {env_id!r}; runs train on {sorted(FAMILIES)}")
        return env_id


class ImitationSection(ConfigModel):
    """A warm start from a baseline's decisions (:meth:`~paretochain.agents.mo_ppo.MOPPO.imitate`,
    :meth:`~paretochain.agents.dcl.DCLAgent.imitate`)."""

    baseline: str = Field(description="name of a baseline of the environment's family, e.g. nearest_neighbour")
    env_steps: int = Field(ge=1, description="environment steps of the baseline's play to imitate before training")


class RunConfig(ConfigModel):
    """Everything that defines a training run.

    The agent's own hyperparameters are checked against that agent's config model when
    the run config is loaded, so a typo fails before anything is written.
    """

    name: str | None = Field(
        default=None, description="run directory name under runs_dir (default: from agent, env and seed)"
    )
    env: EnvSection = Field(default_factory=EnvSection)
    agent: AgentName = Field(
        default="mo_ppo",
        description="mo_ppo, mo_dqn, dcl (Deep Controlled Learning: rollout-based policy iteration), sb3_ppo, sb3_dqn or sb3_maskable_ppo",
    )
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict, description="the agent's hyperparameters (see its config class)"
    )
    preference: dict[str, float] | list[float] | None = Field(
        default=None,
        description="a fixed preference over the objectives (required by SB3 agents' scalarisation; None = MO agents sample per episode)",
    )
    budget_env_steps: int = Field(default=100_000, ge=1, description="environment steps of this run")
    full_budget_env_steps: int | None = Field(
        default=None, ge=1, description="documented budget of a full run (used with --full)"
    )
    num_envs: int = Field(
        default=64, ge=1, le=1_000_000, description="environments stepped together by the batched core"
    )
    seed: int = Field(default=0, ge=0, description="seeds the agent, its sampling and the environments")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto = CUDA when torch sees a GPU")
    threads: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description=(
            "torch's CPU threads for this run (None: torch's default, one per core); 1 where other jobs share the "
            "cores, as torch's threads then wait for each other"
        ),
    )
    checkpoint_interval_steps: int = Field(default=50_000, ge=1, description="env steps between checkpoints")
    keep_checkpoints: int = Field(
        default=3,
        ge=2,
        description="checkpoints kept on disk (oldest removed); at least 2, so that a damaged newest one leaves one to resume from",
    )
    eval_interval_steps: int = Field(
        default=50_000, ge=1, description="env steps between evaluations over the preference set"
    )
    eval_episodes: int = Field(default=4, ge=1, description="seeded episodes per preference at each evaluation")
    eval_preferences: int = Field(
        default=6, ge=1, description="points per objective axis of the evaluation preference grid"
    )
    runs_dir: str = Field(default="runs", description="where run directories are created")
    imitation: ImitationSection | None = Field(
        default=None,
        description="mo_ppo and dcl: first fit the policy to a baseline's decisions (steps not counted in budget_env_steps)",
    )

    @classmethod
    def family(cls) -> str:
        return "runs"

    @model_validator(mode="after")
    def _agent_hyperparameters(self) -> RunConfig:
        from paretochain.train.agents import agent_config, can_imitate

        hyperparameters = agent_config(self)  # raises with the allowed fields when one is unknown or out of range
        if self.imitation is not None and not can_imitate(self.agent):
            raise ValueError(f"imitation: only agents mo_ppo and dcl can imitate a baseline, not {self.agent}")
        if self.imitation is None and getattr(hyperparameters, "anchor_coef", 0.0) > 0:
            raise ValueError(
                "hyperparameters.anchor_coef: the anchor is the policy imitation produces; add an imitation section"
            )
        return self

    @property
    def run_name(self) -> str:
        """``name``, or ``<agent>-<family>-<env config>-s<seed>``; when ``env.overrides`` or an inline env
        config change the environment, a short hash of them follows, so distinct environments get distinct names."""
        if self.name:
            return self.name
        family = self.env.id.split("/")[-1].split("-")[0].lower()
        cfg = self.env.config if isinstance(self.env.config, str) else "custom"
        base = f"{self.agent}-{family}-{Path(str(cfg)).stem}-s{self.seed}"
        if not self.env.overrides and not isinstance(self.env.config, dict):
            return base
        spec = {"config": self.env.config, "overrides": self.env.overrides}
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:8]
        return f"{base}-{digest}"


def load_run_config(source: str | Path | Mapping[str, Any], overrides: Sequence[str] = ()) -> RunConfig:
    """Load a run config from a YAML path (or a packaged name under ``configs/runs/``) with ``dotted.key=value`` overrides."""
    if isinstance(source, Mapping):
        data, where = dict(source), "mapping"
    else:
        path = resolve_config_path(source, "runs")
        data, where = read_yaml(path), str(path)
    data = apply_overrides(data, overrides)
    try:
        return RunConfig.validate_data(data, where + (f" with overrides {list(overrides)}" if overrides else ""))
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
