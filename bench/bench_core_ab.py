"""A/B of environment throughput between two checkouts, measured in alternation.

Each measurement runs in a fresh process of the given Python (each checkout installed
editable in its own virtual environment), so the two versions never share a process; the
versions take turns, round after round, so that a busy machine slows both alike. The table
gives the median of the rounds and the ratio B / A.

Rows: each family's default config, the single Gymnasium env (``gymnasium.make``, its
eager step: ``PARETOCHAIN_STEP_GRAPH=0`` for versions that had a traced one) and the batched
core at N = 1024 and 16384 (tensor actions, no per-step checks). Actions are the first
allowed choice of each dimension (masks read every step) or zeros for Box spaces.

Every measurement reports three rates: env-steps per second of wall-clock time, env-steps
per second of the process's CPU time (``time.process_time``, all its threads), and the CPU-time
rate of its fastest burst (500 steps of the single env, 5 batched steps). On a machine that
other jobs share, the wall-clock rate moves with their load; the CPU-time rate counts only the
work of the process itself, and is the steadier of the two with ``--threads 1``. The last
column compares the fastest burst of all rounds of each version: the rate of a step when
nothing else interrupts it, the steadiest of the three when rows move by several percent
between runs.

Usage::

    git worktree add /tmp/ab-old <commit> && cp -a .venv /tmp/ab-old/.venv
    (cd /tmp/ab-old && .venv/bin/python -m pip install -e . --no-deps --no-build-isolation)
    python bench/bench_core_ab.py --a /tmp/ab-old/.venv/bin/python --b .venv/bin/python --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess

MEASURE = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(int(sys.argv[4]))
import gymnasium as gym
import paretochain
from paretochain.envs import make_vec
try:
    from paretochain.envs import tune_allocator
except ImportError:
    from paretochain.envs._allocator import tune_allocator
tune_allocator()
env_id, n, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
BURST_STEPS, BATCHED_BURST_STEPS = 500, 5

def first_allowed(space, mask):
    if isinstance(space, gym.spaces.Discrete):
        return mask.float().argmax(-1) if mask is not None else torch.zeros(mask.shape[0], dtype=torch.int64)
    nvec = [int(v) for v in space.nvec]
    parts = torch.split(mask.float(), nvec, dim=-1)
    return torch.stack([p.argmax(-1) for p in parts], dim=-1)

if n == 0:  # the single Gymnasium env
    env = gym.make(env_id)
    space = env.action_space
    obs, info = env.reset(seed=0)
    steps, start, cpu = 0, time.perf_counter(), time.process_time()
    burst, burst_cpu, best = 0, cpu, 0.0
    while time.perf_counter() - start < seconds:
        mask = info.get("action_mask")
        if isinstance(space, gym.spaces.Box):
            action = np.zeros(space.shape, dtype=np.float32)
        elif mask is None:
            action = space.sample() * 0
        else:
            action = first_allowed(space, torch.as_tensor(np.asarray(mask))[None])[0].numpy()
        obs, reward, term, trunc, info = env.step(action)
        steps += 1
        if term or trunc:
            obs, info = env.reset()
        burst += 1
        if burst == BURST_STEPS:
            now = time.process_time()
            best, burst, burst_cpu = max(best, burst / max(now - burst_cpu, 1e-9)), 0, now
    print(json.dumps([steps / (time.perf_counter() - start), steps / (time.process_time() - cpu), best]))
else:
    vec = make_vec(env_id, n, device="cpu", tensors=True, check_actions=False)
    core = vec.core
    space = core.single_action_space
    core.reset(seeds=list(range(n)))
    fixed = None
    if isinstance(space, gym.spaces.Box):
        fixed = torch.zeros((n, *space.shape))
    def act():
        if fixed is not None:
            return fixed
        mask = core.action_masks()
        if mask is None:
            shape = (n,) if isinstance(space, gym.spaces.Discrete) else (n, len(space.nvec))
            return torch.zeros(shape, dtype=torch.int64)
        return first_allowed(space, mask)
    steps, start, cpu = 0, time.perf_counter(), time.process_time()
    burst, burst_cpu, best = 0, cpu, 0.0
    while time.perf_counter() - start < seconds:
        out = core.step(act(), check=False)
        steps += n
        done = out.terminated | out.truncated
        if bool(done.all()):
            core.reset()
        elif bool(done.any()):
            core.reset(mask=done)
        burst += 1
        if burst == BATCHED_BURST_STEPS:
            now = time.process_time()
            best, burst, burst_cpu = max(best, burst * n / max(now - burst_cpu, 1e-9)), 0, now
    print(json.dumps([steps / (time.perf_counter() - start), steps / (time.process_time() - cpu), best]))
"""

FAMILIES = ("Warehouse", "Pricing", "Dispatch")
SIZES = (0, 1024, 16384)


def measure(python: str, env_id: str, n: int, seconds: float, threads: int) -> tuple[float, float, float]:
    """Env-steps per second of wall-clock time, of the process's CPU time, and of CPU time in its fastest burst,
    in a fresh process of ``python``."""
    env = dict(os.environ, PARETOCHAIN_STEP_GRAPH="0")
    out = subprocess.run(
        [python, "-c", MEASURE, env_id, str(n), str(seconds), str(threads)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    wall, cpu, burst = json.loads(out.stdout.strip().splitlines()[-1])
    return float(wall), float(cpu), float(burst)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="Python of version A (the commit before)")
    parser.add_argument("--b", required=True, help="Python of version B (the change)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per row")
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per measurement")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES, help="families to measure")
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES), help="batch sizes (0: the single env)")
    args = parser.parse_args()
    print(
        "| family (default config) | N | A env-steps/s | B env-steps/s | B / A | A per CPU s | B per CPU s "
        "| B / A (CPU) | B / A (best burst) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for family in args.families:
        env_id = f"paretochain/{family}-v0"
        for n in args.sizes:
            a: list[tuple[float, float, float]] = []
            b: list[tuple[float, float, float]] = []
            for r in range(args.rounds):
                for runs, python in [(a, args.a), (b, args.b)][:: 1 if r % 2 == 0 else -1]:
                    runs.append(measure(python, env_id, n, args.seconds, args.threads))
            wall_a, wall_b = (statistics.median(x[0] for x in runs) for runs in (a, b))
            cpu_a, cpu_b = (statistics.median(x[1] for x in runs) for runs in (a, b))
            burst_a, burst_b = (max(x[2] for x in runs) for runs in (a, b))
            label = "single env" if n == 0 else str(n)
            print(
                f"| {family}-v0 | {label} | {wall_a:,.0f} | {wall_b:,.0f} | {wall_b / wall_a:.2f} "
                f"| {cpu_a:,.0f} | {cpu_b:,.0f} | {cpu_b / cpu_a:.2f} | {burst_b / burst_a:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
