"""Base-stock with one cover per SKU against the project's one-cover base-stock (lost-sales Warehouse configs).

The project's base-stock tuner (:func:`~paretochain.agents.baselines.warehouse.tune_base_stock`)
gives every node and SKU the same cover (order-up-to level = cover x the node's mean demand).
SKUs differ (price, unit cost, holding cost, shortage penalty, demand), so a planner could give
each SKU its own cover. This script measures what that is worth:

- one batched simulation on the training seeds (``TUNING_SEEDS``) plays every cover of the grid
  for every SKU at once (common random numbers) and splits each episode's profit by SKU
  (:meth:`~paretochain.envs.warehouse.core.WarehouseCore.sku_profit`) and its fill rate by SKU
  (the fill rate is the mean over periods of units sold over units demanded, so each SKU adds
  its units sold over the period's demand: the split is exact);
- **one cover**: the cover with the most profit (what the project's tuner finds on the same grid);
- **per SKU, profit only**: each SKU's own best cover. SKUs share only the nodes' storage
  capacity, so the sum of the SKUs' best profits is an estimate, checked on the test episodes;
- **per SKU, at the one-cover fill rate**: each SKU's cover maximising its profit plus
  ``lambda`` times its fill-rate share, with the smallest ``lambda`` (bisection) at which the
  training fill rate is at least the one-cover policy's: the most profit at that fill rate that
  per-SKU covers give (a Lagrangian relaxation of the fill-rate constraint);
- plays the three policies on the same test episodes (``TEST``) and prints their means with 95%
  confidence intervals and the differences against one cover, paired by seed.

Usage::

    python bench/bench_base_stock_per_sku.py                     # network_50sku, 4,096 test episodes
    python bench/bench_base_stock_per_sku.py --episodes 256      # a quick look
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import paretochain  # noqa: F401  (registers the environments)
from paretochain.agents.baselines.warehouse import BaseStockPolicy
from paretochain.envs import make_vec
from paretochain.envs.warehouse import WarehouseConfig
from paretochain.evaluate.rollout import rollout
from paretochain.evaluate.stats import mean_ci, paired_difference
from paretochain.seeds import TEST, TUNING_SEEDS

ENV_ID = "paretochain/Warehouse-v0"


def per_sku_returns(
    config: WarehouseConfig, covers: np.ndarray, seeds: list[int], device: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean profit and fill-rate share per (cover, SKU), ``(C, S)`` each, and the nodes' mean demand ``(N, S)``."""
    n_c, n_s = len(covers), len(seeds)
    env = make_vec(ENV_ID, n_c * n_s, device=device, config=config, tensors=True, check_actions=False)
    core = env.core
    mean = core.node_mean
    policy = BaseStockPolicy(env, np.round(np.repeat(covers, n_s)[:, None, None] * mean[None]))
    obs = core.reset(seeds=seeds * n_c)
    profit = torch.zeros(n_c * n_s, core.num_skus, dtype=torch.float64, device=core.device)
    fill = torch.zeros_like(profit)
    with torch.inference_mode():
        for _ in range(core.horizon):
            out = core.step(policy.act(obs), check=False)
            profit += core.sku_profit().double()
            sold = core.flows["sold"]
            assert sold is not None
            demand = core.state.last_demand.sum((1, 2)).double()
            # a period without demand fills 1 (the environment's rule): spread it evenly over the SKUs
            share = torch.where(
                demand.unsqueeze(1) > 0,
                sold.sum(1).double() / demand.clamp(min=1e-12).unsqueeze(1),
                torch.full_like(profit, 1.0 / core.num_skus),
            )
            fill += share / core.horizon
            obs = out.obs
    return (
        profit.reshape(n_c, n_s, -1).mean(1).cpu().numpy(),
        fill.reshape(n_c, n_s, -1).mean(1).cpu().numpy(),
        mean,
    )


def covers_at_fill_rate(profit: np.ndarray, fill: np.ndarray, target: float) -> tuple[np.ndarray, float]:
    """Per-SKU cover indices maximising profit + lambda x fill share, with the smallest lambda reaching ``target``."""
    skus = np.arange(profit.shape[1])

    def choice(lam: float) -> np.ndarray:
        return np.argmax(profit + lam * fill, axis=0)

    lo, hi = 0.0, 1.0
    while fill[choice(hi), skus].sum() < target and hi < 1e15:
        hi *= 2
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if fill[choice(mid), skus].sum() >= target else (mid, hi)
    return choice(hi), hi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="network_50sku", help="a lost-sales Warehouse config")
    parser.add_argument("--episodes", type=int, default=4096, help="test episodes per policy")
    parser.add_argument("--batch", type=int, default=4096, help="episodes per batched rollout")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="bench/results/base_stock_per_sku.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = WarehouseConfig.load(args.config)
    if config.unmet_demand != "lost":
        parser.error("the fill-rate split by SKU is written for lost sales (unmet_demand: lost)")
    names = list(config.objectives)
    if "profit" not in names or "fill_rate" not in names:
        parser.error(f"the config's objectives {names} need profit and fill_rate")
    covers = np.arange(0.0, 12.01, 0.25)
    started = time.perf_counter()
    profit, fill, mean = per_sku_returns(config, covers, list(TUNING_SEEDS), args.device)
    one = int(np.argmax(profit.sum(1)))
    skus = np.arange(profit.shape[1])
    own = np.argmax(profit, axis=0)
    at_fill, lam = covers_at_fill_rate(profit, fill, float(fill[one].sum()))
    print(
        f"# {args.config}: covers 0 to 12 in steps of 0.25 on {len(TUNING_SEEDS)} training seeds "
        f"({time.perf_counter() - started:.0f} s)"
    )
    policies = {
        f"one cover ({covers[one]:g})": np.full(len(skus), covers[one]),
        "per SKU, profit only": covers[own],
        "per SKU, at the one-cover fill rate": covers[at_fill],
    }
    training = {
        f"one cover ({covers[one]:g})": (profit[one].sum(), fill[one].sum()),
        "per SKU, profit only": (profit[own, skus].sum(), fill[own, skus].sum()),
        "per SKU, at the one-cover fill rate": (profit[at_fill, skus].sum(), fill[at_fill, skus].sum()),
    }
    for name, (p, f) in training.items():
        print(f"   training: {name}: profit {p:,.0f}, fill rate {f:.4f}")
    print(f"   lambda of the fill-rate constraint: {lam:,.0f} profit per unit of fill rate")

    test = TEST.first(args.episodes)
    returns = {}
    t0 = time.perf_counter()
    for name, per_sku in policies.items():
        levels = np.round(per_sku[None, :] * mean)
        chunks = []
        for lo in range(0, len(test), args.batch):
            seeds = test[lo : lo + args.batch]
            env = make_vec(ENV_ID, len(seeds), device=args.device, config=config, tensors=True, check_actions=False)
            chunks.append(rollout(env, BaseStockPolicy(env, levels), seeds).returns)
        returns[name] = np.concatenate(chunks)
    columns = [names.index("profit"), names.index("fill_rate")]
    base_name = next(iter(policies))
    base = returns[base_name][:, columns]
    print(f"\n## {args.config}: {args.episodes:,} test episodes, the same seeds for every policy")
    print("| policy | profit | fill rate | profit - one cover (paired) | fill rate - one cover (paired) |")
    print("|---|---|---|---|---|")
    report: dict[str, object] = {"config": args.config, "episodes": args.episodes, "lambda": lam, "policies": {}}
    for name, r in returns.items():
        m, h = mean_ci(r[:, columns])
        dm, dh = paired_difference(r[:, columns], base)
        diff = "" if name == base_name else f"{dm[0]:+,.0f} ± {dh[0]:,.0f} | {dm[1]:+.4f} ± {dh[1]:.4f}"
        print(f"| {name} | {m[0]:,.0f} ± {h[0]:,.0f} | {m[1]:.4f} ± {h[1]:.4f} | {diff or '- | -'} |")
        report["policies"][name] = {  # type: ignore[index]
            "covers": policies[name].tolist(),
            "profit": float(m[0]),
            "profit_ci95": float(h[0]),
            "fill_rate": float(m[1]),
            "fill_rate_ci95": float(h[1]),
            "profit_difference": float(dm[0]),
            "profit_difference_ci95": float(dh[0]),
            "fill_rate_difference": float(dm[1]),
            "fill_rate_difference_ci95": float(dh[1]),
        }
    print(f"test episodes: {time.perf_counter() - t0:.0f} s; total {time.perf_counter() - started:.0f} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
