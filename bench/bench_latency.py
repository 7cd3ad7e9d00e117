"""Inference latency of exported policies on the CPU: ``policy.pt`` at batch 1 and 1024, p50 and p99.

An MO-PPO agent (default networks, briefly trained so that the normaliser holds real
statistics) is exported with :func:`~paretochain.agents.export.export_policy`; the file is
loaded the production way (``torch.jit.load``, nothing else) and called on random
observations, one call per timing. Rows for the ``torch.export`` program
(``policy.pt2``) and the eager module are measured in the same run for comparison.

Usage::

    python bench/bench_latency.py                       # Warehouse 'default' (MultiDiscrete)
    python bench/bench_latency.py --config lost_sales --threads 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import paretochain  # noqa: F401  (registers the environments)
from paretochain.agents.export import export_policy
from paretochain.agents.mo_ppo import MOPPO
from paretochain.envs import make_vec

ENV_ID = "paretochain/Warehouse-v0"


def latencies(fn, inputs: tuple[torch.Tensor, ...], calls: int, warmup: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Wall time of each of ``calls`` calls, in microseconds."""
    with torch.no_grad():
        for _ in range(warmup):
            fn(*inputs)
        out = np.empty(calls)
        for i in range(calls):
            start = time.perf_counter_ns()
            fn(*inputs)
            out[i] = (time.perf_counter_ns() - start) / 1e3
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="default", help="Warehouse config (default: 'default', MultiDiscrete)")
    parser.add_argument("--calls", type=int, default=2000, help="timed calls at batch 1 (batch 1024: a fifth)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--device", default="cpu", choices=["cpu"], help="inference device (CPU only: the production target)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    env = make_vec(ENV_ID, 64, config=args.config, tensors=True, check_actions=False)
    agent = MOPPO(env, {"num_steps": 16})
    agent.learn(64 * 16)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_policy(agent, Path(tmp))
        scripted = torch.jit.load(str(path))
        program = torch.export.load(str(path.with_suffix(".pt2"))).module()
        eager = agent.export_module()
        size_kb = path.stat().st_size / 1024

        rows = []
        for batch in (1, 1024):
            obs = env.core.observe()[:1].repeat(batch, 1) * (1 + 0.1 * torch.rand(batch, agent.obs_dim))
            pref = torch.distributions.Dirichlet(torch.ones(agent.k)).sample((batch,))
            mask = torch.ones(batch, agent.mask_dim, dtype=torch.bool)
            calls = args.calls if batch == 1 else max(50, args.calls // 5)
            for name, fn in (
                ("policy.pt (TorchScript)", scripted),
                ("policy.pt2 (torch.export)", program),
                ("eager module", eager),
            ):
                t = latencies(fn, (obs, pref, mask), calls, warmup=50)
                rows.append(
                    (name, batch, np.percentile(t, 50), np.percentile(t, 99), batch / (np.percentile(t, 50) / 1e6))
                )

    print(
        f"\nInference latency on CPU, {ENV_ID} config={args.config!r} (obs_dim {agent.obs_dim}, {agent.k} objectives, "
        f"action {env.single_action_space}), torch {torch.__version__}, threads={args.threads}, policy.pt {size_kb:.0f} KiB"
    )
    print(f"{'file':<28} {'batch':>6} {'p50 (us)':>10} {'p99 (us)':>10} {'decisions/s at p50':>20}")
    print("-" * 78)
    for name, batch, p50, p99, rate in rows:
        print(f"{name:<28} {batch:>6} {p50:>10.1f} {p99:>10.1f} {rate:>20,.0f}")


if __name__ == "__main__":
    main()
