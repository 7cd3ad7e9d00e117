"""Decision quality on the 16 classic lost-sales instances: every heuristic against the exact optimum.

The instances are those of Zipkin (2008): Poisson demand with mean 5, holding cost 1,
lead time L in 1..4 and lost-sales penalty p in {4, 9, 19, 39}, each the packaged
``lost_sales`` config with ``supplier_lead_time.periods`` and ``shortage_penalty``
overridden. For each instance:

- every heuristic of :mod:`paretochain.agents.baselines.lost_sales` is tuned on the
  training seeds (0..63), its best candidates scored again on 4,096 more training seeds
  (``SELECTION_SEEDS``, as ``best_lost_sales_heuristic`` chooses a run's teacher);
- the exact optimum ``g`` comes from :func:`~paretochain.agents.baselines.lost_sales_dp.solve_lost_sales`,
  and the optimal policy is simulated too;
- with ``--train RUN_CONFIG``, the packaged run config is trained as a user would: the
  command line, ``paretochain train RUN_CONFIG env.overrides... --full --run-dir DIR``
  (``--budget N`` trains N steps instead, for a quick look that is not a claim). Of the
  run's final policy and its best evaluation's (``best/``), the one with the lower
  long-run cost on validation seeds (500,000 onwards) is kept. A run directory that
  already holds a policy is reused;
- every policy, the selected trained policy and any policy file given with ``--policy``
  (learned ones play at the cost-only preference) play the same test episodes (seeds
  1,000,000 onwards, the same for every policy), and their cost per period is averaged
  over a window after a warm-up, so the arbitrary starting stock does not count.

The table gives each policy's long-run cost as a ratio to ``g``, and the paired
difference to the simulated optimal policy with its 95% confidence interval. The
"best baseline" is the cheapest heuristic on the test episodes. A JSON report is
written to ``bench/results/quality_lost_sales.json``.

Usage::

    python bench/bench_quality_lost_sales.py                       # all 16 instances, 4,096 test episodes each
    python bench/bench_quality_lost_sales.py --instances 2,9 --episodes 8192
    python bench/bench_quality_lost_sales.py --instances 2,9 --policy 2,9=runs/my-run/policy.pt
    python bench/bench_quality_lost_sales.py --train lost_sales_mo_ppo          # trains 16 runs at --full first
    python bench/bench_quality_lost_sales.py --train configs/runs/lost_sales_dcl.yaml  # DCL (rollout policy iteration)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

import paretochain  # noqa: F401  (registers the environments)
from paretochain.agents.baselines.lost_sales import (
    SELECTION_SEEDS,
    WARMUP_PERIODS,
    WINDOW_PERIODS,
    LostSalesModel,
    OptimalPolicy,
    long_run_cost,
    tune_lost_sales,
)
from paretochain.agents.baselines.lost_sales_dp import solve_lost_sales
from paretochain.agents.export import load_policy
from paretochain.envs.warehouse import WarehouseConfig
from paretochain.evaluate.stats import paired_difference
from paretochain.seeds import TEST, TUNING_SEEDS, VALIDATION

LEAD_TIMES = (1, 2, 3, 4)
PENALTIES = (4.0, 9.0, 19.0, 39.0)


def instance(lead_time: int, penalty: float) -> WarehouseConfig:
    """The packaged lost_sales config at one lead time and penalty."""
    return WarehouseConfig.load(
        "lost_sales", supplier_lead_time={"periods": lead_time}, shortage_penalty=float(penalty)
    )


class _CostOnly:
    """A loaded policy file played at the cost-only preference (weight 1 on total_cost)."""

    def __init__(self, path: str) -> None:
        self.policy = load_policy(path)
        names = list(self.policy.metadata["objective_names"])
        self.preference = torch.zeros(len(names))
        self.preference[names.index("total_cost")] = 1.0

    def __call__(self, env: object) -> object:
        return self

    def act(self, obs: torch.Tensor, preference=None, action_mask=None) -> torch.Tensor:  # type: ignore[no-untyped-def]
        return self.policy.act(obs, self.preference.expand(obs.shape[0], -1), action_mask)


def train_as_a_user(
    run_config: str, lead_time: int, penalty: float, run_dir: Path, budget: int | None, seed: int
) -> list[Path]:
    """Train ``run_config`` on one instance through the command line; the run's candidate policy files."""
    if not (run_dir / "policy.pt").is_file():
        command = [sys.executable, "-m", "paretochain", "train", run_config]
        command += [
            f"env.overrides.supplier_lead_time.periods={lead_time}",
            f"env.overrides.shortage_penalty={penalty:g}",
            f"seed={seed}",
        ]
        command += ["--full"] if budget is None else [f"budget_env_steps={budget}"]
        command += ["--run-dir", str(run_dir), "--no-progress", "--overwrite"]
        print("   $ paretochain", " ".join(command[3:]), flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return [p for p in (run_dir / "policy.pt", run_dir / "best" / "policy.pt") if p.is_file()]


def select_on_validation(
    cfg: WarehouseConfig, candidates: list[Path], episodes: int, warmup: int, window: int, device: str
) -> tuple[Path, dict[str, float]]:
    """The candidate with the lowest long-run cost on the validation seeds, and every candidate's cost."""
    seeds = VALIDATION.first(episodes)
    costs = {
        str(p): float(long_run_cost(cfg, _CostOnly(str(p)), seeds, warmup, window, device).mean()) for p in candidates
    }
    return min(candidates, key=lambda p: costs[str(p)]), costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", nargs="*", help="L,p pairs (default: all 16)")
    parser.add_argument("--episodes", type=int, default=4096, help="test episodes per policy (default 4096)")
    parser.add_argument("--warmup", type=int, default=WARMUP_PERIODS, help="periods before costs count")
    parser.add_argument("--window", type=int, default=WINDOW_PERIODS, help="periods counted after the warm-up")
    parser.add_argument(
        "--policy", action="append", default=[], help="L,p=PATH: a trained policy file for one instance"
    )
    parser.add_argument("--train", metavar="RUN_CONFIG", help="train this run config on each instance (CLI, --full)")
    parser.add_argument("--budget", type=int, help="with --train: env steps instead of --full (not a claim)")
    parser.add_argument("--seed", type=int, default=0, help="with --train: the runs' seed")
    parser.add_argument("--runs-dir", default="bench/results/lost_sales_runs", help="with --train: where runs go")
    parser.add_argument("--validation-episodes", type=int, default=512, help="episodes to choose a run's policy")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="bench/results/quality_lost_sales.json")
    args = parser.parse_args()
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    pairs = (
        [(int(a), float(b)) for a, b in (s.split(",") for s in args.instances)]
        if args.instances
        else [(lt, p) for lt in LEAD_TIMES for p in PENALTIES]
    )
    trained: dict[tuple[int, float], str] = {}
    for spec in args.policy:
        key, _, path = spec.partition("=")
        a, b = key.split(",")
        trained[(int(a), float(b))] = path
    test = TEST.first(args.episodes)
    print(
        f"lost sales, Poisson(5), h = 1: {args.episodes} test episodes per policy, "
        f"cost per period over periods {args.warmup}..{args.warmup + args.window}"
    )
    header = (
        f"{'L':>2} {'p':>4} {'optimum':>8}  {'policy':<28} {'cost':>8} {'x opt':>7} {'- optimal policy (95% CI)':>26}"
    )
    print(header)
    print("-" * len(header))
    report = []
    for lead_time, penalty in pairs:
        started = time.perf_counter()
        cfg = instance(lead_time, penalty)
        model = LostSalesModel.of(cfg)
        optimum = solve_lost_sales(model.mean, lead_time, model.holding_cost, penalty, max_order=model.max_order)
        tuned = tune_lost_sales(
            cfg,
            seeds=TUNING_SEEDS,
            warmup=args.warmup,
            window=args.window,
            device=args.device,
            selection_seeds=SELECTION_SEEDS,
        )
        factories = {name: t.policy for name, t in tuned.items()}
        selection: dict[str, object] = {}
        if args.train:
            run_dir = Path(args.runs_dir) / f"{Path(args.train).stem}-L{lead_time}-p{penalty:g}-s{args.seed}"
            candidates = train_as_a_user(args.train, lead_time, penalty, run_dir, args.budget, args.seed)
            chosen, validation = select_on_validation(
                cfg, candidates, args.validation_episodes, args.warmup, args.window, args.device
            )
            factories[Path(args.train).stem] = _CostOnly(str(chosen))
            selection = {"run_config": args.train, "budget": args.budget or "full", "chosen": str(chosen)}
            selection["validation_cost"] = validation
        if (lead_time, penalty) in trained:
            factories["trained"] = _CostOnly(trained[(lead_time, penalty)])
        reference = long_run_cost(cfg, OptimalPolicy, test, args.warmup, args.window, args.device)
        rows = {"optimal_policy": reference}
        rows.update(
            {
                name: long_run_cost(cfg, make, test, args.warmup, args.window, args.device)
                for name, make in factories.items()
            }
        )
        heuristics = [n for n in tuned]
        best = min(heuristics, key=lambda n: rows[n].mean())
        entry = {
            "lead_time": lead_time,
            "penalty": penalty,
            "optimum": optimum.average_cost,
            "best_baseline": best,
            "trained": selection,
            "policies": {},
        }
        for name, costs in rows.items():
            diff, half = paired_difference(costs[:, None], reference[:, None])
            mean = float(costs.mean())
            entry["policies"][name] = {
                "cost": mean,
                "ratio_to_optimum": mean / optimum.average_cost,
                "minus_optimal_policy": float(diff[0]),
                "ci95": float(half[0]),
                "parameters": tuned[name].parameters if name in tuned else {},
            }
            label = name + (" *" if name == best else "")
            print(
                f"{lead_time:>2} {penalty:>4g} {optimum.average_cost:>8.3f}  {label:<28} {mean:>8.3f} "
                f"{mean / optimum.average_cost:>7.4f} {diff[0]:>+13.4f} +- {half[0]:.4f}"
            )
        report.append(entry)
        print(f"   ({time.perf_counter() - started:.0f} s)")
    print("* best baseline on the test episodes")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.train and args.budget is not None:
        print(f"note: trained {args.budget} steps instead of the run config's full budget: not a claim")
    settings = {
        "episodes": args.episodes,
        "train": args.train,
        "budget": args.budget or "full",
        "warmup": args.warmup,
        "window": args.window,
        "test_seed_start": TEST.start,
    }
    out.write_text(json.dumps({"settings": settings, "instances": report}, indent=2))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
