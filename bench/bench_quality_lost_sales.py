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
  With ``--fixed-preference`` the same run config is also trained once per compared
  preference with ``preference=[...]`` (run directory ``...-pref1-0-s0``), the
  fixed-preference agent the preference-conditioned one is measured against;
- every policy, the selected trained policy and any policy file given with ``--policy``
  play the same test episodes (seeds 1,000,000 onwards, the same for every policy), and
  their cost and fill rate per period are averaged over a window after a warm-up, so the
  arbitrary starting stock does not count.

The compared preferences (``--preferences``, weights on ``total_cost, fill_rate``) default to
the cost-only corner ``1,0``; learned policies play at the compared preference, and a run's
policy is chosen on validation seeds at it. At the cost-only preference the table gives each
policy's long-run cost as a ratio to ``g``, and the paired difference to the simulated optimal
policy with its 95% confidence interval; the "best baseline" is the cheapest heuristic on the
test episodes. At any other preference a policy's score per period is ``w . (-cost, fill rate)``
(at the fill-rate corner: its fill rate), the heuristics are those tuned on cost, and
``order_max`` (the largest order every period: the most stock, hence the highest fill rate any
policy reaches) is added; the reference of the paired differences is the best baseline at that
preference. With a conditioned and a fixed-preference run, a verdict line gives the conditioned
policy's loss against the fixed one (target: below 1%). A JSON report is written to
``bench/results/quality_lost_sales.json``.

Usage::

    python bench/bench_quality_lost_sales.py                       # all 16 instances, 4,096 test episodes each
    python bench/bench_quality_lost_sales.py --instances 2,9 --episodes 8192
    python bench/bench_quality_lost_sales.py --instances 2,9 --policy 2,9=runs/my-run/policy.pt
    python bench/bench_quality_lost_sales.py --train lost_sales_mo_ppo          # trains 16 runs at --full first
    python bench/bench_quality_lost_sales.py --train configs/runs/lost_sales_dcl.yaml  # DCL (rollout policy iteration)
    python bench/bench_quality_lost_sales.py --instances 2,9 --train lost_sales_mo_ppo --fixed-preference --preferences 1,0 0,1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import paretochain  # noqa: F401  (registers the environments)
from paretochain.agents.baselines.lost_sales import (
    SELECTION_SEEDS,
    WARMUP_PERIODS,
    WINDOW_PERIODS,
    ConstantOrderPolicy,
    LostSalesModel,
    OptimalPolicy,
    long_run_objectives,
    tune_lost_sales,
)
from paretochain.agents.baselines.lost_sales_dp import solve_lost_sales
from paretochain.agents.export import load_policy
from paretochain.envs.warehouse import WarehouseConfig
from paretochain.evaluate.stats import paired_difference
from paretochain.seeds import TEST, TUNING_SEEDS, VALIDATION

LEAD_TIMES = (1, 2, 3, 4)
PENALTIES = (4.0, 9.0, 19.0, 39.0)
#: The objectives of the packaged ``lost_sales`` config, in the order ``--preferences`` weighs them.
OBJECTIVES = ("total_cost", "fill_rate")
COST_ONLY = (1.0, 0.0)
#: Largest loss of the preference-conditioned policy against the fixed-preference one.
CONDITIONED_TARGET = 0.01


def instance(lead_time: int, penalty: float) -> WarehouseConfig:
    """The packaged lost_sales config at one lead time and penalty."""
    return WarehouseConfig.load(
        "lost_sales", supplier_lead_time={"periods": lead_time}, shortage_penalty=float(penalty)
    )


class AtPreference:
    """A loaded policy file played at one fixed preference, given as weights on :data:`OBJECTIVES`."""

    def __init__(self, path: str, weights: Sequence[float] = COST_ONLY) -> None:
        self.policy = load_policy(path)
        names = list(self.policy.metadata["objective_names"])
        self.preference = torch.zeros(len(names))
        for name, weight in zip(OBJECTIVES, weights):
            self.preference[names.index(name)] = float(weight)

    def __call__(self, env: object) -> AtPreference:
        return self

    def act(self, obs: torch.Tensor, preference=None, action_mask=None) -> torch.Tensor:  # type: ignore[no-untyped-def]
        return self.policy.act(obs, self.preference.expand(obs.shape[0], -1), action_mask)


def score(objectives: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """The per-period score ``w . (-cost, fill rate)`` of each episode (higher is better)."""
    return -objectives[:, 0] * weights[0] + objectives[:, 1] * weights[1]


def is_cost_only(weights: Sequence[float]) -> bool:
    """Whether ``weights`` puts all the weight on total cost."""
    return weights[1] == 0


def train_as_a_user(
    run_config: str,
    lead_time: int,
    penalty: float,
    run_dir: Path,
    budget: int | None,
    seed: int,
    preference: Sequence[float] | None = None,
) -> list[Path]:
    """Train ``run_config`` on one instance through the command line; the run's candidate policy files.

    With ``preference`` (weights on :data:`OBJECTIVES`) the run trains at that fixed preference.
    """
    if not (run_dir / "policy.pt").is_file():
        command = [sys.executable, "-m", "paretochain", "train", run_config]
        command += [
            f"env.overrides.supplier_lead_time.periods={lead_time}",
            f"env.overrides.shortage_penalty={penalty:g}",
            f"seed={seed}",
        ]
        if preference is not None:
            command.append("preference=[" + ",".join(f"{w:g}" for w in preference) + "]")
        command += ["--full"] if budget is None else [f"budget_env_steps={budget}"]
        command += ["--run-dir", str(run_dir), "--no-progress", "--overwrite"]
        print("   $ paretochain", " ".join(command[3:]), flush=True)
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        print(f"     ({time.perf_counter() - started:.0f} s)", flush=True)
    return [p for p in (run_dir / "policy.pt", run_dir / "best" / "policy.pt") if p.is_file()]


def select_on_validation(
    cfg: WarehouseConfig,
    candidates: list[Path],
    episodes: int,
    warmup: int,
    window: int,
    device: str,
    weights: Sequence[float] = COST_ONLY,
) -> tuple[Path, dict[str, float]]:
    """The candidate with the best long-run score at ``weights`` on the validation seeds, and every candidate's.

    At the cost-only preference the score is the cost per period (the lowest wins), else ``w . (-cost, fill rate)``.
    """
    seeds = VALIDATION.first(episodes)
    scores = {}
    for p in candidates:
        objectives = long_run_objectives(cfg, AtPreference(str(p), weights), seeds, warmup, window, device)
        scores[str(p)] = float(objectives[:, 0].mean() if is_cost_only(weights) else score(objectives, weights).mean())
    if is_cost_only(weights):
        return min(candidates, key=lambda p: scores[str(p)]), scores
    return max(candidates, key=lambda p: scores[str(p)]), scores


def conditioned_loss(conditioned: float, fixed: float, cost_only: bool) -> float:
    """The conditioned policy's shortfall relative to the fixed-preference one (negative: it does better).

    ``conditioned`` and ``fixed`` are costs per period at the cost-only preference, else scores.
    """
    if cost_only:
        return (conditioned - fixed) / abs(fixed)
    return (fixed - conditioned) / abs(fixed) if fixed != 0 else (0.0 if conditioned >= fixed else float("inf"))


def parse_preference(text: str) -> tuple[float, float]:
    """``"1,0"`` -> ``(1.0, 0.0)``, normalised to sum 1; weights on :data:`OBJECTIVES`, finite and not negative."""
    parts = text.split(",")
    if len(parts) != len(OBJECTIVES):
        raise argparse.ArgumentTypeError(
            f"a preference has {len(OBJECTIVES)} weights ({', '.join(OBJECTIVES)}): {text!r}"
        )
    try:
        weights = np.asarray([float(x) for x in parts])
    except ValueError:
        raise argparse.ArgumentTypeError(f"a preference's weights are numbers: {text!r}") from None
    if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise argparse.ArgumentTypeError(f"a preference's weights are finite, >= 0 and not all 0: {text!r}")
    weights = weights / weights.sum()
    return float(weights[0]), float(weights[1])


def preference_label(weights: Sequence[float]) -> str:
    """``cost only`` and ``fill rate only`` at the corners, else the weights."""
    if weights[1] == 0:
        return "cost only"
    if weights[0] == 0:
        return "fill rate only"
    return f"({weights[0]:.2f}, {weights[1]:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", nargs="*", help="L,p pairs (default: all 16)")
    parser.add_argument(
        "--preferences",
        nargs="*",
        type=parse_preference,
        default=[COST_ONLY],
        help="compared preferences, weights on total_cost,fill_rate (default: 1,0, cost only)",
    )
    parser.add_argument("--episodes", type=int, default=4096, help="test episodes per policy (default 4096)")
    parser.add_argument("--warmup", type=int, default=WARMUP_PERIODS, help="periods before costs count")
    parser.add_argument("--window", type=int, default=WINDOW_PERIODS, help="periods counted after the warm-up")
    parser.add_argument(
        "--policy", action="append", default=[], help="L,p=PATH: a trained policy file for one instance"
    )
    parser.add_argument("--train", metavar="RUN_CONFIG", help="train this run config on each instance (CLI, --full)")
    parser.add_argument(
        "--fixed-preference", action="store_true", help="with --train: also train one run per compared preference"
    )
    parser.add_argument("--budget", type=int, help="with --train: env steps instead of --full (not a claim)")
    parser.add_argument("--seed", type=int, default=0, help="with --train: the runs' seed")
    parser.add_argument("--runs-dir", default="bench/results/lost_sales_runs", help="with --train: where runs go")
    parser.add_argument("--validation-episodes", type=int, default=512, help="episodes to choose a run's policy")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="bench/results/quality_lost_sales.json")
    args = parser.parse_args()
    if args.episodes < 2:
        parser.error("--episodes must be at least 2")
    if not args.preferences:
        parser.error("--preferences needs at least one preference")
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
    print(
        f"lost sales, Poisson(5), h = 1: {args.episodes} test episodes per policy, "
        f"cost per period over periods {args.warmup}..{args.warmup + args.window}"
    )
    report = [
        bench_instance(lead_time, penalty, args, trained.get((lead_time, penalty))) for lead_time, penalty in pairs
    ]
    print("* best baseline on the test episodes")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.train and args.budget is not None:
        print(f"note: trained {args.budget} steps instead of the run config's full budget: not a claim")
    settings = {
        "episodes": args.episodes,
        "train": args.train,
        "fixed_preference": args.fixed_preference,
        "preferences": [list(w) for w in args.preferences],
        "budget": args.budget or "full",
        "seed": args.seed,
        "warmup": args.warmup,
        "window": args.window,
        "test_seed_start": TEST.start,
    }
    out.write_text(json.dumps({"settings": settings, "instances": report}, indent=2))
    print(f"report: {out}")


def bench_instance(lead_time: int, penalty: float, args: argparse.Namespace, policy_file: str | None) -> dict[str, Any]:
    """Tune, train (with ``--train``), and compare every policy at each compared preference on one instance."""
    started = time.perf_counter()
    test = TEST.first(args.episodes)
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
    conditioned: list[Path] = []
    fixed_runs: dict[int, list[Path]] = {}
    if args.train:
        stem = Path(args.train).stem
        run_dir = Path(args.runs_dir) / f"{stem}-L{lead_time}-p{penalty:g}-s{args.seed}"
        conditioned = train_as_a_user(args.train, lead_time, penalty, run_dir, args.budget, args.seed)
        if args.fixed_preference:
            for i, w in enumerate(args.preferences):
                tag = "-".join(f"{x:g}" for x in w)
                fixed_dir = Path(args.runs_dir) / f"{stem}-L{lead_time}-p{penalty:g}-pref{tag}-s{args.seed}"
                fixed_runs[i] = train_as_a_user(args.train, lead_time, penalty, fixed_dir, args.budget, args.seed, w)

    def run(make: Callable[[object], object]) -> np.ndarray:
        return long_run_objectives(cfg, make, test, args.warmup, args.window, args.device)

    common = {"optimal_policy": run(OptimalPolicy)}
    common.update({name: run(t.policy) for name, t in tuned.items()})
    max_order = float(model.max_order)
    entry: dict[str, Any] = {
        "lead_time": lead_time,
        "penalty": penalty,
        "optimum": optimum.average_cost,
        "preferences": [],
    }
    for i, w in enumerate(args.preferences):
        rows = dict(common)
        if not is_cost_only(w):
            rows["order_max"] = run(lambda env: ConstantOrderPolicy(env, max_order))
        learned: dict[str, Any] = {}
        choices = [("learned (conditioned)", conditioned), ("learned (fixed preference)", fixed_runs.get(i, []))]
        if args.train and not args.fixed_preference:
            choices = [(Path(args.train).stem, conditioned)]
        for name, candidates in choices:
            if candidates:
                chosen, validation = select_on_validation(
                    cfg, candidates, args.validation_episodes, args.warmup, args.window, args.device, w
                )
                rows[name] = run(AtPreference(str(chosen), w))
                learned[name] = {"run_config": args.train, "budget": args.budget or "full", "chosen": str(chosen)}
                learned[name]["validation"] = validation
        if policy_file is not None:
            rows["trained"] = run(AtPreference(policy_file, w))
        entry["preferences"].append(compare(lead_time, penalty, optimum.average_cost, w, rows, tuned, learned))
    print(f"   ({time.perf_counter() - started:.0f} s)")
    return entry


def compare(
    lead_time: int,
    penalty: float,
    optimum: float,
    w: Sequence[float],
    rows: dict[str, np.ndarray],
    tuned: dict[str, Any],
    learned: dict[str, Any],
) -> dict[str, Any]:
    """Print one instance's table at preference ``w`` (and the conditioned-vs-fixed verdict); its JSON entry."""
    cost_only = is_cost_only(w)
    baselines = [n for n in rows if n in tuned or n == "order_max"]
    heuristics = list(tuned)
    if cost_only:
        best = min(heuristics, key=lambda n: rows[n][:, 0].mean())
        reference_name = "optimal_policy"
        reference = rows[reference_name][:, 0]
    else:
        best = max(baselines, key=lambda n: score(rows[n], w).mean())
        reference_name = best
        reference = score(rows[reference_name], w)
    print(f"\n## L = {lead_time}, p = {penalty:g}, preference {preference_label(w)} (reference: {reference_name})")
    header = (
        f"{'L':>2} {'p':>4} {'optimum':>8}  {'policy':<28} {'cost':>8} {'x opt':>7} {'fill rate':>9} "
        f"{'score':>8} {'- ' + reference_name + ' (95% CI)':>26}"
    )
    print(header)
    print("-" * len(header))
    policies: dict[str, Any] = {}
    for name, objectives in rows.items():
        value = objectives[:, 0] if cost_only else score(objectives, w)
        diff, half = paired_difference(value[:, None], reference[:, None])
        cost, fill = float(objectives[:, 0].mean()), float(objectives[:, 1].mean())
        policies[name] = {
            "cost": cost,
            "ratio_to_optimum": cost / optimum,
            "fill_rate": fill,
            "score": float(score(objectives, w).mean()),
            f"minus_{reference_name}": float(diff[0]),
            "ci95": float(half[0]),
            "parameters": tuned[name].parameters if name in tuned else {},
            **learned.get(name, {}),
        }
        label = name + (" *" if name == best else "")
        print(
            f"{lead_time:>2} {penalty:>4g} {optimum:>8.3f}  {label:<28} {cost:>8.3f} {cost / optimum:>7.4f} "
            f"{fill:>9.4f} {policies[name]['score']:>8.4f} {diff[0]:>+13.4f} +- {half[0]:.4f}"
        )
    verdicts = []
    if "learned (conditioned)" in policies and "learned (fixed preference)" in policies:
        key = "cost" if cost_only else "score"
        c, f = policies["learned (conditioned)"][key], policies["learned (fixed preference)"][key]
        loss = conditioned_loss(c, f, cost_only)
        diff, half = paired_difference(
            (rows["learned (conditioned)"][:, 0] if cost_only else score(rows["learned (conditioned)"], w))[:, None],
            (rows["learned (fixed preference)"][:, 0] if cost_only else score(rows["learned (fixed preference)"], w))[
                :, None
            ],
        )
        what = "costs" if cost_only else "scores"
        verdicts.append(
            f"{'MET' if loss < CONDITIONED_TARGET else 'NOT MET'}: the conditioned policy {what} {c:.4f} against the "
            f"fixed-preference one's {f:.4f} (paired difference {diff[0]:+.4f} +- {half[0]:.4f}): a loss of "
            f"{100 * loss:.2f}% (target below {100 * CONDITIONED_TARGET:.0f}%)"
        )
    for line in verdicts:
        print(line)
    return {
        "preference": list(w),
        "reference": reference_name,
        "best_baseline": best,
        "policies": policies,
        "verdicts": verdicts,
    }


if __name__ == "__main__":
    main()
