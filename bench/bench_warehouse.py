"""Environment steps per second of the Warehouse family: single env, SyncVectorEnv, batched view.

Prints one table per run with the ratios against the plain alternatives measured in the
same run. Usage::

    python bench/bench_warehouse.py                      # CPU, lost_sales and network_50sku
    python bench/bench_warehouse.py --device cuda        # batched view on a GPU
    python bench/bench_warehouse.py --configs lost_sales --sizes 1 64 1024 16384 --seconds 2

Targets (2-core CPU, lost_sales): batched view at N=16384 above 1,000,000 env-steps/s and at
least 100x the SyncVectorEnv; the single env above 5,000 steps/s.
"""

from __future__ import annotations

import argparse
import platform
import time

import gymnasium as gym
import mo_gymnasium as mo_gym
import numpy as np
import torch

import paretochain  # noqa: F401
from paretochain.envs import make_vec, tune_allocator

ENV_ID = "paretochain/Warehouse-v0"


def _constant_action(space: gym.Space) -> np.ndarray | int:
    if isinstance(space, gym.spaces.Discrete):
        return 5 if space.n > 5 else 1
    if isinstance(space, gym.spaces.MultiDiscrete):
        return np.full(space.shape, 2, dtype=np.int64)
    return np.asarray(space.high * 0.3, dtype=np.float32)


def _timed(step, min_seconds: float, min_steps: int) -> float:
    """Calls of ``step`` per second, after a warm-up, over at least ``min_seconds``."""
    for _ in range(3):
        step()
    calls, start = 0, time.perf_counter()
    while True:
        step()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and calls >= min_steps:
            return calls / elapsed


def bench_single(config: str, seconds: float) -> float:
    env = gym.make(ENV_ID, config=config)
    env.reset(seed=0)
    action = _constant_action(env.action_space)

    def step() -> None:
        _, _, term, trunc, _ = env.step(action)
        if term or trunc:
            env.reset()

    return _timed(step, seconds, 200)


def _scalarised(config: str) -> gym.Env:
    # SyncVectorEnv stores scalar rewards, so each env is scalarised as SB3 users do it
    env = gym.make(ENV_ID, config=config)
    k = env.unwrapped.reward_dim
    return mo_gym.wrappers.LinearReward(env, weight=np.full(k, 1.0 / k, dtype=np.float32))


def bench_sync(config: str, n: int, seconds: float) -> float:
    vec = gym.vector.SyncVectorEnv([lambda: _scalarised(config) for _ in range(n)])
    vec.reset(seed=0)
    single = vec.single_action_space
    action = np.stack([np.asarray(_constant_action(single))] * n)
    return _timed(lambda: vec.step(action), seconds, 5) * n


def bench_batched(config: str, n: int, device: str, seconds: float, tensors: bool) -> float:
    vec = make_vec(ENV_ID, n, device=device, config=config, tensors=tensors, check_actions=False)
    vec.reset(seed=0)
    single = np.asarray(_constant_action(vec.single_action_space))
    action = np.broadcast_to(single, (n, *single.shape)).copy()
    if tensors:
        action = torch.as_tensor(action, device=vec.device)

    def step() -> None:
        vec.step(action)

    rate = _timed(step, seconds, 5)
    if vec.device.type == "cuda":
        torch.cuda.synchronize()
        rate = _timed(lambda: (step(), torch.cuda.synchronize()), seconds, 5)
    return rate * n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="*", default=["lost_sales", "network_50sku"])
    parser.add_argument("--sizes", nargs="*", type=int, default=[1, 64, 1024, 16384])
    parser.add_argument("--sync-sizes", nargs="*", type=int, default=[1, 64, 1024])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=1.5, help="minimum timed seconds per row")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    tune_allocator()  # batched CPU steps reuse large buffers (paretochain.envs.tune_allocator)
    if args.threads:
        torch.set_num_threads(args.threads)
    device_name = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or platform.machine()
    )
    print(
        f"# Warehouse env-steps/s on {args.device} ({device_name}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
    header = f"| {'config':<14} | {'view':<24} | {'N':>6} | {'env-steps/s':>13} | {'x single':>9} | {'x SyncVectorEnv':>15} |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for config in args.configs:
        single = bench_single(config, args.seconds)
        sync = {n: bench_sync(config, n, args.seconds) for n in args.sync_sizes}
        best_sync = max(sync.values())
        rows = [("single gymnasium.Env", 1, single, None)]
        rows += [("SyncVectorEnv", n, r, sync[n]) for n, r in sync.items()]
        for n in args.sizes:
            for tensors in (False, True):
                rate = bench_batched(config, n, args.device, args.seconds, tensors)
                view = "make_vec (tensors)" if tensors else "make_vec (numpy)"
                rows.append((view, n, rate, sync.get(n, best_sync)))
        for view, n, rate, ref in rows:
            vs_sync = "" if ref is None or view == "SyncVectorEnv" else f"{rate / ref:,.1f}"
            print(f"| {config:<14} | {view:<24} | {n:>6} | {rate:>13,.0f} | {rate / single:>9,.1f} | {vs_sync:>15} |")
    print(
        "\nThe SyncVectorEnv steps single envs scalarised with MO-Gymnasium's LinearReward (it stores scalar rewards)."
    )
    print(
        "'x SyncVectorEnv' compares with the SyncVectorEnv of the same N, or with the fastest one measured when N is larger."
    )


if __name__ == "__main__":
    main()
