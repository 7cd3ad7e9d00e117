"""Decision steps per second of ``paretochain/Dispatch-v0`` on 100-customer instances.

Compares, in one run: the single Gymnasium env, a ``gymnasium.vector.SyncVectorEnv`` of single
envs (MO-Gymnasium's ``MOSyncVectorEnv``, the SyncVectorEnv that keeps vector rewards), and the batched view (one core stepping N environments) at several batch sizes. Every
setup plays uniformly random allowed moves (masked random policy) and resets finished episodes.
A "step" is one dispatch decision of one environment. The last column compares with the
~900 steps/s of OR-Gym's VehicleRouting-v0 on a 2-core machine. The batched rows skip the
per-step action check (``check_actions=False``): their actions come from the masks by construction.

    python bench/bench_dispatch.py                 # CPU, about 1-2 minutes
    python bench/bench_dispatch.py --device cuda   # the batched rows on a GPU
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from mo_gymnasium.wrappers.vector import MOSyncVectorEnv

import paretochain.envs  # noqa: F401  (registers the ids)
from paretochain.envs import make_vec, tune_allocator
from paretochain.envs.dispatch import DispatchEnv

OR_GYM_STEPS_PER_S = 900.0

CONFIG = {
    "generator": {"num_customers": 100, "area_km": 30.0, "placement": "mixed"},
    "num_vehicles": 10,
    "capacity_units": 100,
    "shift_length_min": 600,
    "speed_km_per_min": 0.6,
}


def bench_single(seconds: float) -> tuple[float, float]:
    env = DispatchEnv(CONFIG)
    rng = np.random.default_rng(0)
    _, info = env.reset(seed=0)
    steps, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            action = rng.choice(np.flatnonzero(info["action_mask"]))
            _, _, terminated, truncated, info = env.step(action)
            steps += 1
            if terminated or truncated:
                _, info = env.reset()
    return steps / (time.perf_counter() - start), steps / (time.process_time() - cpu)


def bench_sync_vector(num_envs: int, seconds: float) -> tuple[float, float]:
    env = MOSyncVectorEnv([lambda: DispatchEnv(CONFIG) for _ in range(num_envs)])
    rng = np.random.default_rng(0)
    _, info = env.reset(seed=0)
    steps, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        for _ in range(20):
            masks = info["action_mask"]
            actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
            _, _, _, _, info = env.step(actions)
            steps += num_envs
    return steps / (time.perf_counter() - start), steps / (time.process_time() - cpu)


def bench_batched(num_envs: int, device: str, seconds: float) -> tuple[float, float]:
    env = make_vec("paretochain/Dispatch-v0", num_envs, device=device, config=CONFIG, tensors=True, check_actions=False)
    generator = torch.Generator(device=env.device).manual_seed(0)
    with torch.inference_mode():
        env.reset(seed=0)
        mask = env.action_masks()

        def one_step() -> torch.Tensor:
            scores = torch.rand(mask.shape, generator=generator, device=env.device).masked_fill_(~mask, -1.0)
            env.step(scores.argmax(1))
            return env.action_masks()

        for _ in range(5):  # warm-up
            mask = one_step()
        if env.device.type == "cuda":
            torch.cuda.synchronize()
        steps, start, cpu = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - start < seconds:
            for _ in range(10):
                mask = one_step()
                steps += num_envs
        if env.device.type == "cuda":
            torch.cuda.synchronize()
    return steps / (time.perf_counter() - start), steps / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="device of the batched rows: cpu or cuda")
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time per row")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 1024], help="batch sizes of the batched view")
    parser.add_argument("--sync-envs", type=int, default=8, help="single envs in the SyncVectorEnv")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 is steadiest on a shared 2-core machine)"
    )
    args = parser.parse_args()
    tune_allocator()  # batched CPU steps reuse large buffers (paretochain.envs.tune_allocator)
    torch.set_num_threads(args.threads)

    rows: list[tuple[str, str, tuple[float, float]]] = []
    single = bench_single(args.seconds)
    rows.append(("single env (gymnasium.Env)", "cpu", single))
    rows.append(
        (f"SyncVectorEnv of {args.sync_envs} single envs", "cpu", bench_sync_vector(args.sync_envs, args.seconds))
    )
    for n in args.sizes:
        rows.append((f"batched view, N={n}", args.device, bench_batched(n, args.device, args.seconds)))

    print(
        f"Dispatch-v0, {CONFIG['generator']['num_customers']} customers, {CONFIG['num_vehicles']} vehicles, masked random policy; "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    )
    print(
        "steps/s = decisions per wall-clock second; cpu steps/s = per second of this process's CPU time (steadier when the machine is shared)"
    )
    print(
        f"{'setup':<34}{'device':>7}{'steps/s':>11}{'x single':>10}{'x OR-Gym':>10}{'cpu steps/s':>13}{'x single':>10}"
    )
    for name, device, (wall, cpu) in rows:
        print(
            f"{name:<34}{device:>7}{wall:>11,.0f}{wall / single[0]:>10.1f}{wall / OR_GYM_STEPS_PER_S:>10.1f}"
            f"{cpu:>13,.0f}{cpu / single[1]:>10.1f}"
        )


if __name__ == "__main__":
    main()
