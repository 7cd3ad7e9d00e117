"""Decision quality on Pricing: MO-PPO against the myopic baseline and the exact DP optimum.

1. Default config (2 SKUs, web + marketplace): MO-PPO trained with preferences drawn per
   episode is evaluated over the preference lattice; the report says whether some point of
   its front beats the myopic baseline on gross margin at equal or better customer
   satisfaction (same seeded episodes for every policy).
2. Single-SKU instance ``dp_single_sku``: MO-PPO trained with the margin-only preference (and
   an entropy bonus, ``--dp-ent-coef``) is compared with the exact DP optimum of expected gross
   margin (``leftover_weight=0``) and, paired by seed, with the DP policy simulated.

Usage: ``python bench/bench_quality_pricing.py [--steps 2000000] [--device cpu] [--skip-front]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from paretochain.agents.baselines.pricing import DynamicProgrammingPolicy, MyopicPolicy
from paretochain.agents.mo_ppo import MOPPO
from paretochain.envs import make_vec
from paretochain.evaluate.pareto import default_preferences
from paretochain.evaluate.rollout import rollout
from paretochain.evaluate.stats import mean_ci

ENV_ID = "paretochain/Pricing-v0"


def train(
    config: str,
    steps: int,
    device: str,
    preference: list[float] | None,
    seed: int,
    num_envs: int = 256,
    ent_coef: float = 0.0,
) -> MOPPO:
    env = make_vec(ENV_ID, num_envs, device=device, config=config, tensors=True, check_actions=False)
    hp = {
        "num_steps": 32,
        "learning_rate": 1e-3,
        "num_minibatches": 8,
        "ent_coef": ent_coef,
        "gamma": 0.99,
        "seed": seed,
        "total_env_steps": steps,
        "hidden_sizes": [128, 128],
    }
    if preference is not None:
        hp["preference"] = preference
    agent = MOPPO(env, hp, device=device)
    t0 = time.perf_counter()
    agent.learn(steps)
    print(f"  trained {steps:,} steps on {config} in {time.perf_counter() - t0:.0f} s")
    return agent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2_000_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--episodes", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-envs", type=int, default=256, help="environments MO-PPO trains on")
    parser.add_argument(
        "--preference",
        type=float,
        nargs="+",
        default=None,
        help="part 1: train at this fixed preference (gross margin, satisfaction, leftover) and evaluate there, instead of sampling one per episode",
    )
    parser.add_argument("--ent-coef", type=float, default=0.0, help="part 1: MO-PPO's entropy bonus")
    parser.add_argument(
        "--dp-ent-coef",
        type=float,
        default=0.05,
        help="part 2: MO-PPO's entropy bonus (without one it settles on the top price in every state)",
    )
    parser.add_argument("--dp-steps", type=int, default=None, help="part 2: training steps (default: --steps)")
    parser.add_argument("--skip-front", action="store_true", help="run part 2 only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = list(range(50_000, 50_000 + args.episodes))

    if not args.skip_front:
        front(args, seeds)
    single_sku(args, seeds)


def front(args: argparse.Namespace, seeds: list[int]) -> None:
    print("# 1. default config: MO-PPO front against the myopic baseline")
    agent = train("default", args.steps, args.device, args.preference, args.seed, args.num_envs, args.ent_coef)
    env = make_vec(ENV_ID, len(seeds), device=args.device, config="default", tensors=True, check_actions=False)
    names = env.core.objectives.names
    myopic = rollout(env, MyopicPolicy(env), seeds).returns
    m_mean, m_ci = mean_ci(myopic)
    print("| policy | preference | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    print("| myopic | - | " + " | ".join(f"{m:.2f} ± {c:.2f}" for m, c in zip(m_mean, m_ci)) + " |")
    i_margin, i_sat = names.index("gross_margin"), names.index("customer_satisfaction")
    winners = []
    preferences = (
        [np.asarray(args.preference) / sum(args.preference)] if args.preference else default_preferences(len(names))
    )
    for w in preferences:
        r = rollout(env, agent, seeds, preference=w).returns
        mean, ci = mean_ci(r)
        d_margin = r[:, i_margin] - myopic[:, i_margin]
        d_sat = r[:, i_sat] - myopic[:, i_sat]
        dm, dmc = mean_ci(d_margin[:, None])
        ds, dsc = mean_ci(d_sat[:, None])
        if dm[0] - dmc[0] > 0 and ds[0] + dsc[0] >= 0:
            winners.append((w, dm[0], dmc[0], ds[0], dsc[0]))
        print(
            f"| MO-PPO | ({', '.join(f'{x:.2f}' for x in w)}) | "
            + " | ".join(f"{m:.2f} ± {c:.2f}" for m, c in zip(mean, ci))
            + " |"
        )
    if winners:
        w, dm, dmc, ds, dsc = max(winners, key=lambda x: x[1])
        print(
            f"MO-PPO beats myopic on margin at equal or better satisfaction at preference {np.round(w, 2).tolist()}: "
            f"margin {dm:+.2f} ± {dmc:.2f}, satisfaction {ds:+.3f} ± {dsc:.3f} (paired, 95% CI)"
        )
    else:
        print("No point of the MO-PPO front beats myopic on margin at equal or better satisfaction (paired 95% CIs).")


def single_sku(args: argparse.Namespace, seeds: list[int]) -> None:
    print("\n# 2. dp_single_sku: margin-only MO-PPO against the exact DP optimum")
    k = 3
    steps = args.dp_steps or args.steps
    agent = train("dp_single_sku", steps, args.device, [1.0, 0.0, 0.0], args.seed, args.num_envs, args.dp_ent_coef)
    env = make_vec(ENV_ID, len(seeds), device=args.device, config="dp_single_sku", tensors=True, check_actions=False)
    dp = DynamicProgrammingPolicy(env, leftover_weight=0.0)
    i = env.core.objectives.names.index("gross_margin")
    rows = {
        "DP optimum (simulated)": rollout(env, dp, seeds).returns[:, i],
        "myopic": rollout(env, MyopicPolicy(env), seeds).returns[:, i],
        "MO-PPO (margin only)": rollout(env, agent, seeds, preference=np.eye(k)[0]).returns[:, i],
    }
    print(f"DP expected gross margin (exact): {dp.value:.3f}")
    for name, r in rows.items():
        mean, ci = mean_ci(r[:, None])
        print(
            f"  {name:24s} {mean[0]:8.3f} ± {ci[0]:.3f}   gap to the DP optimum {100 * (mean[0] - dp.value) / dp.value:+.2f}%"
        )
    paired, paired_ci = mean_ci((rows["MO-PPO (margin only)"] - rows["DP optimum (simulated)"])[:, None])
    print(f"  MO-PPO minus the DP policy on the same seeds: {paired[0]:+.3f} ± {paired_ci[0]:.3f}")


if __name__ == "__main__":
    main()
