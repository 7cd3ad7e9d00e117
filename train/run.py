"""A training run: one run directory, checkpoints, TensorBoard, evaluation, export.

Layout written under ``<runs_dir>/<name>/``::

    config.yaml          the resolved run config, as run
    tb/                  TensorBoard events (per-objective returns, losses, SPS, hypervolume)
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
it on any. The state of the best evaluation (the latest on ties) is kept in
``checkpoints/best.pt`` and exported to ``best/`` at the end, so a late collapse of
training does not cost the policy it reached before; ``metrics.json`` says which step
it is (``best_evaluation``).

With an ``imitation`` section, MO-PPO first fits a baseline's decisions
(:meth:`~paretochain.agents.mo_ppo.MOPPO.imitate`); those steps are logged under
``imitation/*`` and do not count towards ``budget_env_steps``.

A run stops cleanly on Ctrl-C or SIGTERM (it checkpoints first); a SIGKILL loses at
most one checkpoint interval. ``resume=True`` continues from the newest checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from paretochain import __version__
from paretochain.agents.logging import TensorBoardLogger
from paretochain.envs.registration import env_class, make_vec, resolve_device
from paretochain.errors import ConfigError, PolicyFileError
from paretochain.evaluate.baselines import family_baselines
from paretochain.train.agents import build_agent
from paretochain.train.config import RunConfig

CHECKPOINT_FORMAT = "paretochain.run-checkpoint/1"


@dataclass
class RunResult:
    """Where a run wrote its outputs and what it measured."""

    run_dir: Path
    policy_path: Path | None
    metrics: dict[str, Any]
    interrupted: bool


class RunDirectoryExists(ConfigError):
    """The run directory exists and neither resume nor overwrite was asked for."""


def agent_steps(agent: Any) -> int:
    """Environment steps an agent has trained for (``global_step`` or ``num_env_steps``)."""
    for name in ("global_step", "num_env_steps"):
        value = getattr(agent, name, None)
        if value is not None:
            return int(value)
    raise AttributeError(f"{type(agent).__name__} reports no step counter (global_step or num_env_steps)")


def env_config_of(run: RunConfig) -> Any:
    """The environment config of a run, validated (raises ConfigError before anything is written)."""
    cls = env_class(run.env.id)
    return cls.config_cls.load(run.env.config, **run.env.overrides)


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _atomic_write_text(text: str, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint files of a run, oldest first."""
    folder = run_dir / "checkpoints"
    found = [p for p in folder.glob("step_*.pt")] if folder.exists() else []
    return sorted(found, key=lambda p: int(p.stem.split("_")[1]))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a run checkpoint, refusing truncated or foreign files with a clear error."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises several types for damaged files
        raise PolicyFileError(
            f"checkpoint {path} cannot be read (truncated or corrupted?): {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise PolicyFileError(f"{path} is not a paretochain run checkpoint")
    return state


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
    """Decide the run directory; refuse to touch an existing one unless resuming or overwriting."""
    run_dir = Path(run_dir) if run_dir is not None else Path(run.runs_dir) / run.run_name
    if run_dir.exists() and any(run_dir.iterdir()):
        if not resume and not overwrite:
            raise RunDirectoryExists(
                f"run directory {run_dir} already exists: pass --resume to continue it or --overwrite to replace it"
            )
    elif resume:
        raise ConfigError(f"cannot resume: run directory {run_dir} does not exist or is empty")
    return run_dir


def train(
    run: RunConfig,
    run_dir: Path | str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    evaluate_during: bool = True,
) -> RunResult:
    """Train, checkpoint, evaluate, export; see the module docstring for the layout.

    Args:
        run: the run config.
        run_dir: override of ``<runs_dir>/<name>``.
        resume: continue from the newest checkpoint in ``run_dir``.
        overwrite: replace an existing run directory.
        progress: show a progress bar with ETA and the latest per-objective returns.
        evaluate_during: evaluate over the preference set at every ``eval_interval_steps``.
    """
    env_cfg = env_config_of(run)  # config errors first: nothing is touched before they are checked
    run_dir = prepare_run_dir(run, Path(run_dir) if run_dir is not None else None, resume, overwrite)
    device = resolve_device(run.device)
    state = None
    if resume:
        found = checkpoints(run_dir)
        if not found:
            raise ConfigError(f"cannot resume: {run_dir / 'checkpoints'} holds no checkpoint")
        state = load_checkpoint(found[-1])
        saved = RunConfig.validate_data(
            yaml.safe_load((run_dir / "config.yaml").read_text()), str(run_dir / "config.yaml")
        )
        if saved.model_dump(exclude={"budget_env_steps"}) != run.model_dump(exclude={"budget_env_steps"}):
            raise ConfigError(
                f"cannot resume {run_dir}: its config.yaml differs from the given config (only budget_env_steps may change)"
            )
    env = make_vec(run.env.id, run.num_envs, device=device, config=env_cfg, tensors=True, check_actions=False)
    agent = build_agent(run, env, str(device))
    teacher = None
    if state is not None:
        agent.load_state_dict(state["agent"])
    elif run.imitation is not None:  # built before anything is written: an unknown baseline fails here
        name = run.imitation.baseline
        teacher = family_baselines(run.env.id, env_cfg, [name], device=str(device))[name](env)

    if overwrite and run_dir.exists() and not resume:
        _clear_run_dir(run_dir)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    _atomic_write_text(run.to_yaml(), run_dir / "config.yaml")
    logger = TensorBoardLogger(str(run_dir / "tb"))
    logger.record_config(run.model_dump(mode="json"), run.to_yaml())

    step = agent_steps(agent)
    history: list[dict[str, Any]] = list(state["evaluations"]) if state else []
    seconds = float(state["seconds"]) if state else 0.0
    next_ckpt = (step // run.checkpoint_interval_steps + 1) * run.checkpoint_interval_steps
    next_eval = (step // run.eval_interval_steps + 1) * run.eval_interval_steps
    latest: dict[str, float] = {}
    interrupted = None
    bar = _progress(run.budget_env_steps, step) if progress else None

    def on_stats(stats: dict[str, float]) -> bool:
        latest.update(stats)
        if bar is not None:
            bar.n = int(stats.get("global_step", agent_steps(agent)))
            bar.set_postfix_str(_postfix(stats, agent.objective_names), refresh=False)
            bar.refresh()
        return stop.requested is None

    best = _BestPolicy(run_dir / "checkpoints" / "best.pt", resumed_at=step if state is not None else None)

    def evaluate(step_now: int) -> None:
        history.append(_evaluate(agent, run, env_cfg, step_now, logger))
        best.offer(history[-1], agent)

    def save(step_now: int) -> None:
        payload = _checkpoint(step_now, agent, seconds=seconds, evaluations=history)
        _atomic_save(payload, run_dir / "checkpoints" / f"step_{step_now}.pt")
        for old in checkpoints(run_dir)[: -run.keep_checkpoints]:
            old.unlink(missing_ok=True)

    with _stop_on_signals() as stop:
        if teacher is not None and run.imitation is not None:
            t0 = time.perf_counter()
            agent.imitate(teacher, run.imitation.env_steps, logger=logger, callback=lambda _: stop.requested is None)
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


def _checkpoint(step: int, agent: Any, **extra: Any) -> dict[str, Any]:
    """A run checkpoint (what :func:`load_checkpoint` reads): the agent's state at ``step`` and ``extra`` entries."""
    return {"format": CHECKPOINT_FORMAT, "version": __version__, "step": step, **extra, "agent": agent.state_dict()}


def _clear_run_dir(run_dir: Path) -> None:
    for child in run_dir.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _evaluate(agent: Any, run: RunConfig, env_cfg: Any, step: int, logger: Any) -> dict[str, Any]:
    """Hypervolume and expected utility over the preference grid (fixed-preference agents: one point)."""
    from paretochain.agents.preferences import preference_grid
    from paretochain.evaluate.pareto import evaluate_pareto

    fixed = fixed_preference(agent, run)
    prefs = (
        fixed.reshape(1, -1) if fixed is not None else preference_grid(len(agent.objective_names), run.eval_preferences)
    )
    seeds = list(range(10_000, 10_000 + run.eval_episodes))
    with torch.inference_mode():
        result = evaluate_pareto(agent, run.env.id, config=env_cfg, preferences=prefs, seeds=seeds, device=agent.device)
    logger.scalar("eval/hypervolume", result.hypervolume, step)
    logger.scalar("eval/expected_utility", result.expected_utility, step)
    for i, name in enumerate(agent.objective_names):
        logger.scalar(f"eval/mean_return/{name}", float(result.returns[:, i].mean()), step)
    return {"step": step, **result.to_dict()}


class _BestPolicy:
    """The best evaluation of a run so far (by hypervolume) and the agent state behind it, kept in ``path``.

    Args:
        path: where the state is saved (``checkpoints/best.pt``).
        resumed_at: the step a resumed run continues from (None for a new run). A saved
            best from a later step belongs to steps the run is about to redo: it is dropped.
    """

    metric = "hypervolume"

    def __init__(self, path: Path, resumed_at: int | None) -> None:
        self.path = path
        self.step: int | None = None
        self.value = -float("inf")
        if resumed_at is not None and path.exists():
            saved = self.load()
            if int(saved["step"]) <= resumed_at:
                self.step, self.value = int(saved["step"]), float(saved["value"])

    def offer(self, evaluation: dict[str, Any], agent: Any) -> None:
        """Keep the agent's state when ``evaluation`` scores at least the best so far."""
        value = float(evaluation[self.metric])
        if value >= self.value:
            self.step, self.value = int(evaluation["step"]), value
            _atomic_save(_checkpoint(self.step, agent, metric=self.metric, value=value), self.path)

    def load(self) -> dict[str, Any]:
        return load_checkpoint(self.path)

    def summary(self) -> dict[str, Any]:
        return {"step": self.step, "selected_by": self.metric, "value": self.value}


def fixed_preference(agent: Any, run: RunConfig) -> np.ndarray | None:
    """The one preference a fixed-preference agent was trained for (None for preference-conditioned agents)."""
    from paretochain.agents.preferences import preference_from_weights

    fixed = getattr(getattr(agent, "sampler", None), "fixed", None)
    if fixed is not None:
        return np.asarray(fixed.detach().cpu().numpy(), dtype=np.float64)
    weights = run.preference if run.preference is not None else run.hyperparameters.get("weights")
    if weights is not None:
        return preference_from_weights(agent.objective_names, weights)
    if run.agent.startswith("sb3"):  # SB3 agents without weights are scalarised with equal weights
        k = len(agent.objective_names)
        return np.full(k, 1.0 / k)
    return None


def _progress(total: int, start: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=start, unit="step", unit_scale=True, dynamic_ncols=True, desc="train")


def _postfix(stats: dict[str, float], names: list[str]) -> str:
    parts = [f"{n}={stats[f'charts/episode_return/{n}']:.4g}" for n in names if f"charts/episode_return/{n}" in stats]
    if "charts/SPS" in stats:
        parts.append(f"SPS={stats['charts/SPS']:.0f}")
    return " ".join(parts)
