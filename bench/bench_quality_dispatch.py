"""Decision quality on Dispatch: MO-PPO against nearest-neighbour and the PyVRP hindsight plan.

MO-PPO (attention encoder over order slots, preferences drawn per episode) trains on the
50-customer generated config; it is then evaluated over the preference lattice on held-out
seeds. The report says whether some preference beats nearest-neighbour on travel distance
at equal or better on-time rate (paired by seed), and gives that point's gap to the PyVRP
hindsight plan (every order known in advance: a yardstick, see PyVRPHindsightPolicy).

With ``--imitate STEPS`` MO-PPO first fits nearest-neighbour's decisions
(:meth:`~paretochain.agents.mo_ppo.MOPPO.imitate`) and then trains from there.

Usage: ``python bench/bench_quality_dispatch.py [--steps 5000000] [--device cuda]``. The
measured run in bench/README.md (2 CPU cores, about 20 minutes)::

    python bench/bench_quality_dispatch.py --imitate 300000 --steps 1000000 --num-envs 256 \
        --episodes 64 --preference 0.4 0.4 0.2 0 --embed-dim 32 --num-heads 1 --num-layers 1 --threads 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from paretochain.agents.baselines.dispatch import NearestNeighbourPolicy, PyVRPHindsightPolicy
from paretochain.agents.mo_ppo import MOPPO
from paretochain.envs import make_vec
from paretochain.evaluate.pareto import default_preferences
from paretochain.evaluate.rollout import rollout
from paretochain.evaluate.stats import mean_ci

ENV_ID = "paretochain/Dispatch-v0"
CONFIG = "generated_50"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5_000_000, help="MO-PPO training decisions (0: imitation only)")
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--hindsight-seconds", type=float, default=1.0)
    parser.add_argument(
        "--preference",
        type=float,
        nargs="+",
        default=None,
        help="train at this fixed preference (one weight per objective, in the config's order) instead of sampling one per episode",
    )
    parser.add_argument(
        "--dirichlet-alpha", type=float, default=1.0, help="concentration of the sampled training preferences"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ent-coef", type=float, default=0.01, help="entropy bonus of MO-PPO")
    parser.add_argument("--lr", type=float, default=3e-4, help="MO-PPO's initial learning rate")
    parser.add_argument("--embed-dim", type=int, default=64, help="width of the order-slot embeddings")
    parser.add_argument("--num-heads", type=int, default=4, help="attention heads")
    parser.add_argument("--num-layers", type=int, default=2, help="transformer layers over the order slots")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--imitate",
        type=int,
        default=0,
        metavar="STEPS",
        help="first fit MO-PPO to nearest-neighbour's decisions for this many env steps (MOPPO.imitate), then train",
    )
    parser.add_argument(
        "--anchor",
        type=float,
        default=0.0,
        metavar="COEF",
        help="with --imitate: weight of the pull back towards the imitated policy during training (anchor_coef)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    env = make_vec(ENV_ID, args.num_envs, device=args.device, config=CONFIG, tensors=True, check_actions=False)
    hp = {
        "num_steps": 64,
        "encoder": "attention",
        "attention": {
            "slots_block": "orders",
            "valid_block": "order_valid",
            "embed_dim": args.embed_dim,
            "num_heads": args.num_heads,
            "num_layers": args.num_layers,
        },
        "learning_rate": args.lr,
        "ent_coef": args.ent_coef,
        "anchor_coef": args.anchor,
        "log_interval": 10,
        "num_minibatches": 8,
        "total_env_steps": max(args.steps, 1),
        "preference": args.preference,
        "dirichlet_alpha": args.dirichlet_alpha,
        "seed": args.seed,
    }
    agent = MOPPO(env, hp, device=args.device)
    t0 = time.perf_counter()

    def progress(stats: dict[str, float]) -> bool:
        returns = [stats.get(f"charts/episode_return/{name}") for name in env.core.objectives.names]
        if returns[0] is not None:
            shown = ", ".join(f"{name} {value:.2f}" for name, value in zip(env.core.objectives.names, returns))
            print(
                f"  step {int(stats['global_step']):>10,}  {time.perf_counter() - t0:5.0f}s  training episodes: {shown}",
                flush=True,
            )
        return True

    if args.imitate:

        def imitation_progress(stats: dict[str, float]) -> bool:
            print(
                f"  imitation step {int(stats['imitation_step']):>10,}  {time.perf_counter() - t0:5.0f}s  "
                f"probability of the teacher's action {stats['imitation/teacher_probability']:.3f}",
                flush=True,
            )
            return True

        agent.imitate(NearestNeighbourPolicy(env), args.imitate, callback=imitation_progress)
    if args.steps > 0:
        agent.learn(args.steps, callback=progress)
    warm = f" after {args.imitate:,} of imitation" if args.imitate else ""
    print(
        f"trained MO-PPO for {args.steps:,} decisions{warm} on {CONFIG} ({args.device}) in {time.perf_counter() - t0:.0f} s"
    )

    seeds = list(range(60_000, 60_000 + args.episodes))
    cpu_env = make_vec(ENV_ID, len(seeds), device="cpu", config=CONFIG, tensors=True, check_actions=False)
    names = cpu_env.core.objectives.names
    nn = rollout(cpu_env, NearestNeighbourPolicy(cpu_env), seeds).returns
    hind = rollout(cpu_env, PyVRPHindsightPolicy(cpu_env, time_limit_s=args.hindsight_seconds), seeds).returns
    dev_env = make_vec(ENV_ID, len(seeds), device=args.device, config=CONFIG, tensors=True, check_actions=False)
    i_dist, i_time = names.index("travel_distance"), names.index("on_time_rate")
    print("| policy | preference | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for label, r in (("nearest neighbour", nn), ("PyVRP hindsight", hind)):
        mean, ci = mean_ci(r)
        print(f"| {label} | - | " + " | ".join(f"{m:.2f} ± {c:.2f}" for m, c in zip(mean, ci)) + " |")
    best = None
    # a policy trained at one fixed preference is evaluated there; otherwise over the documented lattice
    preferences = (
        [np.asarray(args.preference) / sum(args.preference)] if args.preference else default_preferences(len(names))
    )
    for w in preferences:
        r = rollout(dev_env, agent, seeds, preference=w).returns
        mean, ci = mean_ci(r)
        print(
            f"| MO-PPO | ({', '.join(f'{x:.2f}' for x in w)}) | "
            + " | ".join(f"{m:.2f} ± {c:.2f}" for m, c in zip(mean, ci))
            + " |"
        )
        dd, ddc = mean_ci((r[:, i_dist] - nn[:, i_dist])[:, None])
        dt, dtc = mean_ci((r[:, i_time] - nn[:, i_time])[:, None])
        if dd[0] - ddc[0] > 0 and dt[0] + dtc[0] >= 0 and (best is None or dd[0] > best[1]):
            best = (w, dd[0], ddc[0], dt[0], dtc[0], r)
    if best is None:
        print(
            "No MO-PPO preference beats nearest-neighbour on distance at equal or better on-time rate (paired 95% CIs)."
        )
        return
    w, dd, ddc, dt, dtc, r = best
    gap = 100 * (r[:, i_dist].mean() - hind[:, i_dist].mean()) / abs(hind[:, i_dist].mean())
    print(
        f"MO-PPO at {np.round(w, 2).tolist()} beats nearest-neighbour: distance {dd:+.2f} ± {ddc:.2f} (negated km), "
        f"on-time rate {dt:+.3f} ± {dtc:.3f}; its distance is {-gap:.1f}% above the PyVRP hindsight plan's"
    )


if __name__ == "__main__":
    main()
