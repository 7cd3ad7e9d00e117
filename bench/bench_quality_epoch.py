"""Decision quality of epoch dispatch: a learned policy against greedy, lazy, rollout and the hindsight bound.

Every policy plays the same generated dynamic instances (``paretochain/DispatchEpoch-v0``,
paired by test seed: common random numbers) through the batched view. The table gives, per
policy, the total distance, the on-time share and the unserved orders with 95% CIs; then the
learned policy's paired distance difference to greedy and lazy (with whether every order was
served on time) and its gaps to the rollout policy and the hindsight plan. The hindsight plan
is a time-limited PyVRP search with every order known: an upper bound on the anticipative
optimum's distance, not the best-known cost.

A learned policy (``--policy runs/<run>/policy.pt``) runs only on the instance size it was
trained for (its observation has one slot per order); without one, the baselines alone are
measured.

The slow baselines (rollout: about 50 s per 100-customer episode) can run in a separate
invocation, on fewer episodes, at the same time: ``--save FILE`` writes every policy's
per-episode figures, and ``--compare FILE ...`` pairs the learned policy with the policies of
such files on the test episodes both played (the same seeds, from the first; the instance
config must be the same).

    python bench/bench_quality_epoch.py --customers 100 --episodes 64
    python bench/bench_quality_epoch.py --customers 20 --config default --policy runs/RUN/policy.pt --episodes 64
    python bench/bench_quality_epoch.py --customers 100 --episodes 16 --baselines rollout hindsight --save slow.json
    python bench/bench_quality_epoch.py --customers 100 --episodes 64 --policy runs/RUN/policy.pt \\
        --baselines greedy lazy --compare slow.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from paretochain.agents.export import load_policy
from paretochain.envs import make_vec
from paretochain.evaluate.baselines import family_baselines
from paretochain.evaluate.rollout import RolloutResult, rollout
from paretochain.evaluate.stats import mean_ci, paired_difference
from paretochain.seeds import TEST, VALIDATION

ENV_ID = "paretochain/DispatchEpoch-v0"


def generated(customers: int) -> dict[str, Any]:
    """A generated shift of ``customers`` orders: the 100-customer benchmark instance, its fleet scaled with the orders."""
    return {
        "generator": {"num_customers": customers, "area_km": 30.0, "placement": "mixed"},
        "num_vehicles": max(2, customers // 10),
        "capacity_units": 100,
        "shift_length_min": 600,
        "speed_km_per_min": 0.6,
    }


def row(name: str, result: RolloutResult, seconds: float) -> str:
    km, km_ci = mean_ci(result.kpis["travel_distance"].reshape(-1, 1))
    served = result.kpis["orders_served"]
    on_time, on_time_ci = mean_ci(
        (result.kpis["orders_on_time"] / (served + result.kpis["orders_unserved"])).reshape(-1, 1)
    )
    lost, lost_ci = mean_ci(result.kpis["orders_unserved"].reshape(-1, 1))
    return (
        f"| {name} | {km[0]:.1f} ± {km_ci[0]:.1f} | {on_time[0]:.3f} ± {on_time_ci[0]:.3f} "
        f"| {lost[0]:.2f} ± {lost_ci[0]:.2f} | {seconds:.0f} |"
    )


def save_results(path: str, config: dict[str, Any], results: dict[str, RolloutResult]) -> None:
    """Write every policy's per-episode KPIs, with the seeds and the instance config, as JSON."""
    payload = {
        "config": config,
        "seeds": next(iter(results.values())).seeds if results else [],
        "policies": {name: {k: v.tolist() for k, v in r.kpis.items()} for name, r in results.items()},
    }
    Path(path).write_text(json.dumps(payload) + "\n")


def load_results(path: str, config: dict[str, Any]) -> tuple[list[int], dict[str, dict[str, np.ndarray]]]:
    """The seeds and per-episode KPIs of a ``--save`` file made on the same instance config.

    Raises:
        SystemExit: the file is not such a file, or its instance config differs.
    """
    try:
        payload = json.loads(Path(path).read_text())
        seeds = [int(s) for s in payload["seeds"]]
        policies = {
            name: {k: np.asarray(v, dtype=np.float64) for k, v in kpis.items()}
            for name, kpis in payload["policies"].items()
        }
        saved_config = payload["config"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SystemExit(f"--compare {path}: not a results file of this script ({type(exc).__name__}: {exc})") from None
    if saved_config != config:
        raise SystemExit(f"--compare {path}: made on another instance config or routing budget")
    if any(len(kpis["travel_distance"]) != len(seeds) for kpis in policies.values()):
        raise SystemExit(f"--compare {path}: a policy's episodes do not match its seeds")
    for name, kpis in policies.items():
        for kpi, values in kpis.items():
            if not np.isfinite(values).all():
                raise SystemExit(f"--compare {path}: policy {name!r} has a value that is not finite in {kpi!r}")
    return seeds, policies


def choose_policy(paths: list[str], config: Any, overrides: dict[str, Any], episodes: int) -> Any:
    """The loaded policy of ``paths`` with the highest mean return at its own preference on validation seeds."""
    candidates = [load_policy(path) for path in paths]
    if len(candidates) == 1:
        return candidates[0]
    seeds = VALIDATION.first(episodes)
    env = make_vec(ENV_ID, len(seeds), config=config, tensors=True, check_actions=False, **overrides)
    scores = []
    for path, policy in zip(paths, candidates, strict=True):
        preference = policy.default_preference.numpy()
        result = rollout(env, policy, seeds, preference=preference)
        scores.append(float((result.returns * preference).sum(axis=1).mean()))
        print(f"validation ({len(seeds)} episodes): {path}: mean return at its preference {scores[-1]:.2f}")
    env.core.close()  # type: ignore[attr-defined]
    best = int(np.argmax(scores))
    print(f"tested: {paths[best]}")
    return candidates[best]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100, help="orders per generated instance")
    parser.add_argument("--config", default=None, help="a packaged Dispatch config instead of the generated instance")
    parser.add_argument("--episodes", type=int, default=64, help="paired test episodes per policy")
    parser.add_argument(
        "--policy",
        nargs="+",
        default=None,
        help="a learned DispatchEpoch-v0 policy.pt; with several (a run's policy.pt and best/policy.pt), the one "
        "with the highest return at its own preference on --validation-episodes validation seeds is tested",
    )
    parser.add_argument(
        "--validation-episodes", type=int, default=16, help="episodes to choose among several --policy files"
    )
    parser.add_argument(
        "--baselines",
        nargs="*",
        default=["greedy", "lazy", "rollout", "hindsight"],
        help="baselines to run; the option with no name runs none (the learned policy alone)",
    )
    parser.add_argument("--routing-iterations", type=int, default=500, help="PyVRP iterations per epoch routing")
    parser.add_argument("--routing-time-limit", type=float, default=2.0, help="PyVRP seconds per epoch routing (cap)")
    parser.add_argument("--workers", type=int, default=0, help="routing worker processes of the batched view")
    parser.add_argument("--save", default=None, help="write every policy's per-episode figures to this JSON file")
    parser.add_argument(
        "--compare", nargs="*", default=[], help="--save files whose policies the learned policy is paired with"
    )
    args = parser.parse_args()

    epoch = {
        "routing_iterations": args.routing_iterations,
        "routing_time_limit_s": args.routing_time_limit,
        "routing_workers": args.workers,
    }
    config: Any = args.config if args.config else generated(args.customers)
    overrides = {"epoch": epoch}
    seeds = TEST.first(args.episodes)
    env = make_vec(ENV_ID, len(seeds), config=config, tensors=True, check_actions=False, **overrides)
    cfg = env.config  # type: ignore[attr-defined]
    print(
        f"{cfg.generator.num_customers if cfg.instance_source == 'generated' else 'file'} customers, "
        f"{env.core.num_envs} paired episodes (test seeds), {cfg.num_vehicles} vehicles, "
        f"{args.routing_iterations} PyVRP iterations per routing, {args.workers} routing workers"
    )
    results: dict[str, RolloutResult] = {}
    print("| policy | km per episode | on-time share | unserved orders | seconds |")
    print("|---|---|---|---|---|")
    policies: dict[str, Any] = {}
    if args.policy:
        loaded = choose_policy(args.policy, config, overrides, args.validation_episodes)
        policies["learned"] = lambda e: loaded
    if args.baselines:  # none named (``--baselines`` alone): the learned policy only, paired via --compare
        policies.update(family_baselines(ENV_ID, cfg, names=args.baselines))
    for name, factory in policies.items():
        start = time.perf_counter()
        kwargs = {"preference": loaded.default_preference.numpy()} if name == "learned" else {}
        results[name] = rollout(env, factory(env), seeds, **kwargs)
        print(row(name, results[name], time.perf_counter() - start), flush=True)
    env.core.close()  # type: ignore[attr-defined]
    # the instance and routing budget, without the pool size (which does not change the episodes)
    identity = cfg.model_dump(mode="json")
    identity["epoch"].pop("routing_workers", None)
    if args.save:
        save_results(args.save, identity, results)

    if "learned" not in results:
        return
    learned = results["learned"]
    all_on_time = bool(
        (learned.kpis["orders_unserved"] == 0).all()
        and (learned.kpis["orders_on_time"] == learned.kpis["orders_served"]).all()
    )
    print(f"\nlearned: every order served on time in every episode: {all_on_time}")
    others = {name: (len(seeds), r.kpis) for name, r in results.items() if name != "learned"}
    for path in args.compare:
        saved_seeds, saved = load_results(path, identity)
        shared = 0
        while shared < min(len(saved_seeds), len(seeds)) and saved_seeds[shared] == int(seeds[shared]):
            shared += 1
        if shared == 0:
            raise SystemExit(f"--compare {path}: no test episode in common with this run")
        others.update({name: (shared, kpis) for name, kpis in saved.items() if name != "learned"})
    print("| against | paired episodes | learned km - its km (paired, 95% CI) | gap (% of its km) |")
    print("|---|---|---|---|")
    for name, (n, kpis) in others.items():
        theirs = kpis["travel_distance"][:n]
        diff, half = paired_difference(learned.kpis["travel_distance"][:n].reshape(-1, 1), theirs.reshape(-1, 1))
        gap = 100 * diff[0] / np.mean(theirs)
        print(f"| {name} | {n} | {diff[0]:+.1f} ± {half[0]:.1f} | {gap:+.1f}% |")


if __name__ == "__main__":
    main()
