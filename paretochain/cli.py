"""The ``paretochain`` command line: ``train``, ``evaluate``, ``demo`` (the main job) and ``sweep``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from paretochain.errors import ParetochainError

DEMO_CONFIG = "warehouse_mo_ppo"


def _train(args: argparse.Namespace) -> int:
    from paretochain.train.config import load_run_config
    from paretochain.train.run import train

    overrides = list(args.overrides)
    run = load_run_config(args.config, overrides)
    if args.full:
        if run.full_budget_env_steps is None:
            raise ParetochainError(
                f"{args.config} documents no full_budget_env_steps; set budget_env_steps=... instead"
            )
        run = run.model_copy(update={"budget_env_steps": run.full_budget_env_steps})
    run_dir = Path(args.resume) if args.resume else (Path(args.run_dir) if args.run_dir else None)
    result = train(
        run, run_dir=run_dir, resume=bool(args.resume), overwrite=args.overwrite, progress=not args.no_progress
    )
    if result.interrupted:
        print(
            f"stopped by signal after {result.metrics['env_steps']} env steps; checkpoint saved. Continue with:\n"
            f"  paretochain train {args.config} --resume {result.run_dir}"
        )
        return 130
    print(f"run directory: {result.run_dir}\npolicy: {result.policy_path}")
    best = result.metrics.get("best_evaluation")
    if best is not None:
        print(f"best policy: {best['policy']} (step {best['step']}, hypervolume {best['value']:.6g})")
    print(f"metrics: {result.run_dir / 'metrics.json'}")
    return 0


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
    from paretochain.evaluate.report import evaluate, headline
    from paretochain.train.config import load_run_config
    from paretochain.train.run import train

    run = load_run_config(DEMO_CONFIG, [f"runs_dir={args.runs_dir}", f"device={args.device}"])
    budget = run.full_budget_env_steps if args.full and run.full_budget_env_steps else run.budget_env_steps
    name = f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    run = run.model_copy(update={"budget_env_steps": budget, "name": name})
    print(f"[1/3] training MO-PPO on paretochain/Warehouse-v0 (config {run.env.config!r}) for {budget:,} env steps")
    result = train(run, progress=not args.no_progress)
    if result.interrupted:
        print(f"interrupted; resume with: paretochain train {DEMO_CONFIG} --resume {result.run_dir}")
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
    parser = argparse.ArgumentParser(
        prog="paretochain", description="Multi-objective RL for warehouses, dispatch and pricing."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train",
        help="train an agent from a run config",
        description="Train from CONFIG.yaml (or a packaged run config name) with dotted key=value overrides.",
    )
    t.add_argument("config", help="run config: a YAML path or a packaged name (configs/runs/)")
    t.add_argument(
        "overrides", nargs="*", help="dotted.key=value overrides, e.g. budget_env_steps=20000 env.overrides.horizon=30"
    )
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its newest checkpoint")
    t.add_argument("--run-dir", help="write the run here instead of <runs_dir>/<name>")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    t.add_argument("--full", action="store_true", help="use the config's documented full budget")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="evaluate a run or policy file against the baselines and write a report")
    e.add_argument("target", help="run directory or policy.pt")
    e.add_argument("--episodes", type=int, default=16, help="seeded episodes per policy and scenario (default 16)")
    e.add_argument("--baselines", nargs="*", default=None, help="baseline names (default: all of the family)")
    e.add_argument("--scenario", nargs="*", default=None, help="robustness scenarios (default: all of the family)")
    e.add_argument("--out", default=None, help="output folder (default: evaluation/ beside the policy)")
    e.add_argument("--device", default="cpu", help="where the environments run (cpu, cuda)")
    e.set_defaults(func=_evaluate)

    d = sub.add_parser(
        "demo", help="the main job: train MO-PPO on the default Warehouse config, evaluate, export, report"
    )
    d.add_argument("--full", action="store_true", help="the documented full budget instead of the few-minute demo")
    d.add_argument("--episodes", type=int, default=16)
    d.add_argument("--runs-dir", default="runs")
    d.add_argument("--device", default="auto")
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=_demo)

    s = sub.add_parser(
        "sweep", help="preference, seed and hyperparameter sweeps on Ray Tune (pip install 'paretochain[ray]')"
    )
    s.add_argument("config", help="sweep config YAML")
    s.add_argument(
        "--address", default=None, help="Ray cluster address (default: RAY_ADDRESS, else a local Ray instance)"
    )
    s.add_argument("--resume", action="store_true", help="resume an interrupted sweep without redoing finished trials")
    s.set_defaults(func=_sweep)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ParetochainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
