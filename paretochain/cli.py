"""The ``paretochain`` command line: ``train``, ``evaluate``, ``demo`` (the main job) and ``sweep``."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from paretochain import __version__
from paretochain.errors import ParetochainError, ParetochainWarning

DEMO_CONFIG = "warehouse_mo_ppo"


def _is_override(token: str) -> bool:
    """``key=value`` (a config path or name never holds ``=`` unless it is a file that exists)."""
    return "=" in token and not token.startswith("-") and not Path(token).is_file()


def resume_command(run_dir: Path | str) -> str:
    """The command that continues the run in ``run_dir`` as it was configured."""
    return f"paretochain train --resume {shlex.quote(str(run_dir))}"


def _train(args: argparse.Namespace) -> int:
    from paretochain.train.config import load_run_config
    from paretochain.train.run import resume_config, train

    tokens = ([args.config] if args.config is not None else []) + list(args.overrides)
    config = tokens.pop(0) if tokens and not _is_override(tokens[0]) else None
    bad = [t for t in tokens if not _is_override(t)]
    if bad:
        raise ParetochainError(f"train takes one config and key=value overrides; {bad[0]!r} is neither")
    if config is None and not args.resume:
        raise ParetochainError("train needs a run config (a YAML path or a packaged name) or --resume RUN_DIR")
    if args.resume:
        # the run's own config.yaml; a config given as well must match it but for the budget (train() checks)
        run = load_run_config(config, tokens) if config is not None else resume_config(args.resume, tokens)
        if args.run_dir and Path(args.run_dir) != Path(args.resume):
            raise ParetochainError("--run-dir and --resume name different directories; --resume is the run directory")
    else:
        run = load_run_config(config, tokens)
    if args.full:
        if run.full_budget_env_steps is None:
            raise ParetochainError(
                f"{config or args.resume} documents no full_budget_env_steps; set budget_env_steps=... instead"
            )
        run = run.model_copy(update={"budget_env_steps": run.full_budget_env_steps})
    run_dir = Path(args.resume) if args.resume else (Path(args.run_dir) if args.run_dir else None)
    result = train(
        run,
        run_dir=run_dir,
        resume=bool(args.resume),
        overwrite=args.overwrite,
        progress=not args.no_progress,
        announce=print,
    )
    if result.interrupted:
        print(
            f"stopped by signal after {result.metrics['env_steps']} env steps; checkpoint saved. Continue with:\n"
            f"  {resume_command(result.run_dir)}"
        )
        return 130
    print(f"run directory: {result.run_dir}\npolicy: {result.policy_path}")
    print(final_returns(result.metrics))
    best = result.metrics.get("best_evaluation")
    if best is not None:
        print(best_policy_line(best))
    print(f"metrics: {result.run_dir / 'metrics.json'}")
    return 0


def best_policy_line(best: dict[str, Any]) -> str:
    """The summary line of a run's ``best_evaluation``: its policy, step and the figure that chose it
    (the hypervolume, or the one objective's return at a corner preference)."""
    return f"best policy: {best['policy']} (step {best['step']}, {best['selected_by']} {best['value']:.6g})"


def final_returns(metrics: dict[str, Any]) -> str:
    """A table of a finished run's final evaluation: mean return per objective for each preference."""
    final = metrics.get("final_evaluation")
    if not final:
        return f"trained {metrics['env_steps']:,} env steps (no evaluation)"
    names = list(final["objective_names"])
    width = max(12, *(len(n) + 2 for n in names))
    lines = [
        f"final evaluation after {metrics['env_steps']:,} env steps: hypervolume {final['hypervolume']:.6g}, "
        "mean return per episode:",
        "  " + "preference".ljust(24) + "".join(n.rjust(width) for n in names),
    ]
    for preference, returns in zip(final["preferences"], final["returns"], strict=True):
        label = "[" + " ".join(f"{p:.2f}" for p in preference) + "]"
        lines.append("  " + label.ljust(24) + "".join(f"{r:.6g}".rjust(width) for r in returns))
    return "\n".join(lines)


def _evaluate(args: argparse.Namespace) -> int:
    from paretochain.evaluate.report import evaluate, headline

    result = evaluate(
        args.target,
        episodes=args.episodes,
        baselines=args.baselines,
        scenarios=args.scenario,
        out_dir=args.out,
        device=args.device,
    )
    print(headline(result.metrics))
    print(f"\nreport: {result.report_html}\n        {result.report_md}\nmetrics: {result.metrics_json}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Train the default Warehouse config with MO-PPO, evaluate against the baselines, export, report."""
    from paretochain.envs import tune_allocator
    from paretochain.evaluate.report import evaluate, headline
    from paretochain.train.config import load_run_config
    from paretochain.train.run import train

    tune_allocator()  # the main job opts into the malloc setting that batched CPU steps profit from
    run = load_run_config(DEMO_CONFIG, [f"runs_dir={args.runs_dir}", f"device={args.device}"])
    budget = run.full_budget_env_steps if args.full and run.full_budget_env_steps else run.budget_env_steps
    name = f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    run = run.model_copy(update={"budget_env_steps": budget, "name": name})
    print(f"[1/3] training MO-PPO on paretochain/Warehouse-v0 (config {run.env.config!r}) for {budget:,} env steps")
    result = train(run, progress=not args.no_progress, announce=print)
    if result.interrupted:
        print(f"interrupted; resume with: {resume_command(result.run_dir)}")
        return 130
    print(f"[2/3] evaluating against the baselines on {args.episodes} seeded episodes per policy and scenario")
    evaluation = evaluate(result.run_dir, episodes=args.episodes, device="cpu")
    print("[3/3] exported policy:", result.policy_path, "(+ policy.pt2)\n")
    print(headline(evaluation.metrics))
    print(f"\nreport: {evaluation.report_html}\n        {evaluation.report_md}\nrun directory: {result.run_dir}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    try:
        from paretochain.train.sweep import run_sweep
    except ImportError as exc:  # ray missing
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_sweep(args.config, address=args.address, resume=args.resume)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``paretochain`` argument parser (every subcommand and option carries its help)."""
    parser = argparse.ArgumentParser(
        prog="paretochain", description="Multi-objective RL for warehouses, dispatch and pricing."
    )
    parser.add_argument("--version", action="version", version=f"paretochain {__version__}", help="print the version")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser(
        "train",
        help="train an agent from a run config",
        description=(
            "Train from CONFIG.yaml (or a packaged run config name) with dotted key=value overrides, "
            "given before or after the options. A budget that is not a whole number of the agent's "
            "updates is rounded up, and the rounding is printed before training starts. "
            "`train --resume RUN_DIR` continues a run from its own config.yaml; only "
            "budget_env_steps=N (or --full) may change."
        ),
    )
    t.add_argument(
        "config", nargs="?", help="run config: a YAML path or a packaged name (configs/runs/); omitted with --resume"
    )
    t.add_argument(
        "overrides", nargs="*", help="dotted.key=value overrides, e.g. budget_env_steps=20000 env.overrides.horizon=30"
    )
    t.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its newest good checkpoint, with the run's own config",
    )
    t.add_argument("--run-dir", help="write the run here instead of <runs_dir>/<name>")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run directory (only one a run made)")
    t.add_argument("--full", action="store_true", help="use the config's documented full budget")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_train)

    e = sub.add_parser(
        "evaluate",
        help="evaluate a run or policy file against the baselines and write a report",
        description="Run a trained policy and the family's baselines on the same seeded scenarios; write "
        "report.md, report.html and metrics.json.",
    )
    e.add_argument("target", help="run directory or policy.pt")
    e.add_argument(
        "--episodes", type=int, default=16, help="seeded episodes per policy and scenario, at least 1 (default 16)"
    )
    e.add_argument("--baselines", nargs="*", default=None, help="baseline names (default: all of the family)")
    e.add_argument("--scenario", nargs="*", default=None, help="robustness scenarios (default: all of the family)")
    e.add_argument("--out", default=None, help="output folder (default: evaluation/ beside the policy)")
    e.add_argument("--device", default="cpu", help="where the environments run: cpu, cuda, cuda:N or auto")
    e.set_defaults(func=_evaluate)

    d = sub.add_parser(
        "demo",
        help="the main job: train MO-PPO on the default Warehouse config, evaluate, export, report",
        description=f"Train MO-PPO with the packaged {DEMO_CONFIG} config, evaluate it against the baselines, "
        "export the policy and write the report.",
    )
    d.add_argument("--full", action="store_true", help="the documented full budget instead of the few-minute demo")
    d.add_argument(
        "--episodes", type=int, default=16, help="seeded evaluation episodes per policy and scenario (default 16)"
    )
    d.add_argument("--runs-dir", default="runs", help="where the run directory is created (default runs)")
    d.add_argument(
        "--device", default="auto", help="where training runs: auto (CUDA when torch sees a GPU), cpu or cuda"
    )
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=_demo)

    s = sub.add_parser(
        "sweep",
        help="preference, seed and hyperparameter sweeps on Ray Tune (pip install 'paretochain[ray]')",
        description="Run the trials of a sweep config on Ray Tune and write the sweep report.",
    )
    s.add_argument("config", help="sweep config YAML")
    s.add_argument(
        "--address", default=None, help="Ray cluster address (default: RAY_ADDRESS, else a local Ray instance)"
    )
    s.add_argument("--resume", action="store_true", help="resume an interrupted sweep without redoing finished trials")
    s.set_defaults(func=_sweep)
    return parser


def one_line(exc: BaseException) -> str:
    """An error message on one line (a multi-line message's lines joined with '; ')."""
    lines = [ln.strip().removeprefix("- ").strip() for ln in str(exc).splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        return type(exc).__name__
    head, rest = lines[0], lines[1:]
    return head + (" " + "; ".join(rest) if rest else "")


@contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Print this package's warnings as ``warning: ...`` lines; others keep Python's format."""
    original = warnings.formatwarning

    def formatwarning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> str:
        if issubclass(category, ParetochainWarning):
            return f"warning: {one_line(message if isinstance(message, Warning) else Warning(message))}\n"
        return original(message, category, *args, **kwargs)

    warnings.formatwarning = formatwarning
    try:
        yield
    finally:
        warnings.formatwarning = original


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; a ParetochainError becomes one ``error:`` line on stderr and exit status 2."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if args.command != "train" or not all(_is_override(token) for token in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]  # key=value given after the options
    try:
        with _one_line_warnings():
            return int(args.func(args))
    except ParetochainError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
