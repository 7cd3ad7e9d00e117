"""Throughput of the Pricing family: env steps per second, single and batched, against a SyncVectorEnv.

Every row is measured in the same run, so the ratios hold on a noisy machine:

- ``single``: one ``gymnasium.make("paretochain/Pricing-v0")`` env stepped in a loop;
- ``batched N``: the batched core behind ``make_vec`` (tensor mode, actions built once on
  the device, no per-step checks), N environments per call;
- ``sync N``: a ``gymnasium.vector.SyncVectorEnv`` of N single envs (the plain alternative), in
  MO-Gymnasium's subclass ``MOSyncVectorEnv``, which stores vector rewards.

Usage::

    python bench/bench_pricing.py                      # CPU, the default config
    python bench/bench_pricing.py --device cuda        # on a GPU
    python bench/bench_pricing.py --config multichannel --sizes 1 64 1024
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import numpy as np
import torch
from mo_gymnasium.wrappers.vector import MOSyncVectorEnv

import paretochain  # noqa: F401  (registers the environments)
from paretochain.envs import make_vec, tune_allocator


def list_price_action(core, num_envs: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A valid action for every env: list price everywhere allowed, else the lowest allowed price; levels 0."""
    space = core.single_action_space
    if not core.ladder_mode:
        action = np.clip(np.ones(space.shape, dtype=np.float32), space.low, space.high)
        action[core.num_skus * core.num_channels :] = 0.0
        return np.tile(action, (num_envs, 1))
    ladder = core.price_ladder
    action = np.zeros(space.shape, dtype=np.int64)
    for c in range(core.num_channels):
        allowed = np.flatnonzero(core.ladder_floor_mask[c])
        pick = allowed[np.argmin(np.abs(ladder[allowed] - 1.0))]
        action[c : core.num_skus * core.num_channels : core.num_channels] = pick
    return np.tile(action, (num_envs, 1))


def timed(step, budget_s: float, min_steps: int) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """Run ``step`` until ``budget_s`` seconds and ``min_steps`` calls have passed; return (calls, seconds)."""
    step()  # warm-up
    calls, start = 0, time.perf_counter()
    while True:
        step()
        calls += 1
        elapsed = time.perf_counter() - start
        if calls >= min_steps and elapsed >= budget_s:
            return calls, elapsed


def single_env(config: str) -> tuple[gym.Env, np.ndarray, int]:
    """A single env, its list-price action and its horizon."""
    env = gym.make("paretochain/Pricing-v0", config=config)
    env.reset(seed=0)
    return env, list_price_action(env.unwrapped.core, 1)[0], env.unwrapped.core.horizon


def play(env: gym.Env, action: np.ndarray, horizon: int, seasons: int) -> None:
    """``seasons`` whole seasons, each from a reset."""
    for _ in range(seasons):
        env.reset()
        for _ in range(horizon):
            env.step(action)


def bench_single(config: str, budget_s: float) -> float:
    env, action, horizon = single_env(config)
    play(env, action, horizon, 1)  # a first season and reset before timing
    env.reset()
    state = {"t": 0}

    def step() -> None:
        env.step(action)
        state["t"] += 1
        if state["t"] == horizon:
            env.reset()
            state["t"] = 0

    calls, seconds = timed(step, budget_s, 50)
    return calls / seconds


def bench_batched(config: str, num_envs: int, device: str, budget_s: float) -> float:
    env = make_vec("paretochain/Pricing-v0", num_envs, device=device, config=config, tensors=True, check_actions=False)
    env.reset(seed=0)
    action = torch.as_tensor(list_price_action(env.core, num_envs), device=env.device)
    sync = torch.cuda.synchronize if env.device.type == "cuda" else (lambda: None)

    def step() -> None:
        env.step(action)

    calls, seconds = timed(step, budget_s, 10)
    sync()
    return calls * num_envs / seconds


def bench_sync(config: str, num_envs: int, budget_s: float) -> float:
    env = MOSyncVectorEnv([lambda: gym.make("paretochain/Pricing-v0", config=config) for _ in range(num_envs)])
    env.reset(seed=0)
    action = list_price_action(env.envs[0].unwrapped.core, num_envs)

    def step() -> None:
        env.step(action)

    calls, seconds = timed(step, budget_s, 3)
    return calls * num_envs / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the batched rows; single envs stay on the CPU)")
    parser.add_argument("--config", default="default", help="packaged Pricing config or YAML path")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 1024, 16384], help="batch sizes N")
    parser.add_argument(
        "--sync-max",
        type=int,
        default=1024,
        help="largest N run as a SyncVectorEnv; above it the rate of the largest one run is reused (marked *), as its per-env rate is flat in N",
    )
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per measurement (at least a few steps)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tune_allocator()  # batched CPU steps reuse large buffers (paretochain.envs.tune_allocator)

    print(
        f"Pricing-v0 throughput, config {args.config!r}, device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
    print(
        "load average at start: {:.2f} {:.2f} {:.2f} (a shared machine slows every row; compare the ratios)".format(
            *os.getloadavg()
        )
    )
    single = bench_single(args.config, args.budget)
    sync_one = bench_sync(args.config, 1, args.budget)
    rows = [("single env", 1, single, sync_one, "")]
    last_sync = rows[0][3]
    for n in args.sizes:
        batched = bench_batched(args.config, n, args.device, args.budget)
        mark = ""
        if n <= args.sync_max:
            last_sync = bench_sync(args.config, n, args.budget)
        else:
            mark = "*"
        rows.append((f"batched ({args.device})", n, batched, last_sync, mark))
        print(f"  measured N={n}", flush=True)
    print(f"{'mode':<20}{'N':>7}{'env-steps/s':>15}{'SyncVectorEnv':>15}{'ratio':>9}")
    for mode, n, fast, sync, mark in rows:
        print(f"{mode:<20}{n:>7}{fast:>15,.0f}{sync:>14,.0f}{mark or ' '}{fast / sync:>8.1f}x")
    if any(r[4] for r in rows):
        print(f"* SyncVectorEnv rate of N={args.sync_max} (its env-steps/s do not grow with N)")
    print(f"single env: {1e6 / single:,.0f} us per step through the Gymnasium view")
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
