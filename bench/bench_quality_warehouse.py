"""Decision quality on the single-SKU lost-sales config: MO-PPO (cost-only preference) against tuned base-stock.

The packaged ``lost_sales`` config (Poisson demand with mean 5, lead time 2, holding
cost 1, lost-sales penalty 9, 100-period episodes) has a known answer: the optimal
long-run cost per period comes from exact dynamic programming
(:func:`~paretochain.agents.baselines.lost_sales_dp.solve_lost_sales`) and the best
base-stock level from an exhaustive search over levels on training seeds
(:func:`~paretochain.agents.baselines.warehouse.tune_base_stock`).

MO-PPO is trained with the preference fixed at weight 1 on ``total_cost`` and 0 on
``fill_rate``, then its deterministic policy plays the same evaluation episodes as
the tuned base-stock policy (common random numbers; evaluation seeds differ from the
tuning and training seeds). The table gives the average cost per period over the
whole episodes (the first periods start from the config's initial stock for every
policy alike), with a 95% confidence interval, and the paired gap to base-stock.

Usage::

    python bench/bench_quality_warehouse.py                       # CPU, 8M training steps (3 to 12 minutes on 2 shared cores)
    python bench/bench_quality_warehouse.py --steps 2000000       # a quicker look (not enough to beat base-stock)
    python bench/bench_quality_warehouse.py --device cuda
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import paretochain  # noqa: F401  (registers the environments)
from paretochain.agents.mo_ppo import MOPPO
from paretochain.envs import make_vec
from paretochain.evaluate.rollout import rollout
from paretochain.seeds import TEST, TUNING_SEEDS

ENV_ID = "paretochain/Warehouse-v0"
CONFIG = "lost_sales"


def cost_per_period(env, policy, seeds: list[int]) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Per-episode average cost per period (minus the total_cost return over the horizon)."""
    result = rollout(env, policy, seeds, preference=torch.tensor([1.0, 0.0]))
    return -result.returns[:, 0] / env.core.horizon


def best_base_stock(train_seeds: list[int], device: str) -> tuple[float, object]:
    """The best base-stock level on the training seeds, and a factory of its policy."""
    try:
        from paretochain.agents.baselines.warehouse import tune_base_stock

        tuned = tune_base_stock(CONFIG, seeds=train_seeds, weights=np.array([1.0, 0.0]), device=device)
        return tuned.best, tuned.policy
    except ImportError:  # no baselines module: search the levels inline
        levels = np.arange(0, 31)
        scores = []
        for level in levels:
            env = make_vec(ENV_ID, len(train_seeds), device=device, config=CONFIG)
            scores.append(cost_per_period(env, _BaseStock(int(level)), train_seeds).mean())
        best = int(levels[int(np.argmin(scores))])
        return float(best), lambda env: _BaseStock(best)


class _BaseStock:
    """Order up to ``level`` units of inventory position (on hand + pipeline)."""

    def __init__(self, level: int) -> None:
        self.level = level

    def act(self, obs, preference=None, action_mask=None):  # type: ignore[no-untyped-def]
        position = obs[:, :3].sum(dim=1)
        return (self.level - position).clamp(0, 20).round().long()


def mean_ci(x: np.ndarray) -> tuple[float, float]:
    return float(x.mean()), float(1.96 * x.std(ddof=1) / np.sqrt(len(x)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8_000_000, help="MO-PPO training env steps")
    parser.add_argument("--num-envs", type=int, default=512, help="MO-PPO batch size")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--eval-episodes", type=int, default=512, help="evaluation episodes (seeds 100000...)")
    parser.add_argument("--seed", type=int, default=0, help="MO-PPO seed")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--gamma", type=float, default=0.95, help="MO-PPO discount")
    parser.add_argument("--lr", type=float, default=1e-3, help="MO-PPO initial learning rate (annealed to 0)")
    parser.add_argument("--minibatches", type=int, default=16, help="MO-PPO minibatches per epoch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = args.device

    train_seeds = list(TUNING_SEEDS)
    eval_seeds = TEST.first(args.eval_episodes)
    eval_env = make_vec(ENV_ID, len(eval_seeds), device=device, config=CONFIG, tensors=True, check_actions=False)

    level, make_base_stock = best_base_stock(train_seeds, device)
    base_costs = cost_per_period(eval_env, make_base_stock(eval_env), eval_seeds)

    optimum = None
    try:
        from paretochain.agents.baselines.lost_sales_dp import solve_lost_sales

        optimum = solve_lost_sales(mean=5.0, lead_time=2, holding_cost=1.0, penalty=9.0).average_cost
    except ImportError:
        pass

    env = make_vec(ENV_ID, args.num_envs, device=device, config=CONFIG, tensors=True, check_actions=False)
    config = {
        "preference": {"total_cost": 1.0},
        "num_steps": 100,
        "gamma": args.gamma,
        "gae_lambda": 0.95,
        "ent_coef": 0.0,
        "learning_rate": args.lr,
        "num_minibatches": args.minibatches,
        "update_epochs": 4,
        "total_env_steps": args.steps,
        "seed": args.seed,
        "log_interval": 10,
    }
    agent = MOPPO(env, config, device=device)
    start = time.perf_counter()

    def progress(stats: dict[str, float]) -> bool:
        if "charts/episode_return/total_cost" in stats:
            per_period = -stats["charts/episode_return/total_cost"] / env.core.horizon
            print(
                f"  step {int(stats['global_step']):>9,}  {time.perf_counter() - start:6.0f}s  training cost/period {per_period:7.3f}",
                flush=True,
            )
        return True

    print(f"training MO-PPO on {CONFIG} for {args.steps:,} env steps ({args.num_envs} envs, {device})")
    agent.learn(args.steps, callback=progress)
    train_s = time.perf_counter() - start
    ppo_costs = cost_per_period(eval_env, agent, eval_seeds)

    diff = ppo_costs - base_costs
    print(
        f"\nDecision quality on {ENV_ID} config={CONFIG!r}: average cost per period over {len(eval_seeds)} evaluation episodes of {eval_env.core.horizon} periods"
    )
    print(f"{'policy':<44} {'cost/period':>12} {'95% CI':>8} {'gap to base-stock':>18}")
    print("-" * 86)
    m, c = mean_ci(base_costs)
    print(f"{f'best base-stock (level {level:g}, tuned on 64 seeds)':<44} {m:>12.3f} {c:>8.3f} {'0.00%':>18}")
    m2, c2 = mean_ci(ppo_costs)
    dm, dc = mean_ci(diff)
    print(
        f"{f'MO-PPO, cost-only preference ({args.steps / 1e6:g}M steps)':<44} {m2:>12.3f} {c2:>8.3f} {100 * dm / m:>17.2f}%"
    )
    print(f"paired difference MO-PPO - base-stock: {dm:+.3f} +/- {dc:.3f} per period (negative = MO-PPO cheaper)")
    if optimum is not None:
        print(f"exact DP optimum (long-run average, no start-up transient): {optimum:.3f} per period")
    print(f"training time {train_s:.0f}s ({args.steps / train_s:,.0f} env-steps/s)")


if __name__ == "__main__":
    main()
