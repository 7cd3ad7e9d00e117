"""What a sweep on Ray Tune costs and gains against running the same trials one after another.

The same 2 preferences x 2 seeds of MO-PPO on the default Warehouse (the ``tiny`` sweep
config with a larger budget) run twice in one invocation:

- ``sequential train()``: the plain alternative, a loop of :func:`paretochain.train.run.train`
  calls in this process (one torch thread, as a sweep trial with one CPU has); the
  denominator of the ratios;
- ``ray sweep (N CPUs)``: :func:`paretochain.train.sweep.run_sweep` on a local Ray
  instance of N CPUs, one CPU per trial, including Ray's start, the trials' worker
  start-up, the sweep report and Ray's shutdown.

Each row gives wall seconds, env steps trained per wall second over all trials, trials
per hour, and the ratio of its wall time to the sequential loop's. Per-trial training
itself (``train_seconds`` in each metrics.json) is printed too, so the fixed overhead of
the sweep (Ray, workers, report) shows beside the parallel gain.

Usage::

    python bench/bench_sweep.py                          # CPU, 2 x 2 trials of 16384 env steps
    python bench/bench_sweep.py --budget 65536 --cpus 4
    python bench/bench_sweep.py --device cuda            # trials on the GPU, 0.5 GPU each
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
import yaml

from paretochain.envs.config import packaged_configs_dir
from paretochain.train.config import RunConfig
from paretochain.train.run import train
from paretochain.train.sweep import load_sweep_config, trial_name, trial_run_data


def sweep_data(budget: int, device: str, cpus: int, out: Path) -> dict[str, object]:
    data = yaml.safe_load((packaged_configs_dir() / "sweeps" / "tiny.yaml").read_text())
    data.pop("conditioned_run", None)
    data["name"] = "bench"
    data["sweeps_dir"] = str(out)
    data["overrides"].update(
        {
            "budget_env_steps": budget,
            "checkpoint_interval_steps": budget,
            "eval_interval_steps": budget,
            "device": device,
        }
    )
    data["ray"] = {"num_cpus": cpus, "num_gpus": 1 if device == "cuda" else 0}
    data["resources"] = {"cpus_per_trial": 1, "gpus_per_trial": 0.5 if device == "cuda" else 0}
    return data


def sequential(data: dict[str, object], out: Path) -> tuple[float, float, int]:
    """Wall seconds, summed train seconds and trials of a plain loop over the sweep's trials."""
    plan = load_sweep_config(data)
    torch.set_num_threads(1)
    start = time.perf_counter()
    trained = 0.0
    n = 0
    for pref in plan.preferences or [None]:
        for seed in plan.seeds or [0]:
            params = {"preference": pref, "seed": seed}
            name = trial_name(params)
            run = RunConfig.validate_data(trial_run_data(plan.base_data, params, name), "bench")
            result = train(run, run_dir=out / name, progress=False)
            trained += float(result.metrics["train_seconds"])
            n += 1
    return time.perf_counter() - start, trained, n


def with_ray(data: dict[str, object]) -> tuple[float, float, int]:
    """Wall seconds (Ray start to report), summed train seconds and trials of the Ray sweep."""
    from paretochain.train.sweep import run_sweep

    start = time.perf_counter()
    result = run_sweep(data, verbose=False)
    wall = time.perf_counter() - start
    trained = sum(
        json.loads((result.sweep_dir / "trials" / n / "metrics.json").read_text())["train_seconds"]
        for n in result.finished
    )
    return wall, trained, len(result.finished)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=16384, help="env steps per trial")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="CPUs of the local Ray instance")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        data = sweep_data(args.budget, args.device, args.cpus, out / "sweeps")
        rows = [("sequential train()", *sequential(data, out / "sequential"))]
        rows.append((f"ray sweep ({args.cpus} CPUs)", *with_ray(data)))
    base = rows[0][1]
    print(
        f"MO-PPO on Warehouse default, 2 preferences x 2 seeds, {args.budget} env steps per trial, device {args.device}"
    )
    print(
        f"{'how':<22} {'trials':>6} {'wall s':>8} {'train s (sum)':>14} {'env steps/s':>12} {'trials/hour':>12} {'wall vs sequential':>19}"
    )
    for how, wall, trained, n in rows:
        print(
            f"{how:<22} {n:>6} {wall:>8.1f} {trained:>14.1f} {n * args.budget / wall:>12.0f} {3600 * n / wall:>12.0f} {wall / base:>18.2f}x"
        )


if __name__ == "__main__":
    main()
