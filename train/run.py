"""A training run: one run directory, checkpoints, TensorBoard, evaluation, export.

Layout written under ``<runs_dir>/<name>/``::

    config.yaml          the resolved run config, as run
    tb/                  TensorBoard events (per-objective returns, losses, SPS, hypervolume)
    .paretochain-run     marker: this directory was made by a run (only such a directory is ever cleared)
    checkpoints/         step_<N>.pt: agent state (model, optimiser, normalisers, RNG, env), step counter;
                         best.pt: the state at the best evaluation so far
    policy.pt, .pt2      the exported policy (at the end)
    best/policy.pt, .pt2 the policy of the best evaluation (see below)
    metrics.json         final figures

**Best policy.** Every evaluation measures the hypervolume of the agent's returns (over
the preference grid, or of its one point for an agent trained at a fixed preference):
raw returns are in each objective's own units, so their weighted sum would let the
objective with the largest numbers decide, while the hypervolume rewards a point for
every objective on which it beats the reference point, and is 0 for a point worse than
it on any. An agent trained at a fixed preference that weighs one objective only (a
corner, e.g. cost only) is judged by that objective's return: the others carry no weight
for it, and the hypervolume of its one point would let them decide. The state of the best evaluation (the latest on ties) is kept in
``checkpoints/best.pt`` and exported to ``best/`` at the end, so a late collapse of
training does not cost the policy it reached before; ``metrics.json`` says which step
it is (``best_evaluation``).

With an ``imitation`` section, an agent that can imitate first fits a baseline's decisions
(:meth:`~paretochain.agents.mo_ppo.MOPPO.imitate`, :meth:`~paretochain.agents.dcl.DCLAgent.imitate`);
those steps are logged under ``imitation/*`` and do not count towards ``budget_env_steps``.

A run stops cleanly on Ctrl-C or SIGTERM (it checkpoints first); a SIGKILL loses at
most one checkpoint interval. ``resume=True`` continues from the newest checkpoint.

**Checkpoints hold tensors and plain data only** and are read with
``torch.load(weights_only=True)``: a file holding any other pickled object is refused
without running it. Each file carries the SHA-256 of its payload; a checkpoint that
fails it (or cannot be read) is skipped with a :class:`~paretochain.errors.CheckpointWarning`
and the resume continues from the newest good one (``keep_checkpoints`` is at least 2); the
skipped files are renamed ``step_<N>.pt.damaged`` (kept for inspection, no longer counted).

**Budget.** Agents train in whole updates (the agent's ``update_env_steps``: MO-PPO and
SB3 PPO rollouts of ``num_steps x num_envs`` steps; DQN agents vector steps of
``num_envs``), so a budget that is not a multiple is rounded up; :func:`planned_env_steps`
says to what, and the command line prints it before training starts.

The run talks to its agent only through :class:`~paretochain.agents.protocol.Agent`;
:func:`~paretochain.train.agents.build_agent` builds it from the run config.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import pickle
import re
import shlex
import shutil
import signal
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from paretochain import __version__
from paretochain.agents.logging import TensorBoardLogger
from paretochain.agents.protocol import Agent, ImitatingAgent
from paretochain.devices import require_device
from paretochain.envs.registration import env_class, make_vec
from paretochain.errors import CheckpointWarning, ConfigError, PolicyFileError
from paretochain.evaluate.baselines import family_baselines
from paretochain.seeds import VALIDATION
from paretochain.train.agents import build_agent
from paretochain.train.config import RunConfig, load_run_config

CHECKPOINT_FORMAT = "paretochain.run-checkpoint/2"
RUN_MARKER = ".paretochain-run"
# fields a resumed run may change: the budget, and where new runs go (the run directory is given)
RESUMABLE_CHANGES = frozenset({"budget_env_steps", "runs_dir", "threads"})


@dataclass
class RunResult:
    """Where a run wrote its outputs and what it measured."""

    run_dir: Path
    policy_path: Path | None
    metrics: dict[str, Any]
    interrupted: bool


class RunDirectoryExists(ConfigError):
    """The run directory exists and neither resume nor overwrite was asked for."""


def agent_steps(agent: Agent) -> int:
    """Environment steps an agent has trained for."""
    return int(agent.num_env_steps)


def env_config_of(run: RunConfig) -> Any:
    """The environment config of a run, validated (raises ConfigError before anything is written)."""
    cls = env_class(run.env.id)
    return cls.config_cls.load(run.env.config, **run.env.overrides)


def save_checkpoint(state: Mapping[str, Any], path: Path) -> None:
    """Write ``state`` (tensors and plain data) atomically, with the SHA-256 of its bytes beside it in the file.

    The file is itself a torch file, ``{"format", "sha256", "payload"}``, whose payload
    is the serialised state as a uint8 tensor: :func:`load_checkpoint` checks the
    digest before it reads the state.
    """
    inner = io.BytesIO()
    torch.save(dict(state), inner)
    digest = hashlib.sha256(inner.getbuffer()).hexdigest()
    payload = torch.frombuffer(inner.getbuffer(), dtype=torch.uint8)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save({"format": CHECKPOINT_FORMAT, "sha256": digest, "payload": payload}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _atomic_write_text(text: str, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint files of a run (``step_<N>.pt``), oldest first."""
    folder = run_dir / "checkpoints"
    found = [p for p in folder.glob("step_*.pt") if re.fullmatch(r"step_\d+", p.stem)] if folder.exists() else []
    return sorted(found, key=lambda p: int(p.stem.split("_")[1]))


def _safe_torch_load(source: Path | io.BytesIO, path: Path) -> Any:
    """``torch.load(weights_only=True)``, its failures turned into one-line PolicyFileErrors."""
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message runs over many lines; its reason is on the one naming the refused global
        lines = [ln.strip() for ln in str(exc).splitlines() if "Unsupported" in ln or "WeightsUnpickler" in ln]
        reason = lines[0] if lines else str(exc).splitlines()[0]
        raise PolicyFileError(
            f"checkpoint {path} holds an object other than tensors and plain data ({reason}): "
            "refused without loading it, as loading could run code"
        ) from None
    except Exception as exc:  # torch raises several types for damaged files
        raise PolicyFileError(
            f"checkpoint {path} cannot be read (truncated or corrupted?): {type(exc).__name__}: {exc}".splitlines()[0]
        ) from None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a run checkpoint written by :func:`save_checkpoint`.

    Nothing in the file is executed (``weights_only=True``). Raises PolicyFileError, in one
    line naming the file, for a truncated file, a failed checksum, a foreign file or a
    file holding any object other than tensors and plain data.
    """
    outer = _safe_torch_load(path, path)
    if not isinstance(outer, dict) or outer.get("format") != CHECKPOINT_FORMAT:
        got = outer.get("format") if isinstance(outer, dict) else type(outer).__name__
        raise PolicyFileError(
            f"{path} is not a paretochain run checkpoint (format {got!r}, expected {CHECKPOINT_FORMAT!r})"
        )
    payload = outer.get("payload")
    if not isinstance(payload, torch.Tensor) or payload.dtype != torch.uint8 or payload.dim() != 1:
        raise PolicyFileError(f"checkpoint {path} has no payload")
    data = payload.numpy().tobytes()
    if hashlib.sha256(data).hexdigest() != outer.get("sha256"):
        raise PolicyFileError(f"checkpoint {path} fails its SHA-256 checksum: its content was changed or damaged")
    state = _safe_torch_load(io.BytesIO(data), path)
    if not isinstance(state, dict):
        raise PolicyFileError(f"checkpoint {path} holds a {type(state).__name__}, not a run state")
    return state


def newest_good_checkpoint(run_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint of ``run_dir`` that reads and passes its checksum, and its state.

    Each newer one that does not is reported with a :class:`CheckpointWarning`. Raises
    ConfigError when the run holds no checkpoint and PolicyFileError when none is good.
    """
    found = checkpoints(run_dir)
    if not found:
        raise ConfigError(f"cannot resume: {run_dir / 'checkpoints'} holds no checkpoint")
    problems = []
    for path in reversed(found):
        try:
            return path, load_checkpoint(path)
        except PolicyFileError as exc:
            problems.append(str(exc))
            warnings.warn(f"{exc}; trying the previous checkpoint", CheckpointWarning, stacklevel=2)
    raise PolicyFileError(f"cannot resume {run_dir}: none of its {len(found)} checkpoint(s) is usable ({problems[0]})")


def config_differences(
    saved: RunConfig,
    given: RunConfig,
    ignore: frozenset[str] = RESUMABLE_CHANGES,
    labels: tuple[str, str] = ("run", "given"),
) -> list[str]:
    """Dotted names of the fields whose values differ between two run configs, with both values under ``labels``."""

    def walk(a: Any, b: Any, prefix: str) -> list[str]:
        if isinstance(a, dict) and isinstance(b, dict):
            out = []
            for key in sorted(set(a) | set(b), key=str):
                name = f"{prefix}.{key}" if prefix else str(key)
                if name not in ignore:
                    out += walk(a.get(key), b.get(key), name)
            return out
        return [] if a == b else [f"{prefix} ({labels[0]}: {a!r}, {labels[1]}: {b!r})"]

    return walk(saved.model_dump(mode="json"), given.model_dump(mode="json"), "")


def resume_config(run_dir: Path | str, overrides: Sequence[str] = ()) -> RunConfig:
    """The config of the run in ``run_dir`` (its own ``config.yaml``) with ``key=value`` overrides.

    Raises ConfigError when ``run_dir`` holds no run.
    """
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"cannot resume: {run_dir} is not a run directory (it has no config.yaml)")
    return load_run_config(path, overrides)


def planned_env_steps(agent: Agent, budget: int, start: int = 0) -> int:
    """The step count a run from ``start`` to ``budget`` ends at: the budget rounded up to whole updates."""
    size = agent.update_env_steps
    return start if budget <= start else start + math.ceil((budget - start) / size) * size


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag the training loop checks between updates."""

    def __init__(self) -> None:
        self.requested: str | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        self.requested = signal.Signals(signum).name


@contextmanager
def _stop_on_signals() -> Iterator[_StopRequest]:
    stop = _StopRequest()
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread: no signal handling
            previous[sig] = signal.signal(sig, stop)
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def prepare_run_dir(run: RunConfig, run_dir: Path | None, resume: bool, overwrite: bool) -> Path:
    """Decide the run directory; refuse to touch an existing one unless resuming or overwriting.

    ``overwrite`` is honoured only for a directory a run made (it holds the
    ``.paretochain-run`` marker); anything else is refused and nothing is deleted.
    """
    run_dir = Path(run_dir) if run_dir is not None else Path(run.runs_dir) / run.run_name
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} is a file, not a directory")
    occupied = run_dir.exists() and any(run_dir.iterdir())
    if resume:
        if not occupied:
            raise ConfigError(f"cannot resume: run directory {run_dir} does not exist or is empty")
        return run_dir
    if occupied and not overwrite:
        message = (
            f"run directory {run_dir} already exists: continue it with `paretochain train --resume {shlex.quote(str(run_dir))}` "
            "or pass --overwrite to replace it"
        )
        with contextlib.suppress(ConfigError):
            differences = config_differences(resume_config(run_dir), run)
            if differences:
                message += f" (it holds a run of another config: {differences[0]}; set name=... to start a new run)"
        raise RunDirectoryExists(message)
    if occupied and not (run_dir / RUN_MARKER).is_file():
        raise ConfigError(
            f"--overwrite refused: {run_dir} was not made by a paretochain run (no {RUN_MARKER} marker in it); "
            "nothing was deleted"
        )
    return run_dir


def train(
    run: RunConfig,
    run_dir: Path | str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    evaluate_during: bool = True,
    announce: Callable[[str], None] | None = None,
) -> RunResult:
    """Train, checkpoint, evaluate, export; see the module docstring for the layout.

    Args:
        run: the run config.
        run_dir: override of ``<runs_dir>/<name>``.
        resume: continue from the newest good checkpoint in ``run_dir``; ``run`` must equal
            the run's own ``config.yaml`` but for ``budget_env_steps`` (and ``runs_dir``, ``threads``),
            else ConfigError names the first differing fields (see :func:`resume_config`).
        overwrite: replace an existing run directory (only one a run made).
        progress: show a progress bar with ETA and the latest per-objective returns.
        evaluate_during: evaluate over the preference set at every ``eval_interval_steps``.
        announce: receives one-line notices before training starts (the budget's rounding).
    """
    env_cfg = env_config_of(run)  # config errors first: nothing is touched before they are checked
    device = require_device(run.device, "device")
    if run.threads is not None:
        torch.set_num_threads(run.threads)
    run_dir = prepare_run_dir(run, Path(run_dir) if run_dir is not None else None, resume, overwrite)
    state = None
    if resume:
        differences = config_differences(resume_config(run_dir), run)
        if differences:
            raise ConfigError(
                f"cannot resume {run_dir}: the given config differs from the run's config.yaml in "
                f"{'; '.join(differences)} (only budget_env_steps, runs_dir and threads may change; `paretochain train --resume {shlex.quote(str(run_dir))}` "
                "continues it as it was)"
            )
        checkpoint_path, state = newest_good_checkpoint(run_dir)
        _check_owner(checkpoint_path, state, run)
    env = make_vec(run.env.id, run.num_envs, device=device, config=env_cfg, tensors=True, check_actions=False)
    agent = build_agent(run, env, str(device))
    teacher = None
    if state is not None:
        try:
            agent.load_state_dict(state["agent"])
        except PolicyFileError as exc:
            raise PolicyFileError(f"checkpoint {checkpoint_path}: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise PolicyFileError(f"checkpoint {checkpoint_path} does not fit this run's agent: {reason}") from None
    elif run.imitation is not None:  # built before anything is written: an unknown baseline fails here
        name = run.imitation.baseline
        teacher = family_baselines(run.env.id, env_cfg, [name], device=str(device))[name](env)

    if overwrite and run_dir.exists() and not resume:
        _clear_run_dir(run_dir)
    if state is not None:
        _set_aside_newer_than(checkpoint_path, run_dir)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    if not (run_dir / RUN_MARKER).exists():
        marker = {"made_by": "paretochain train", "version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        _atomic_write_text(json.dumps(marker) + "\n", run_dir / RUN_MARKER)
    _atomic_write_text(run.to_yaml(), run_dir / "config.yaml")
    logger = TensorBoardLogger(str(run_dir / "tb"))
    logger.record_config(run.model_dump(mode="json"), run.to_yaml())

    step = agent_steps(agent)
    planned = planned_env_steps(agent, run.budget_env_steps, step)
    if planned != max(run.budget_env_steps, step) and announce is not None:
        announce(
            f"budget_env_steps={run.budget_env_steps:,} is not a whole number of updates of "
            f"{agent.update_env_steps:,} env steps: training to {planned:,} env steps"
        )
    history: list[dict[str, Any]] = list(state["evaluations"]) if state else []
    seconds = float(state["seconds"]) if state else 0.0
    next_ckpt = (step // run.checkpoint_interval_steps + 1) * run.checkpoint_interval_steps
    next_eval = (step // run.eval_interval_steps + 1) * run.eval_interval_steps
    latest: dict[str, float] = {}
    interrupted = None
    bar = _progress(planned, step) if progress else None

    def on_stats(stats: dict[str, float]) -> bool:
        latest.update(stats)
        if bar is not None:
            bar.n = min(int(stats.get("global_step", agent_steps(agent))), planned)
            bar.set_postfix_str(_postfix(stats, agent.objective_names), refresh=False)
            bar.refresh()
        return stop.requested is None

    best = _BestPolicy(
        run_dir / "checkpoints" / "best.pt",
        resumed_at=step if state is not None else None,
        run=run,
        corner=preference_corner(agent.fixed_preference),
        objective_names=agent.objective_names,
    )

    def evaluate(step_now: int) -> None:
        history.append(_evaluate(agent, run, env_cfg, step_now, logger))
        best.offer(history[-1], agent)

    def save(step_now: int) -> None:
        payload = _checkpoint(step_now, agent, run, seconds=seconds, evaluations=history)
        save_checkpoint(payload, run_dir / "checkpoints" / f"step_{step_now}.pt")
        for old in checkpoints(run_dir)[: -run.keep_checkpoints]:
            old.unlink(missing_ok=True)

    with _stop_on_signals() as stop:
        if teacher is not None and run.imitation is not None:
            t0 = time.perf_counter()
            # the run config allows an imitation section only for an agent that can imitate
            cast(ImitatingAgent, agent).imitate(
                teacher, run.imitation.env_steps, logger=logger, callback=lambda _: stop.requested is None
            )
            seconds += time.perf_counter() - t0
        while step < run.budget_env_steps and stop.requested is None:
            chunk = min(next_ckpt, next_eval, run.budget_env_steps) - step
            t0 = time.perf_counter()
            agent.learn(max(1, chunk), logger=logger, callback=on_stats)
            seconds += time.perf_counter() - t0
            step = agent_steps(agent)
            if stop.requested is not None:
                interrupted = stop.requested
                break
            if evaluate_during and step >= next_eval:
                evaluate(step)
                next_eval = (step // run.eval_interval_steps + 1) * run.eval_interval_steps
            if step >= next_ckpt or step >= run.budget_env_steps:
                save(step)
                next_ckpt = (step // run.checkpoint_interval_steps + 1) * run.checkpoint_interval_steps
        if stop.requested is not None:
            interrupted = stop.requested
            save(step)
    if bar is not None:
        bar.close()
    logger.close() if hasattr(logger, "close") else None

    policy_path = None
    best_evaluation = None
    if interrupted is None:
        if evaluate_during and (not history or history[-1]["step"] != step):
            evaluate(step)
        from paretochain.agents.export import export_policy

        run_info = {"name": run.run_name, "dir": str(run_dir), "config": run.model_dump(mode="json")}
        policy_path = export_policy(agent, run_dir, run={**run_info, "env_steps": step})
        if best.step is not None:
            best_dir = run_dir / "best"
            if best.step == step:  # the final policy is the best: the same files
                best_dir.mkdir(exist_ok=True)
                for name in ("policy.pt", "policy.pt2"):
                    if (run_dir / name).exists():
                        shutil.copyfile(run_dir / name, best_dir / name)
            else:
                agent.load_state_dict(best.load()["agent"])  # the run is over: the agent may go back
                export_policy(agent, best_dir, run={**run_info, "env_steps": best.step})
            best_evaluation = {**best.summary(), "policy": str(best_dir / "policy.pt")}
    metrics = {
        "run": run.run_name,
        "agent": run.agent,
        "env_id": run.env.id,
        "env_steps": step,
        "train_seconds": round(seconds, 3),
        "env_steps_per_second": round(step / seconds, 1) if seconds > 0 else None,
        "device": str(device),
        "objectives": list(agent.objective_names),
        "latest_training_stats": {k: v for k, v in latest.items() if isinstance(v, (int, float))},
        "evaluations": history,
        "final_evaluation": history[-1] if history else None,
        "best_evaluation": best_evaluation,
        "interrupted": interrupted,
        "paretochain_version": __version__,
    }
    _atomic_write_text(json.dumps(metrics, indent=2), run_dir / "metrics.json")
    return RunResult(run_dir, policy_path, metrics, interrupted is not None)


def _checkpoint(step: int, agent: Agent, run: RunConfig | None, **extra: Any) -> dict[str, Any]:
    """A run state (what :func:`load_checkpoint` returns): the agent's state at ``step``, the run's config, ``extra``."""
    state = {
        "version": __version__,
        "step": step,
        "run_config": None if run is None else run.model_dump(mode="json"),
        **extra,
        "agent": agent.state_dict(),
    }
    _require_plain(state, "checkpoint")
    return state


def _require_plain(value: Any, where: str) -> None:
    """Refuse, when writing, what ``torch.load(weights_only=True)`` would refuse when reading."""
    if value is None or isinstance(value, (bool, int, float, str, bytes, torch.Tensor, torch.dtype, torch.device)):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _require_plain(key, f"{where} key")
            _require_plain(item, f"{where}.{key}")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _require_plain(item, f"{where}[{i}]")
        return
    raise TypeError(f"{where} is a {type(value).__name__}: a checkpoint holds tensors and plain data only")


def _check_owner(path: Path, state: dict[str, Any], run: RunConfig) -> None:
    """Refuse a checkpoint written by a run of another config (another family, agent, environment)."""
    saved = state.get("run_config")
    if not isinstance(saved, dict):
        raise PolicyFileError(f"checkpoint {path} does not say which run wrote it")
    try:
        owner = RunConfig.validate_data(saved, str(path))
    except ConfigError:
        raise PolicyFileError(f"checkpoint {path} names a run config this version cannot read") from None
    differences = config_differences(owner, run, labels=("checkpoint", "this run"))
    if differences:
        raise PolicyFileError(f"checkpoint {path} belongs to another run: {'; '.join(differences[:3])}")


def _set_aside_newer_than(resumed_from: Path, run_dir: Path) -> None:
    """Rename the unusable checkpoints newer than the one a resume starts from to ``*.damaged`` (kept, not counted)."""
    newer = [p for p in checkpoints(run_dir) if int(p.stem.split("_")[1]) > int(resumed_from.stem.split("_")[1])]
    for path in newer:
        target, n = path.with_name(path.name + ".damaged"), 1
        while target.exists():  # an earlier incident's file stays too
            target, n = path.with_name(f"{path.name}.damaged{n}"), n + 1
        os.replace(path, target)
    if newer:
        warnings.warn(
            f"resuming from {resumed_from.name}; the unusable newer checkpoint(s) "
            f"{', '.join(p.name for p in newer)} are kept beside it as *.damaged",
            CheckpointWarning,
            stacklevel=3,
        )


def _clear_run_dir(run_dir: Path) -> None:
    for child in run_dir.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _evaluate(agent: Agent, run: RunConfig, env_cfg: Any, step: int, logger: Any) -> dict[str, Any]:
    """Hypervolume and expected utility over the preference grid (fixed-preference agents: one point)."""
    from paretochain.agents.preferences import preference_grid
    from paretochain.evaluate.pareto import evaluate_pareto

    fixed = agent.fixed_preference
    prefs = (
        fixed.reshape(1, -1) if fixed is not None else preference_grid(len(agent.objective_names), run.eval_preferences)
    )
    seeds = VALIDATION.first(run.eval_episodes)
    with torch.inference_mode():
        result = evaluate_pareto(agent, run.env.id, config=env_cfg, preferences=prefs, seeds=seeds, device=agent.device)
    logger.scalar("eval/hypervolume", result.hypervolume, step)
    logger.scalar("eval/expected_utility", result.expected_utility, step)
    for i, name in enumerate(agent.objective_names):
        logger.scalar(f"eval/mean_return/{name}", float(result.returns[:, i].mean()), step)
    return {"step": step, **result.to_dict()}


def preference_corner(preference: np.ndarray | torch.Tensor | None) -> int | None:
    """The index of the one objective a fixed preference weighs (a corner of the simplex); None otherwise."""
    if preference is None:
        return None
    weights = np.asarray(torch.as_tensor(preference, dtype=torch.float64).cpu()).reshape(-1)
    nonzero = np.flatnonzero(weights > 0)
    return int(nonzero[0]) if nonzero.size == 1 else None


class _BestPolicy:
    """The best evaluation of a run so far and the agent state behind it, kept in ``path``.

    Args:
        path: where the state is saved (``checkpoints/best.pt``).
        resumed_at: the step a resumed run continues from (None for a new run). A saved
            best from a later step belongs to steps the run is about to redo: it is dropped.
            A damaged saved best, or one of another run, is dropped with a CheckpointWarning.
        run: the run's config, saved with the state.
        corner: for a run at a fixed preference that weighs one objective only, that
            objective's index: evaluations are compared by its return. None: by hypervolume.
        objective_names: the agent's objectives (to name the corner's).
    """

    def __init__(
        self,
        path: Path,
        resumed_at: int | None,
        run: RunConfig | None = None,
        corner: int | None = None,
        objective_names: Sequence[str] = (),
    ) -> None:
        self.path = path
        self.run = run
        self.corner = corner
        self.metric = "hypervolume" if corner is None else f"return of {objective_names[corner]}"
        self.step: int | None = None
        self.value = -float("inf")
        if resumed_at is not None and path.exists():
            try:
                saved = self.load()
                if run is not None:
                    _check_owner(path, saved, run)
            except PolicyFileError as exc:
                warnings.warn(f"{exc}; the best policy is chosen again from here on", CheckpointWarning, stacklevel=2)
                return
            if int(saved["step"]) <= resumed_at:
                self.step, self.value = int(saved["step"]), float(saved["value"])

    def offer(self, evaluation: dict[str, Any], agent: Agent) -> None:
        """Keep the agent's state when ``evaluation`` scores at least the best so far."""
        if self.corner is None:
            value = float(evaluation["hypervolume"])
        else:
            value = float(evaluation["returns"][0][self.corner])
        if value >= self.value:
            self.step, self.value = int(evaluation["step"]), value
            save_checkpoint(_checkpoint(self.step, agent, self.run, metric=self.metric, value=value), self.path)

    def load(self) -> dict[str, Any]:
        return load_checkpoint(self.path)

    def summary(self) -> dict[str, Any]:
        return {"step": self.step, "selected_by": self.metric, "value": self.value}


def _progress(total: int, start: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=start, unit="step", unit_scale=True, dynamic_ncols=True, desc="train")


def _postfix(stats: dict[str, float], names: list[str]) -> str:
    parts = [f"{n}={stats[f'charts/episode_return/{n}']:.4g}" for n in names if f"charts/episode_return/{n}" in stats]
    if "charts/SPS" in stats:
        parts.append(f"SPS={stats['charts/SPS']:.0f}")
    return " ".join(parts)
