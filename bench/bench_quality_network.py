"""Decision quality on many SKUs: the packaged MO-PPO run on ``network_50sku`` against tuned base-stock.

``network_50sku`` is the two-echelon Warehouse network (a DC feeding three warehouses, 50
SKUs, storage capacities, promotions, lost sales; objectives profit, fill rate and holding
cost). The benchmark:

- tunes base-stock on the training seeds (``TUNING_SEEDS``) for profit alone:
  :func:`~paretochain.agents.baselines.warehouse.tune_base_stock`, the project's base-stock
  tuner (one cover, in periods of mean demand, for every node and SKU), here on a grid of
  covers twice as fine as its default (0.25 to 12 periods in steps of 0.25): the base-stock
  policy with the most profit the project can tune;
- with ``--train RUN_CONFIG`` trains the run config through the command line, as a user
  would: ``paretochain train RUN_CONFIG seed=S --full --run-dir DIR`` (``--budget N`` trains
  N steps instead: a quick look, not a claim). A run directory that already holds a policy is
  reused; ``--policy PATH`` adds a policy file instead of (or beside) a trained run;
- chooses the learned policy on the validation seeds (``VALIDATION``): every candidate
  policy file (a run's final policy and its best evaluation's, ``best/``, once when they are the same
  bytes) plays the same
  validation episodes at every preference of a grid on the simplex (steps of
  ``1/--divisions``), and base-stock plays them too. **Rule:** among the (file, preference)
  pairs whose mean fill rate is at least base-stock's, the one with the highest mean profit;
  if no pair reaches base-stock's fill rate, the one with the highest fill rate (the target
  then cannot be met, and the table says so);
- plays the chosen policy at the chosen preference and base-stock on the same test episodes
  (``TEST``: 4,096 by default), batched (``--batch`` episodes per batched rollout), and prints
  each policy's profit, fill rate and holding cost with 95% confidence intervals and the
  differences learned minus base-stock paired by seed, with 95% confidence intervals.

The verdict line tests the target of issue 16: more profit than base-stock (paired CI above 0)
at equal or better fill rate (paired CI of the fill-rate difference not entirely below 0). Profit
and holding cost are per episode (91 periods, currency units); the fill rate is the mean
per-period fill rate. A JSON report is written to ``--out``.

Usage::

    python bench/bench_quality_network.py --policy runs/my-run/policy.pt          # a trained policy file
    python bench/bench_quality_network.py --train configs/runs/network_50sku_mo_ppo.yaml    # trains at --full first
    python bench/bench_quality_network.py --train network_50sku_mo_ppo --budget 200000      # a quick look, not a claim
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import paretochain  # noqa: F401  (registers the environments)
from paretochain.agents.baselines.warehouse import tune_base_stock
from paretochain.agents.export import load_policy
from paretochain.agents.preferences import preference_grid as simplex_lattice
from paretochain.envs import make_vec
from paretochain.envs.warehouse import WarehouseConfig
from paretochain.evaluate.rollout import rollout
from paretochain.evaluate.stats import mean_ci, paired_difference
from paretochain.seeds import TEST, TUNING_SEEDS, VALIDATION

ENV_ID = "paretochain/Warehouse-v0"
#: Base-stock covers searched (periods of mean demand): twice as fine as the tuner's default grid.
COVERS = np.arange(0.25, 12.01, 0.25)
#: The objectives the comparison reads, in the order of the table.
OBJECTIVES = ("profit", "fill_rate", "holding_cost")


def preference_grid(k: int, divisions: int) -> np.ndarray:
    """The project's simplex lattice (:func:`paretochain.agents.preferences.preference_grid`) with its ``k``
    corners first, in objective order, then the other points in the lattice's order."""
    if k < 1 or divisions < 1:
        raise ValueError(f"preference_grid: need k >= 1 and divisions >= 1, got k={k}, divisions={divisions}")
    grid = simplex_lattice(k, divisions)
    corner = grid.max(axis=1) == 1.0
    corners = grid[corner][np.argsort(grid[corner].argmax(axis=1))]
    return np.concatenate([corners, grid[~corner]])


def choose_candidate(candidates: Sequence[dict[str, Any]], base_fill_rate: float) -> dict[str, Any]:
    """The validation rule: the highest profit among candidates with fill rate >= base-stock's.

    Args:
        candidates: one mapping per (policy file, preference) with at least ``profit`` and
            ``fill_rate`` (validation means).
        base_fill_rate: base-stock's mean fill rate on the same validation episodes.

    Returns:
        The chosen candidate, with ``reaches_base_fill_rate`` added: whether it met the
        condition (when none does, the candidate with the highest fill rate is returned and
        the flag is False).
    """
    if not candidates:
        raise ValueError("choose_candidate: no candidates")
    eligible = [c for c in candidates if c["fill_rate"] >= base_fill_rate]
    if eligible:
        return {**max(eligible, key=lambda c: c["profit"]), "reaches_base_fill_rate": True}
    return {**max(candidates, key=lambda c: c["fill_rate"]), "reaches_base_fill_rate": False}


def target_met(profit_diff: float, profit_half: float, fill_diff: float, fill_half: float) -> bool:
    """Issue 16's target: the paired profit CI lies above 0 and the fill-rate CI is not entirely below 0."""
    return profit_diff - profit_half > 0 and fill_diff + fill_half >= 0


def paired_table(
    learned: np.ndarray, base: np.ndarray, names: Sequence[str], level: float = 0.95
) -> dict[str, dict[str, float]]:
    """Per objective: both policies' means and CI half-widths and the paired difference learned minus base.

    Args:
        learned, base: per-episode returns ``(episodes, k)`` on the same seeds, row by row.
        names: the objective names of the columns. Costs are returned as the environment
            gives them (negated: higher is better).
    """
    if learned.shape != base.shape:
        raise ValueError(f"paired_table: returns of shapes {learned.shape} and {base.shape} are not paired")
    lm, lh = mean_ci(learned, level)
    bm, bh = mean_ci(base, level)
    dm, dh = paired_difference(learned, base, level)
    return {
        name: {
            "learned": float(lm[i]),
            "learned_ci95": float(lh[i]),
            "base_stock": float(bm[i]),
            "base_stock_ci95": float(bh[i]),
            "difference": float(dm[i]),
            "difference_ci95": float(dh[i]),
        }
        for i, name in enumerate(names)
    }


def returns_of(
    config: WarehouseConfig,
    policy: Any,
    seeds: Sequence[int],
    preferences: np.ndarray | None,
    device: str,
    batch: int,
) -> np.ndarray:
    """Vector returns ``(episodes, k)`` of ``policy`` (a loaded policy file, or a factory of the env) on ``seeds``.

    Episodes are played ``batch`` at a time; ``preferences`` is ``(k,)`` or one row per seed.
    """
    out = []
    for lo in range(0, len(seeds), batch):
        chunk = list(seeds[lo : lo + batch])
        env = make_vec(ENV_ID, len(chunk), device=device, config=config, tensors=True, check_actions=False)
        acting = policy if hasattr(policy, "act") else policy(env)
        pref = None
        if preferences is not None:
            pref = preferences if preferences.ndim == 1 else preferences[lo : lo + len(chunk)]
        out.append(rollout(env, acting, chunk, preference=pref).returns)
    return np.concatenate(out)


def distinct_files(paths: Sequence[Path]) -> list[Path]:
    """``paths`` without the files whose bytes equal an earlier one's (a run's ``best/`` is often a copy of its final policy)."""
    seen: set[bytes] = set()
    kept = []
    for path in paths:
        data = path.read_bytes()
        if data not in seen:
            seen.add(data)
            kept.append(path)
    return kept


def train_as_a_user(run_config: str, run_dir: Path, budget: int | None, seed: int, threads: int) -> list[Path]:
    """Train ``run_config`` through the command line (``--full`` unless ``budget``); the run's candidate policy files."""
    if not (run_dir / "policy.pt").is_file():
        command = [sys.executable, "-m", "paretochain", "train", run_config, f"seed={seed}"]
        command += ["--full"] if budget is None else [f"budget_env_steps={budget}"]
        command += ["--run-dir", str(run_dir), "--no-progress", "--overwrite"]
        print("   $ paretochain", " ".join(command[3:]), flush=True)
        started = time.perf_counter()
        environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=environment)
        print(f"     ({time.perf_counter() - started:.0f} s)", flush=True)
    else:
        print(f"   reusing the run in {run_dir}", flush=True)
    return [p for p in (run_dir / "policy.pt", run_dir / "best" / "policy.pt") if p.is_file()]


def validate(
    config: WarehouseConfig,
    files: Sequence[Path],
    grid: np.ndarray,
    base_stock: Any,
    episodes: int,
    device: str,
    batch: int,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, float]]:
    """Every file at every grid preference and base-stock on the validation seeds; the choice by the rule."""
    names = list(config.objectives)
    index = {name: names.index(name) for name in OBJECTIVES}
    seeds = VALIDATION.first(episodes)
    base = returns_of(config, base_stock, seeds, None, device, batch).mean(axis=0)
    base_row = {name: float(base[i]) for name, i in index.items()}
    candidates = []
    for path in files:
        policy = load_policy(path)
        # every preference of the grid on the same seeds, in one batched run (chunked by ``batch``)
        prefs = np.repeat(grid, len(seeds), axis=0)
        returns = returns_of(config, policy, seeds * len(grid), prefs, device, batch)
        for j, w in enumerate(grid):
            mean = returns[j * len(seeds) : (j + 1) * len(seeds)].mean(axis=0)
            row = {name: float(mean[i]) for name, i in index.items()}
            candidates.append({"file": str(path), "preference": w.tolist(), **row})
    return choose_candidate(candidates, base_row["fill_rate"]), candidates, base_row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="network_50sku", help="Warehouse env config (default network_50sku)")
    parser.add_argument("--train", metavar="RUN_CONFIG", help="train this run config first (CLI, --full)")
    parser.add_argument("--budget", type=int, help="with --train: env steps instead of --full (not a claim)")
    parser.add_argument("--seed", type=int, default=0, help="with --train: the run's seed")
    parser.add_argument("--runs-dir", default="bench/results/network_runs", help="with --train: where the run goes")
    parser.add_argument("--policy", action="append", default=[], help="a trained policy file (repeatable)")
    parser.add_argument("--episodes", type=int, default=4096, help="test episodes per policy (default 4096)")
    parser.add_argument("--validation-episodes", type=int, default=256, help="validation episodes per preference")
    parser.add_argument("--divisions", type=int, default=4, help="preference grid step 1/N on the simplex")
    parser.add_argument("--batch", type=int, default=4096, help="episodes per batched rollout")
    parser.add_argument("--device", default="cpu", help="where to simulate and run the policies (cpu, cuda)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads here and in the training run (1: best on shared cores)"
    )
    parser.add_argument("--out", default="bench/results/quality_network.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.episodes < 2 or args.validation_episodes < 2:
        parser.error("--episodes and --validation-episodes must be at least 2")
    if args.batch < 1 or args.divisions < 1:
        parser.error("--batch and --divisions must be at least 1")
    if not args.train and not args.policy:
        parser.error("give --train RUN_CONFIG or --policy PATH: there is no learned policy to compare")
    started = time.perf_counter()
    config = WarehouseConfig.load(args.config)
    names = list(config.objectives)
    missing = [n for n in OBJECTIVES if n not in names]
    if missing:
        parser.error(f"the config's objectives {names} lack {missing}")

    print(f"# {args.config}: base-stock tuned for profit on {len(TUNING_SEEDS)} training seeds", flush=True)
    profit_only = np.asarray([1.0 if n == "profit" else 0.0 for n in names])
    tuned = tune_base_stock(config, seeds=TUNING_SEEDS, covers=COVERS, weights=profit_only, device=args.device)
    print(f"   cover {tuned.best:g} periods of mean demand ({time.perf_counter() - started:.0f} s)", flush=True)

    files: list[Path] = []
    if args.train:
        run_dir = Path(args.runs_dir) / f"{Path(args.train).stem}-{args.config}-s{args.seed}"
        files += train_as_a_user(args.train, run_dir, args.budget, args.seed, args.threads)
    files += [Path(p) for p in args.policy]
    files = distinct_files(files)
    if not files:
        raise SystemExit("no policy file to compare (the run wrote none)")

    grid = preference_grid(len(names), args.divisions)
    t0 = time.perf_counter()
    chosen, candidates, base_validation = validate(
        config, files, grid, tuned.policy, args.validation_episodes, args.device, args.batch
    )
    print(
        f"   chose {chosen['file']} at preference {chosen['preference']} on {args.validation_episodes} validation "
        f"episodes x {len(grid)} preferences ({time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    if not chosen["reaches_base_fill_rate"]:
        print(
            f"   no (file, preference) filled as much as base-stock on validation ({base_validation['fill_rate']:.4f}): "
            "the one with the highest fill rate plays the test episodes",
            flush=True,
        )

    t0 = time.perf_counter()
    test = TEST.first(args.episodes)
    base = returns_of(config, tuned.policy, test, None, args.device, args.batch)
    learned = returns_of(
        config, load_policy(chosen["file"]), test, np.asarray(chosen["preference"]), args.device, args.batch
    )
    columns = [names.index(n) for n in OBJECTIVES]
    table = paired_table(learned[:, columns], base[:, columns], OBJECTIVES)
    test_seconds = time.perf_counter() - t0
    print_table(args.config, args.episodes, tuned.best, chosen, table)
    p, f = table["profit"], table["fill_rate"]
    met = target_met(p["difference"], p["difference_ci95"], f["difference"], f["difference_ci95"])
    verdict = (
        f"{'MET' if met else 'NOT MET'}: learned minus base-stock: profit {p['difference']:+,.0f} ± "
        f"{p['difference_ci95']:,.0f}, fill rate {f['difference']:+.4f} ± {f['difference_ci95']:.4f} "
        "(target: profit CI above 0, fill-rate CI not entirely below 0)"
    )
    print(verdict)
    print(f"test episodes: {test_seconds:.0f} s; total {time.perf_counter() - started:.0f} s")
    if args.train and args.budget is not None:
        print(f"note: trained {args.budget} steps instead of the run config's full budget: not a claim")

    report = {
        "settings": {
            "config": args.config,
            "episodes": args.episodes,
            "validation_episodes": args.validation_episodes,
            "divisions": args.divisions,
            "train": args.train,
            "budget": args.budget or "full",
            "seed": args.seed,
            "device": args.device,
            "test_seed_start": TEST.start,
        },
        "base_stock": {
            "cover": tuned.best,
            "tuning": {f"{c:g}": float(s) for c, s in zip(tuned.candidates, tuned.scores)},
            "validation": base_validation,
        },
        "chosen": chosen,
        "validation": candidates,
        "test": table,
        "target_met": met,
        "verdict": verdict,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"report: {out}")


def print_table(config: str, episodes: int, cover: float, chosen: dict[str, Any], table: dict[str, Any]) -> None:
    """The markdown table: each policy's means with 95% CIs, then the paired differences."""
    pref = ", ".join(f"{w:.2f}" for w in chosen["preference"])
    print(f"\n## {config}: {episodes:,} test episodes, the same seeds for both policies")
    print("| policy | profit | fill rate | holding cost |")
    print("|---|---|---|---|")

    def cells(key: str, sign: str = "") -> str:
        p, f, h = (table[n] for n in OBJECTIVES)
        # holding cost is shown as a cost (the environment's objective is its negation)
        return (
            f"{p[key]:{sign},.0f} ± {p[key + '_ci95']:,.0f} | {f[key]:{sign}.4f} ± {f[key + '_ci95']:.4f} | "
            f"{-h[key]:{sign},.0f} ± {h[key + '_ci95']:,.0f}"
        )

    where = f"{Path(chosen['file']).parent.name}/{Path(chosen['file']).name}"
    print(f"| base-stock (cover {cover:g}, tuned for profit) | {cells('base_stock')} |")
    print(f"| learned ({where}, preference ({pref})) | {cells('learned')} |")
    print(f"| learned - base-stock (paired) | {cells('difference', '+')} |")


if __name__ == "__main__":
    main()
