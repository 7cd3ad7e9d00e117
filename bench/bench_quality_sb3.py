"""Decision quality of SB3 PPO on the single-SKU lost-sales config, against the best base-stock policy.

SB3 PPO is trained on :class:`~paretochain.agents.sb3.CoreVecEnv` with a cost-only
scalarisation (``weights: {total_cost: 1}``), then every policy is evaluated on the same
held-out seeds (common random numbers), and the table reports the average cost per
period (holding + lost-sales penalty; lower is better) and the gap to the best
base-stock policy (also as a paired difference per episode, whose confidence interval
is much narrower than those of the two means):

- ``base-stock (tuned)``: ``tune_base_stock`` searches every order-up-to level on
  training seeds 0..63 (cost only), then plays the evaluation seeds;
- ``sb3 ppo (cost only)``: after each ``--eval-every`` steps of training, and at the end;
- ``optimal (DP)``: the exact average-cost optimum by relative value iteration, for reference.

PPO settings: 16 envs, rollouts of 256 steps per env, 10 epochs of minibatches of 512,
entropy bonus 0.01, rewards scaled by VecNormalize, observations *not* normalised: the
first, near-uniform policy orders twice the mean demand, stock climbs into the hundreds,
and VecNormalize's cumulative statistics stay dominated by that phase, squeezing the
stock levels that matter later into a sliver of the input range (in a trial of 65k
steps with them on, the deterministic policy stayed at 35-40 per period; without them
it was at 22 then, and reached base-stock level by about 400k steps).

Usage::

    python bench/bench_quality_sb3.py                     # about 5-10 minutes on 2 CPU cores
    python bench/bench_quality_sb3.py --steps 100000      # a quick look
    python bench/bench_quality_sb3.py --device cuda
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import paretochain  # noqa: F401  (registers the environments)
from paretochain.agents.baselines.lost_sales_dp import LostSalesDPPolicy
from paretochain.agents.baselines.warehouse import tune_base_stock
from paretochain.agents.sb3 import SB3Agent
from paretochain.envs import make_vec
from paretochain.evaluate.rollout import rollout
from paretochain.seeds import TEST, TUNING_SEEDS

ENV_ID = "paretochain/Warehouse-v0"
CONFIG = "lost_sales"


def cost_per_period(policy, seeds: list[int], device: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Average cost per period of one episode per seed."""
    env = make_vec(ENV_ID, len(seeds), device=device, config=CONFIG, tensors=True)
    result = rollout(env, policy, seeds)
    return -result.returns[:, 0] / result.lengths


def mean_ci(x: np.ndarray) -> tuple[float, float]:
    """Mean and 95% half-width (normal approximation)."""
    return float(x.mean()), float(1.96 * x.std(ddof=1) / np.sqrt(len(x)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=500_000, help="PPO training env steps")
    parser.add_argument("--eval-every", type=int, default=100_000, help="env steps between evaluations")
    parser.add_argument("--num-envs", type=int, default=16, help="environments stepped together")
    parser.add_argument("--eval-episodes", type=int, default=256, help="held-out evaluation seeds")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    eval_seeds = TEST.first(args.eval_episodes)

    start = time.perf_counter()
    tuned = tune_base_stock(CONFIG, seeds=TUNING_SEEDS, device=args.device)
    base_env = make_vec(ENV_ID, len(eval_seeds), device=args.device, config=CONFIG, tensors=True)
    base = cost_per_period(tuned.policy(base_env), eval_seeds, args.device)
    dp = cost_per_period(LostSalesDPPolicy(base_env), eval_seeds, args.device)
    print(f"base-stock tuned in {time.perf_counter() - start:.1f}s: level {tuned.best:.0f}")

    hyper = {
        "algo": "ppo",
        "weights": {"total_cost": 1.0},
        "n_steps": 256,
        "batch_size": 512,
        "n_epochs": 10,
        "learning_rate": 3e-4,
        "gamma": 0.99,
        "gae_lambda": 0.95,
        "ent_coef": 0.01,
        "hidden_sizes": [64, 64],
        "norm_obs": False,
        "norm_return": True,
        "seed": args.seed,
        "log_interval_steps": 10**9,
    }
    env = make_vec(ENV_ID, args.num_envs, device=args.device, config=CONFIG, tensors=True, check_actions=False)
    agent = SB3Agent(env, hyper, device=args.device)
    rows: list[tuple[str, np.ndarray]] = []
    train_start = time.perf_counter()
    while agent.num_env_steps < args.steps:
        agent.learn(min(args.eval_every, args.steps - agent.num_env_steps))
        costs = cost_per_period(agent, eval_seeds, args.device)
        cost, ci = mean_ci(costs)
        elapsed = time.perf_counter() - train_start
        rows.append((f"sb3 ppo (cost only) @ {agent.num_env_steps:,} steps", costs))
        print(f"  {agent.num_env_steps:>9,} steps  {elapsed:6.0f}s  cost/period {cost:.3f} +- {ci:.3f}", flush=True)
    train_time = time.perf_counter() - train_start

    print(
        f"\nAverage cost per period on {ENV_ID} config={CONFIG!r}, {len(eval_seeds)} held-out episodes "
        f"(seeds {eval_seeds[0]}..{eval_seeds[-1]}), device={args.device}"
    )
    print(f"{'policy':<42} {'cost/period':>12} {'95% CI':>7} {'gap vs base-stock':>18} {'paired diff (95% CI)':>22}")
    print("-" * 106)
    base_cost = float(base.mean())
    table = [(f"base-stock (tuned, level {tuned.best:.0f})", base), *rows, ("optimal (DP, reference)", dp)]
    for name, costs in table:
        cost, ci = mean_ci(costs)
        diff, diff_ci = mean_ci(costs - base)
        print(
            f"{name:<42} {cost:>12.3f} {ci:>7.3f} {100 * (cost - base_cost) / base_cost:>17.2f}% {diff:>+13.3f} +- {diff_ci:.3f}"
        )
    print(
        f"\nPPO: {args.num_envs} envs, {args.steps:,} steps in {train_time:.0f}s ({args.steps / train_time:,.0f} env-steps/s incl. evaluation)"
    )


if __name__ == "__main__":
    main()
