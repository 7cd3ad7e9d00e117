"""Epochs and order decisions per second of ``paretochain/DispatchEpoch-v0`` on 100-customer instances.

Plays whole episodes with the greedy (dispatch everything) and lazy (must-go only) baselines
and times the env steps (PyVRP routing of the dispatched orders included) and the policy. An
"epoch" is one step of one environment; a "decision" is one open order decided in an epoch
(dispatch or postpone). The instance is the per-stop benchmark's (``bench_dispatch.py``).
Routing is single-threaded; the table also lists the share of the time spent in PyVRP.

The second table plays the same episodes through the batched view (``make_vec``, ``--batch``
environments per call) with routing in this process and in a pool of ``--workers`` processes,
beside the single environment's rate measured in the same run (the plain alternative).

    python bench/bench_epoch_dispatch.py                      # 3 episodes per policy, about half a minute
    python bench/bench_epoch_dispatch.py --episodes 8 --routing-iterations 1000
    python bench/bench_epoch_dispatch.py --batch 8 --workers 2 4
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch

from paretochain.agents.baselines.epoch import GreedyEpochPolicy, LazyEpochPolicy
from paretochain.envs import make_vec
from paretochain.envs.dispatch.epoch import EpochDispatchEnv

CONFIG: dict[str, Any] = {
    "generator": {"num_customers": 100, "area_km": 30.0, "placement": "mixed"},
    "num_vehicles": 10,
    "capacity_units": 100,
    "shift_length_min": 600,
    "speed_km_per_min": 0.6,
}


def bench(policy: Any, episodes: int, iterations: int) -> dict[str, float]:
    env = EpochDispatchEnv(CONFIG, invalid_action="raise", epoch={"routing_iterations": iterations})
    routing_s = 0.0
    route = env._route

    def timed_route(slots: np.ndarray) -> Any:
        nonlocal routing_s
        start = time.perf_counter()
        out = route(slots)
        routing_s += time.perf_counter() - start
        return out

    env._route = timed_route  # type: ignore[method-assign]
    epochs = decisions = 0
    distance = unserved = 0.0
    elapsed = 0.0
    for seed in range(episodes):
        obs, info = env.reset(seed=seed)
        done = False
        while not done:
            start = time.perf_counter()
            mask = torch.as_tensor(info["action_mask"])[None]
            action = policy.act(torch.as_tensor(obs)[None], None, mask)[0].numpy()
            decisions += int(env.open_orders().sum())
            obs, _, done, _, info = env.step(action)
            elapsed += time.perf_counter() - start
            epochs += 1
            distance += float(info["travel_distance"])
            unserved += float(info["orders_unserved"])
    return {
        "epochs_per_s": epochs / elapsed,
        "decisions_per_s": decisions / elapsed,
        "routing_share": routing_s / elapsed,
        "epochs_per_episode": epochs / episodes,
        "distance_km": distance / episodes,
        "unserved": unserved / episodes,
    }


def bench_batched(policy: Any, num_envs: int, workers: int, iterations: int) -> dict[str, float]:
    """One episode per environment of a batch of ``num_envs``, routing with ``workers`` processes (0: in process)."""
    env = make_vec(
        "paretochain/DispatchEpoch-v0",
        num_envs,
        config=CONFIG,
        tensors=True,
        epoch={"routing_iterations": iterations, "routing_workers": workers},
    )
    core = env.core
    if workers:  # start the pool outside the timing: a service starts it once
        core.reset(seeds=list(range(1000, 1000 + num_envs)))
        core.step(GreedyEpochPolicy().act(core.observe(), None, core.action_masks()))
    start = time.perf_counter()
    obs = core.reset(seeds=list(range(num_envs)))
    epochs = decisions = 0
    alive = torch.ones(num_envs, dtype=torch.bool)
    distance = 0.0
    while bool(alive.any()):
        mask = core.action_masks()
        decisions += int((mask.reshape(num_envs, -1, 2)[..., 1] & alive.unsqueeze(1)).sum())
        out = core.step(policy.act(obs, None, mask), check=False)
        epochs += int(alive.sum())
        distance += float((out.kpis["travel_distance"] * alive).sum())
        alive &= ~out.terminated
        obs = out.obs
    elapsed = time.perf_counter() - start
    core.close()
    return {
        "epochs_per_s": epochs / elapsed,
        "decisions_per_s": decisions / elapsed,
        "distance_km": distance / num_envs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--routing-iterations", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4, help="environments of the batched view")
    parser.add_argument("--workers", type=int, nargs="*", default=[2], help="routing pool sizes to measure")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"100 customers, 10 vehicles, {args.episodes} episodes, {args.routing_iterations} PyVRP iterations per epoch")
    print(
        "| policy | epochs/s | decisions/s | time in PyVRP | epochs per episode | km per episode | unserved per episode |"
    )
    print("|---|---|---|---|---|---|---|")
    rates: dict[str, dict[str, float]] = {}
    for name, policy in (("greedy", GreedyEpochPolicy()), ("lazy", LazyEpochPolicy())):
        r = bench(policy, args.episodes, args.routing_iterations)
        print(
            f"| {name} | {r['epochs_per_s']:.1f} | {r['decisions_per_s']:.0f} | {100 * r['routing_share']:.0f}% "
            f"| {r['epochs_per_episode']:.0f} | {r['distance_km']:.1f} | {r['unserved']:.1f} |"
        )
        rates[name] = r

    print(f"\nbatched view: {args.batch} environments, one episode each (seeds 0..{args.batch - 1})")
    print("| policy | routing | epochs/s | decisions/s | x single env | km per episode |")
    print("|---|---|---|---|---|---|")
    for name, policy in (("greedy", GreedyEpochPolicy()), ("lazy", LazyEpochPolicy())):
        for workers in [0, *args.workers]:
            r = bench_batched(policy, args.batch, workers, args.routing_iterations)
            routing = "in process" if workers == 0 else f"{workers} worker processes"
            print(
                f"| {name} | {routing} | {r['epochs_per_s']:.1f} | {r['decisions_per_s']:.0f} "
                f"| {r['epochs_per_s'] / rates[name]['epochs_per_s']:.2f} | {r['distance_km']:.1f} |"
            )


if __name__ == "__main__":
    main()
