"""Sweeps on Ray Tune: ``paretochain sweep SWEEP.yaml [--address ADDR] [--resume]``.

A sweep config names a base run config and the axes to vary; every trial is an
ordinary training run (:func:`paretochain.train.run.train`) whose run directory
lies under the sweep folder, so TensorBoard, checkpoints, export and
``paretochain evaluate`` work on it unchanged. Ray Tune schedules the trials: on a
local Ray instance started for the sweep (no address), or on an existing cluster
(``--address`` or ``RAY_ADDRESS``). Ray is an optional extra:
``pip install 'paretochain[ray]'``.

A sweep config (``configs/sweeps/*.yaml`` has examples)::

    name: warehouse-sb3-preferences       # the sweep folder: <sweeps_dir>/<name>/
    base: warehouse_mo_ppo                 # run config: packaged name, YAML path or inline mapping
    overrides:                             # dotted run-config paths set for every trial
      budget_env_steps: 200000
    axes:
      preferences: {grid: 4}               # preference_grid(k, 4), or points: [[1, 0, 0], {profit: 1}]
      seeds: [0, 1, 2]                     # or a count: 3 -> [0, 1, 2]
      params:                              # any run-config field by dotted path
        hyperparameters.learning_rate: {loguniform: [1.0e-4, 1.0e-3]}
        hyperparameters.num_steps: [32, 64]   # a list is a grid
    search: {algorithm: random, num_samples: 4, max_concurrent: 2, metric: hypervolume}
    resources: {cpus_per_trial: 1, gpus_per_trial: 0}
    max_failures: 2                        # retries of a trial that dies, from its last checkpoint
    conditioned_run:                       # optional: one preference-conditioned run for the report
      config: warehouse_mo_ppo

Search: ``grid`` runs every combination of the axes once (distributions are refused);
``random`` runs every combination of the list-valued axes ``num_samples`` times, each
time drawing the distributions (``choice``, ``uniform``, ``loguniform``, ``randint``);
``optuna`` lets Optuna's TPE sampler (Ray Tune's ``OptunaSearch``) propose
``num_samples`` trials, every axis being a categorical or a distribution. The metric
is maximised (every objective is higher-is-better): ``hypervolume``,
``expected_utility`` or ``return_<objective>`` of the trial's final evaluation.

The sweep folder::

    <sweeps_dir>/<name>/sweep.yaml        the sweep config, as run
    <sweeps_dir>/<name>/base_run.yaml     the base run config with the sweep's overrides (resume checks both)
    <sweeps_dir>/<name>/trials/<trial>/   one run directory per trial (config.yaml, tb/, checkpoints/, policy.pt, metrics.json)
    <sweeps_dir>/<name>/state/<trial>.json what the sweep knows of a trial: its parameters, role and attempts
    <sweeps_dir>/<name>/tune/             Ray Tune's experiment state (restored by --resume)
    <sweeps_dir>/<name>/report.md, report.html, metrics.json   the sweep report

Fault tolerance: a trial that dies (its worker killed, an exception) is retried up to
``max_failures`` times by Ray Tune; the retry continues from the newest checkpoint in
the trial's run directory (``train(..., resume=True)``). An interrupted sweep
(Ctrl-C, a lost driver) continues with ``--resume``: Tune restores its experiment
state, and a trial whose run directory already holds a finished run is not trained
again. On a multi-node cluster ``sweeps_dir`` must be a filesystem every node sees
(NFS or similar) for retries to find the checkpoints of a trial that ran elsewhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from paretochain.envs.config import ConfigModel, apply_overrides, deep_merge, read_yaml, resolve_config_path
from paretochain.errors import ConfigError, ParetochainError

INSTALL_HINT = (
    "paretochain sweep needs Ray Tune and Optuna, which are an optional extra: "
    "pip install 'paretochain[ray]'  (or: pip install 'ray[tune]' optuna)"
)
STATE_SCHEMA = "paretochain.sweep-trial/1"


class MissingRayError(ParetochainError, ImportError):
    """Ray Tune (the ``ray`` extra) is not installed."""


class SweepExistsError(ConfigError):
    """The sweep folder holds a sweep already, and ``--resume`` was not given."""


class SweepIncompleteError(ParetochainError):
    """The sweep stopped before every trial finished (interrupted); ``--resume`` continues it."""


# ------------------------------------------------------------------------------------------ config


class Space(ConfigModel):
    """Values of one axis: exactly one of ``grid``, ``choice``, ``uniform``, ``loguniform``, ``randint``.

    A plain list in the YAML is shorthand for ``{grid: [...]}``.
    """

    grid: list[Any] | None = Field(default=None, min_length=1, description="every value is run (a grid axis)")
    choice: list[Any] | None = Field(
        default=None, min_length=1, description="one value drawn per trial (random, optuna)"
    )
    uniform: tuple[float, float] | None = Field(default=None, description="[low, high]: a float drawn uniformly")
    loguniform: tuple[float, float] | None = Field(
        default=None, description="[low, high], both > 0: a float drawn uniformly in log space"
    )
    randint: tuple[int, int] | None = Field(default=None, description="[low, high): an integer drawn uniformly")

    @model_validator(mode="before")
    @classmethod
    def _list_is_grid(cls, data: Any) -> Any:
        return {"grid": data} if isinstance(data, list) else data

    @model_validator(mode="after")
    def _exactly_one(self) -> Space:
        given = [
            name for name in ("grid", "choice", "uniform", "loguniform", "randint") if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(f"give exactly one of grid, choice, uniform, loguniform, randint (got {given or 'none'})")
        bounds = self.uniform or self.loguniform or self.randint
        if bounds is not None and not bounds[0] < bounds[1]:
            raise ValueError(f"{given[0]}: low must be below high, got {list(bounds)}")
        if self.loguniform is not None and self.loguniform[0] <= 0:
            raise ValueError(f"loguniform: bounds must be > 0, got {list(self.loguniform)}")
        return self

    @property
    def kind(self) -> str:
        return next(
            name for name in ("grid", "choice", "uniform", "loguniform", "randint") if getattr(self, name) is not None
        )

    @property
    def is_finite(self) -> bool:
        return self.grid is not None or self.choice is not None

    def probe_values(self) -> list[Any]:
        """Values that stand for the axis when the config is checked: every listed value, or the bounds."""
        if self.grid is not None:
            return list(self.grid)
        if self.choice is not None:
            return list(self.choice)
        low, high = self.uniform or self.loguniform or self.randint  # type: ignore[misc]
        return [low, high - 1] if self.randint is not None else [low, high]


class PreferenceAxis(ConfigModel):
    """Fixed preferences over the simplex, one per trial: a lattice or explicit points."""

    grid: int | None = Field(
        default=None, ge=1, le=100, description="divisions per objective of preference_grid(k, grid)"
    )
    points: list[dict[str, float] | list[float]] | None = Field(
        default=None,
        min_length=1,
        description="explicit weights (by objective name or in reward order), normalised to sum 1",
    )

    @model_validator(mode="before")
    @classmethod
    def _list_is_points(cls, data: Any) -> Any:
        return {"points": data} if isinstance(data, list) else data

    @model_validator(mode="after")
    def _exactly_one(self) -> PreferenceAxis:
        if (self.grid is None) == (self.points is None):
            raise ValueError("give exactly one of grid (divisions) or points (a list of weight vectors)")
        return self


class Axes(ConfigModel):
    """What varies between trials; the trials are the combinations of the axes."""

    preferences: PreferenceAxis | None = Field(
        default=None, description="sets RunConfig.preference of each trial (fixed-preference agents)"
    )
    seeds: list[int] | int | None = Field(default=None, description="RunConfig.seed values, or a count n for 0..n-1")
    params: dict[str, Space] = Field(
        default_factory=dict, description="run-config fields by dotted path -> values (list = grid) or a distribution"
    )

    @model_validator(mode="after")
    def _seeds(self) -> Axes:
        if isinstance(self.seeds, int):
            if self.seeds < 1:
                raise ValueError(f"seeds: a count must be >= 1, got {self.seeds}")
            self.seeds = list(range(self.seeds))
        elif self.seeds is not None and (not self.seeds or min(self.seeds) < 0):
            raise ValueError(f"seeds: give a non-empty list of seeds >= 0, got {self.seeds}")
        for key in self.params:
            if key in ("seed", "preference", "name", "runs_dir") or not re.fullmatch(
                r"[A-Za-z_][\w]*(\.[\w\-]+)*", key
            ):
                raise ValueError(
                    f"params: {key!r} cannot be swept (use axes.seeds / axes.preferences for seed and preference)"
                )
        return self


class SearchSection(ConfigModel):
    """How trials are chosen and how many run at once."""

    algorithm: Literal["grid", "random", "optuna"] = Field(
        default="grid", description="grid, random (Tune's BasicVariantGenerator) or optuna (Tune's OptunaSearch)"
    )
    num_samples: int = Field(
        default=1, ge=1, description="grid: must be 1; random: draws per combination of the list axes; optuna: trials"
    )
    max_concurrent: int | None = Field(
        default=None, ge=1, description="trials running at once (default: as many as the resources allow)"
    )
    metric: str = Field(
        default="hypervolume", description="maximised: hypervolume, expected_utility or return_<objective>"
    )
    time_budget_s: float | None = Field(default=None, gt=0, description="stop starting trials after this many seconds")
    seed: int = Field(default=0, ge=0, description="seed of the random draws / Optuna sampler")


class ResourcesSection(ConfigModel):
    """What Ray reserves for each trial."""

    cpus_per_trial: float = Field(default=1.0, gt=0, description="CPU cores per trial (also torch's thread count)")
    gpus_per_trial: float = Field(
        default=0.0,
        ge=0,
        description="GPU share per trial (0.25 = four trials per GPU); set device: cuda or auto in the base",
    )


class RaySection(ConfigModel):
    """The local Ray instance started when no address is given."""

    num_cpus: int | None = Field(
        default=None, ge=1, description="CPUs of the local instance (default: all of this machine)"
    )
    num_gpus: int | None = Field(default=None, ge=0, description="GPUs of the local instance (default: as detected)")


class ConditionedRunSection(ConfigModel):
    """A preference-conditioned run whose front the report sets beside the fixed-preference trials."""

    config: str | dict[str, Any] | None = Field(
        default=None, description="run config to train as part of the sweep (name, path or mapping)"
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="dotted run-config paths -> values for that run"
    )
    run_dir: str | None = Field(default=None, description="or: an existing run directory to use as it is")

    @model_validator(mode="after")
    def _one_source(self) -> ConditionedRunSection:
        if (self.config is None) == (self.run_dir is None):
            raise ValueError("give exactly one of config (train it in the sweep) or run_dir (an existing run)")
        return self


class SweepConfig(ConfigModel):
    """A sweep: the base run, the axes, the search, the resources and the budget."""

    name: str = Field(description="the sweep folder's name under sweeps_dir", min_length=1, pattern=r"^[\w.\-]+$")
    base: str | dict[str, Any] = Field(
        description="run config: packaged name (configs/runs/), YAML path (relative to the sweep file) or mapping"
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="dotted run-config paths -> values set for every trial"
    )
    axes: Axes = Field(default_factory=Axes)
    search: SearchSection = Field(default_factory=SearchSection)
    resources: ResourcesSection = Field(default_factory=ResourcesSection)
    max_failures: int = Field(default=2, ge=0, description="retries of a trial that dies (from its last checkpoint)")
    ray: RaySection = Field(default_factory=RaySection)
    sweeps_dir: str = Field(
        default="sweeps", description="where sweep folders are created (relative to the working directory)"
    )
    conditioned_run: ConditionedRunSection | None = Field(
        default=None, description="optional preference-conditioned run for the report's comparison"
    )

    @classmethod
    def family(cls) -> str:
        return "sweeps"

    @model_validator(mode="after")
    def _search(self) -> SweepConfig:
        algo = self.search.algorithm
        if algo == "grid":
            if self.search.num_samples != 1:
                raise ValueError(
                    "search.num_samples: a grid runs each combination once; give it 1 (repeat with axes.seeds)"
                )
            drawn = [key for key, space in self.axes.params.items() if not space.grid]
            if drawn:
                raise ValueError(
                    f"axes.params: {drawn} are distributions or choices; grid search needs lists (or use search.algorithm: random/optuna)"
                )
        return self


@dataclass
class SweepPlan:
    """A validated sweep: the base run data and every axis resolved against the environment."""

    config: SweepConfig
    where: str
    base_data: dict[str, Any]
    objective_names: list[str]
    preferences: list[list[float]] | None
    seeds: list[int] | None
    conditioned_data: dict[str, Any] | None = None
    conditioned_dir: Path | None = None

    @property
    def num_combinations(self) -> int:
        """Trials of one pass over the list axes (grid axes), before num_samples."""
        n = len(self.preferences or [None]) * len(self.seeds or [None])
        for space in self.config.axes.params.values():
            if space.grid is not None:
                n *= len(space.grid)
        return n

    @property
    def expected_trials(self) -> int:
        if self.config.search.algorithm == "optuna":
            return self.config.search.num_samples
        return self.num_combinations * self.config.search.num_samples


def load_sweep_config(source: str | Path | Mapping[str, Any], overrides: Sequence[str] = ()) -> SweepPlan:
    """Read and check a sweep config; every axis value is tried on the base run config before anything runs.

    Args:
        source: a YAML path, a packaged name under ``configs/sweeps/``, or a mapping.
        overrides: ``dotted.key=value`` strings applied to the sweep config.

    Raises:
        ConfigError: naming the field (``axes.params.hyperparameters.lr``, ``search.metric``, ...).
    """
    if isinstance(source, Mapping):
        data, where, folder = dict(source), "sweep mapping", Path.cwd()
    else:
        path = resolve_config_path(source, "sweeps")
        data, where, folder = read_yaml(path), str(path), path.resolve().parent
    data = apply_overrides(data, overrides)
    sweep = SweepConfig.validate_data(data, where)
    base_data = _run_data(sweep.base, sweep.overrides, folder, f"{where}: base")
    base = _validate_run(base_data, f"{where}: base (with overrides)")
    objectives = _objectives(base)

    preferences = None
    if sweep.axes.preferences is not None:
        preferences = _resolve_preferences(sweep.axes.preferences, objectives, f"{where}: axes.preferences")
    metric = sweep.search.metric
    allowed = ["hypervolume", "expected_utility"] + [f"return_{n}" for n in objectives]
    if metric not in allowed:
        raise ConfigError(
            f"invalid SweepConfig ({where}):\n  - search.metric: unknown metric {metric!r}; allowed: {', '.join(allowed)}"
        )

    # every axis value must make a valid run config on its own
    for key, space in sweep.axes.params.items():
        for value in space.probe_values():
            probe = deepcopy(base_data)
            _set_dotted(probe, key, value)
            _validate_run(probe, f"{where}: axes.params.{key} = {value!r}")
    for seed in sweep.axes.seeds or []:
        _validate_run({**base_data, "seed": seed}, f"{where}: axes.seeds = {seed}")
    if preferences is not None:
        _validate_run({**base_data, "preference": preferences[0]}, f"{where}: axes.preferences")

    plan = SweepPlan(sweep, where, base_data, objectives, preferences, sweep.axes.seeds)
    cond = sweep.conditioned_run
    if cond is not None and cond.config is not None:
        plan.conditioned_data = _run_data(cond.config, cond.overrides, folder, f"{where}: conditioned_run")
        conditioned = _validate_run(plan.conditioned_data, f"{where}: conditioned_run")
        if conditioned.env.id != base.env.id:
            raise ConfigError(
                f"{where}: conditioned_run: environment {conditioned.env.id!r} differs from the sweep's {base.env.id!r}"
            )
    elif cond is not None and cond.run_dir is not None:
        run_dir = Path(cond.run_dir)
        run_dir = (
            run_dir
            if run_dir.is_absolute()
            else (folder / run_dir if (folder / run_dir).exists() else Path.cwd() / run_dir)
        )
        if not (run_dir / "metrics.json").exists() or not (run_dir / "policy.pt").exists():
            raise ConfigError(
                f"{where}: conditioned_run.run_dir: {run_dir} is not a finished run directory (no metrics.json / policy.pt)"
            )
        plan.conditioned_dir = run_dir.resolve()
    if sweep.search.algorithm == "grid" and plan.num_combinations > 10_000:
        raise ConfigError(
            f"{where}: axes: the grid has {plan.num_combinations} combinations; more than 10000 is surely a mistake"
        )
    return plan


def _run_data(source: str | dict[str, Any], overrides: Mapping[str, Any], folder: Path, where: str) -> dict[str, Any]:
    """The run config's raw data with the dotted overrides applied (not yet validated)."""
    if isinstance(source, dict):
        data = deepcopy(source)
    else:
        candidate = folder / source
        path = (
            candidate
            if candidate.suffix in (".yaml", ".yml") and candidate.exists()
            else resolve_config_path(source, "runs")
        )
        data = read_yaml(path)
    for key, value in overrides.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{where}: overrides: keys must be dotted run-config paths, got {key!r}")
        _set_dotted(data, key, value, merge=True)
    return data


def _validate_run(data: Mapping[str, Any], where: str) -> Any:
    from paretochain.train.config import RunConfig

    try:
        return RunConfig.validate_data(data, where)
    except ConfigError:
        raise
    except ValueError as exc:  # a model validator's own message
        raise ConfigError(f"{where}: {exc}") from None


def _objectives(run: Any) -> list[str]:
    from paretochain.envs.registration import make_vec
    from paretochain.train.run import env_config_of

    env = make_vec(run.env.id, 1, device="cpu", config=env_config_of(run))
    return list(env.objectives.names)


def _resolve_preferences(axis: PreferenceAxis, objectives: list[str], where: str) -> list[list[float]]:
    from paretochain.agents.preferences import preference_from_weights, preference_grid

    if axis.grid is not None:
        if math.comb(axis.grid + len(objectives) - 1, len(objectives) - 1) > 10_000:
            raise ConfigError(
                f"{where}.grid: {axis.grid} divisions over {len(objectives)} objectives make too many preferences"
            )
        return [[round(float(x), 10) for x in row] for row in preference_grid(len(objectives), axis.grid)]
    out = []
    for i, point in enumerate(axis.points or []):
        w = preference_from_weights(objectives, point, where=f"{where}.points[{i}]")
        out.append([round(float(x), 10) for x in w])
    return out


def _set_dotted(data: dict[str, Any], key: str, value: Any, merge: bool = False) -> None:
    """Set ``data[a][b][c] = value`` for ``key = "a.b.c"``; with ``merge``, a mapping merges into one already there."""
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    old = node.get(parts[-1])
    node[parts[-1]] = (
        deep_merge(old, value) if merge and isinstance(old, dict) and isinstance(value, Mapping) else deepcopy(value)
    )


# ------------------------------------------------------------------------------------------ trials

_JSON = "json:"


def _encode(value: Any) -> Any:
    """Ray/Optuna categoricals hold scalars only: lists and mappings travel as JSON strings."""
    return value if isinstance(value, (int, float, str, bool)) or value is None else _JSON + json.dumps(value)


def _decode(value: Any) -> Any:
    return json.loads(value[len(_JSON) :]) if isinstance(value, str) and value.startswith(_JSON) else value


def param_space(plan: SweepPlan) -> dict[str, Any]:
    """The Ray Tune search space of the sweep's trials (keys: ``preference``, ``seed``, dotted paths)."""
    from ray import tune

    algo = plan.config.search.algorithm

    def finite(values: list[Any]) -> Any:
        encoded = [_encode(v) for v in values]
        return tune.choice(encoded) if algo == "optuna" else tune.grid_search(encoded)

    space: dict[str, Any] = {}
    if plan.preferences is not None:
        space["preference"] = finite(plan.preferences)
    if plan.seeds is not None:
        space["seed"] = finite(list(plan.seeds))
    for key, axis in plan.config.axes.params.items():
        if axis.grid is not None:
            space[key] = finite(axis.grid)
        elif axis.choice is not None:
            space[key] = tune.choice([_encode(v) for v in axis.choice])
        elif axis.uniform is not None:
            space[key] = tune.uniform(*axis.uniform)
        elif axis.loguniform is not None:
            space[key] = tune.loguniform(*axis.loguniform)
        elif axis.randint is not None:
            space[key] = tune.randint(*axis.randint)
    return space


def trial_name(params: Mapping[str, Any]) -> str:
    """A readable, filesystem-safe and unique name of a trial's parameters (the run directory's name)."""
    parts = []
    for key in sorted(params):
        value = params[key]
        if key == "preference":
            parts.append("w" + "_".join(f"{round(float(x), 3):g}" for x in value))
        elif key == "seed":
            parts.append(f"s{value}")
        else:
            shown = (
                f"{value:.3g}"
                if isinstance(value, float)
                else (("x".join(map(str, value))) if isinstance(value, list) else str(value))
            )
            parts.append(f"{key.split('.')[-1]}={shown}")
    digest = hashlib.sha1(json.dumps(dict(params), sort_keys=True, default=str).encode()).hexdigest()[:8]
    readable = re.sub(r"[^\w.=\-]", "", "-".join(parts))[:90]
    return f"{readable}-{digest}" if readable else f"trial-{digest}"


def trial_run_data(base_data: Mapping[str, Any], params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The run config data of one trial: the base with the trial's parameters and name."""
    data = deepcopy(dict(base_data))
    for key, value in params.items():
        _set_dotted(data, key, value)
    data["name"] = name
    return data


def finished_metrics(run_dir: Path) -> dict[str, Any] | None:
    """The metrics of a run directory that holds a finished run (not interrupted, policy exported), else None."""
    path = run_dir / "metrics.json"
    if not path.exists() or not (run_dir / "policy.pt").exists():
        return None
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return metrics if metrics.get("interrupted") is None and metrics.get("final_evaluation") else None


def trial_summary(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The flat figures a trial reports to Ray Tune (``hypervolume``, ``expected_utility``, ``return_<objective>``)."""
    final = metrics["final_evaluation"]
    returns = final["returns"]
    names = final["objective_names"]
    out: dict[str, Any] = {
        "hypervolume": float(final["hypervolume"]),
        "expected_utility": float(final["expected_utility"]),
        "env_steps": int(metrics["env_steps"]),
        "train_seconds": float(metrics["train_seconds"]),
    }
    for i, name in enumerate(names):
        out[f"return_{name}"] = float(sum(row[i] for row in returns) / len(returns))
    return out


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock (two trials with the same parameters never train one directory at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def run_trial(config: dict[str, Any], context: dict[str, Any]) -> None:
    """The Ray Tune function trainable: train one trial in its run directory and report its figures.

    A finished run directory is reported as it is; one holding checkpoints is resumed
    from the newest; otherwise training starts afresh (clearing a partial directory).
    """
    import torch
    from ray import tune

    from paretochain.train.run import checkpoints, train

    torch.set_num_threads(max(1, int(context["cpus_per_trial"])))
    params = {key: _decode(value) for key, value in config.items()}
    name = context.get("name") or trial_name(params)
    sweep_dir = Path(context["sweep_dir"])
    run_dir = sweep_dir / "trials" / name
    state_path = sweep_dir / "state" / f"{name}.json"
    with _locked(sweep_dir / "state" / f"{name}.lock"):
        metrics = finished_metrics(run_dir)
        if metrics is None:
            from paretochain.train.config import RunConfig

            run = RunConfig.validate_data(trial_run_data(context["base_data"], params, name), f"trial {name}")
            state = (
                json.loads(state_path.read_text())
                if state_path.exists()
                else {"schema": STATE_SCHEMA, "name": name, "role": context["role"], "params": params, "attempts": []}
            )
            found = checkpoints(run_dir)
            resume_step = int(found[-1].stem.split("_")[1]) if found else None
            state["attempts"].append(
                {
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "resumed_from_step": resume_step,
                }
            )
            state["status"] = "running"
            _write_json(state_path, state)
            result = train(run, run_dir=run_dir, resume=bool(found), overwrite=not found, progress=False)
            if result.interrupted:
                raise RuntimeError(f"trial {name} stopped by {result.metrics['interrupted']} (checkpoint saved)")
            metrics = result.metrics
            state["status"] = "finished"
            state["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            _write_json(state_path, state)
    tune.report({**trial_summary(metrics), "trial": name})


# ------------------------------------------------------------------------------------------ driver


@dataclass
class SweepResult:
    """What :func:`run_sweep` left behind."""

    sweep_dir: Path
    report_md: Path
    report_html: Path
    metrics_json: Path
    finished: list[str]
    failed: dict[str, str] = field(default_factory=dict)


def trial_dirname(trial: Any) -> str:
    """Short Tune trial folder names (Tune's default embeds every parameter)."""
    return f"{trial.trainable_name}_{trial.trial_id}"


def _connect(ray: Any, address: str | None, plan: SweepPlan) -> bool:
    """Connect to a cluster (address or RAY_ADDRESS) or start a local instance; True when this call started it."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address, log_to_driver=False)
        return True
    ray.init(
        num_cpus=plan.config.ray.num_cpus,
        num_gpus=plan.config.ray.num_gpus,
        include_dashboard=False,
        log_to_driver=False,
    )
    return True


def _tuner(tune: Any, plan: SweepPlan, sweep_dir: Path, role: str, resume: bool, verbose: bool) -> Any:
    cfg = plan.config
    exp_name = "tune" if role == "trial" else "tune_conditioned"
    context: dict[str, Any] = {
        "sweep_dir": str(sweep_dir),
        "role": role,
        "cpus_per_trial": cfg.resources.cpus_per_trial,
        "base_data": plan.base_data if role == "trial" else plan.conditioned_data,
    }
    if role == "conditioned":
        data = plan.conditioned_data or {}
        context["name"] = "conditioned-" + re.sub(r"[^\w.=\-]", "", str(data.get("name") or data.get("agent", "run")))
    resources = {"cpu": cfg.resources.cpus_per_trial, "gpu": cfg.resources.gpus_per_trial}
    trainable = tune.with_resources(tune.with_parameters(run_trial, context=context), resources)
    exp_path = sweep_dir / exp_name
    if resume and exp_path.exists():
        if tune.Tuner.can_restore(str(exp_path)):
            return tune.Tuner.restore(str(exp_path), trainable, resume_unfinished=True, resume_errored=True)
        shutil.rmtree(exp_path)  # Tune never saved its state: the trial folders and state/ are the record

    search_alg: Any = None
    if role == "trial" and cfg.search.algorithm == "random":
        from ray.tune.search.basic_variant import BasicVariantGenerator

        search_alg = BasicVariantGenerator(random_state=cfg.search.seed)
    elif role == "trial" and cfg.search.algorithm == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch(seed=cfg.search.seed)
    tune_config = tune.TuneConfig(
        metric=cfg.search.metric,
        mode="max",
        search_alg=search_alg,
        num_samples=cfg.search.num_samples if role == "trial" else 1,
        max_concurrent_trials=cfg.search.max_concurrent,
        time_budget_s=cfg.search.time_budget_s if role == "trial" else None,
        trial_dirname_creator=trial_dirname,
        reuse_actors=True,
    )
    run_config = tune.RunConfig(
        name=exp_name,
        storage_path=str(sweep_dir),
        failure_config=tune.FailureConfig(max_failures=cfg.max_failures),
        verbose=1 if verbose else 0,
    )
    return tune.Tuner(
        trainable,
        param_space=param_space(plan) if role == "trial" else {},
        tune_config=tune_config,
        run_config=run_config,
    )


def _prepare_sweep_dir(plan: SweepPlan, resume: bool) -> Path:
    """Create the sweep folder, or check that the one being resumed was started with the same config and base run."""
    sweep_dir = (Path(plan.config.sweeps_dir) / plan.config.name).resolve()
    recorded = {
        sweep_dir / "sweep.yaml": plan.config.model_dump(mode="json"),
        sweep_dir / "base_run.yaml": plan.base_data,
    }
    if (sweep_dir / "sweep.yaml").exists() and not resume:
        raise SweepExistsError(
            f"sweep folder {sweep_dir} holds a sweep already: pass --resume to continue it, or change the sweep's name"
        )
    if resume:
        if not (sweep_dir / "sweep.yaml").exists():
            raise ConfigError(
                f"cannot resume: {sweep_dir / 'sweep.yaml'} does not exist "
                f"(no sweep named {plan.config.name!r} under {plan.config.sweeps_dir})"
            )
        for path, data in recorded.items():
            if path.exists() and yaml.safe_load(path.read_text()) != json.loads(json.dumps(data)):
                raise ConfigError(
                    f"cannot resume {sweep_dir}: the {'sweep config' if path.name == 'sweep.yaml' else 'base run config'} "
                    f"differs from {path}; resume with the config the sweep was started with"
                )
    (sweep_dir / "trials").mkdir(parents=True, exist_ok=True)
    (sweep_dir / "state").mkdir(exist_ok=True)
    for path, data in recorded.items():
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return sweep_dir


def run_sweep(
    config_path: str | Path | Mapping[str, Any],
    address: str | None = None,
    resume: bool = False,
    overrides: Sequence[str] = (),
    verbose: bool = True,
) -> SweepResult:
    """Run a sweep on Ray Tune and write its report; see the module docstring.

    Args:
        config_path: sweep config (YAML path, packaged name under ``configs/sweeps/``, or mapping).
        address: Ray cluster address (``ray://host:10001`` or ``host:6379``); default
            ``RAY_ADDRESS``, else a local Ray instance with ``ray.num_cpus`` CPUs. When Ray is
            already initialised in this process, that instance is used.
        resume: continue an interrupted sweep (finished trials are not trained again).
        overrides: ``dotted.key=value`` strings applied to the sweep config.
        verbose: show Ray Tune's progress tables and print where the report is.

    Raises:
        MissingRayError: Ray Tune is not installed (the message says how to install it).
        ConfigError: the sweep config is invalid (naming the field), or the folder exists without ``resume``.
        SweepIncompleteError: the sweep was interrupted; run again with ``resume=True``.
    """
    try:
        import ray
        from ray import tune
    except ImportError:
        raise MissingRayError(INSTALL_HINT) from None
    plan = load_sweep_config(config_path, overrides)
    if plan.config.search.algorithm == "optuna":
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise MissingRayError(INSTALL_HINT) from None
    sweep_dir = _prepare_sweep_dir(plan, resume)
    started = _connect(ray, address, plan)
    failed: dict[str, str] = {}
    try:
        roles = ["trial"] + (["conditioned"] if plan.conditioned_data is not None else [])
        for role in roles:
            grid = _tuner(tune, plan, sweep_dir, role, resume, verbose).fit()
            for result in grid:
                if result.error is not None:
                    params = {key: _decode(value) for key, value in (result.config or {}).items()}
                    name = trial_name(params) if role == "trial" else "conditioned run"
                    failed[name] = (
                        f"{type(result.error).__name__}: {str(result.error).splitlines()[0] if str(result.error) else ''}"
                    )
            unfinished = [r for r in grid if r.error is None and "hypervolume" not in (r.metrics or {})]
            short = role == "trial" and plan.config.search.time_budget_s is None and len(grid) < plan.expected_trials
            if unfinished or short:
                raise SweepIncompleteError(
                    f"sweep {plan.config.name} stopped before all trials finished; continue it with:\n"
                    f"  paretochain sweep {config_path if not isinstance(config_path, Mapping) else '<config>'} --resume"
                )
    finally:
        if started:
            ray.shutdown()

    from paretochain.evaluate.sweep_report import write_sweep_report

    try:
        report = write_sweep_report(sweep_dir, conditioned_dir=plan.conditioned_dir)
    except ConfigError as exc:
        if not failed:
            raise
        listed = "\n".join(f"  {name}: {error}" for name, error in failed.items())
        raise ParetochainError(f"sweep {plan.config.name}: no trial finished ({exc}); failures:\n{listed}") from None
    finished = [t["name"] for t in report.metrics["trials"]]
    if verbose:
        print(f"sweep folder: {sweep_dir}\n{len(finished)} trial(s) finished, {len(failed)} failed")
        for name, error in failed.items():
            print(f"  failed: {name}: {error}", file=sys.stderr)
        print(f"report: {report.report_html}\n        {report.report_md}\nmetrics: {report.metrics_json}")
    return SweepResult(sweep_dir, report.report_md, report.report_html, report.metrics_json, finished, failed)
