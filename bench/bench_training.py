"""Training throughput (env-steps/s) of MO-PPO on the batched env, against SB3 PPO on its default vector env.

Every row trains on the same Warehouse config in the same run, so ratios hold on a
noisy machine. Throughput is environment steps per second *while training*
(collection and updates together), from a timed ``learn`` call after a warm-up call
of the same size.

Rows (a table: add a row by appending a ``Row`` to ``rows`` in ``main``):

- ``sb3 ppo, default vec env``: Stable-Baselines3 PPO on ``make_vec_env`` (a
  ``DummyVecEnv`` of single envs, reward scalarised with equal weights), 8 envs,
  ``n_steps=128``, minibatch 256, 4 epochs, [64, 64] networks: the plain
  alternative and the denominator of every ratio;
- ``mo-ppo, batched env``: our MO-PPO (default :class:`MOPPOConfig`: 32 steps per env
  per rollout, 4 minibatches, 4 epochs, [64, 64] networks, Dirichlet preferences),
  for several batch sizes, on ``--device``;
- ``sb3 ppo, CoreVecEnv``: the same SB3 PPO on :class:`~paretochain.agents.sb3.CoreVecEnv`
  (the N environments of the batched core stepped in one call), through ``SB3Agent``;
- ``mo-dqn, batched env``: Envelope MO-DQN (default :class:`MODQNConfig`: one gradient
  step of 64 transitions x 4 sampled preferences per vector step), for several batch
  sizes, on ``--device``.

Usage::

    python bench/bench_training.py                          # CPU, lost_sales
    python bench/bench_training.py --device cuda --mo-ppo-sizes 4096 16384 65536
    python bench/bench_training.py --config default --skip-sb3
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

import paretochain  # noqa: F401  (registers the environments)
from paretochain.agents.mo_ppo import MOPPO
from paretochain.envs import make_vec

ENV_ID = "paretochain/Warehouse-v0"


@dataclass
class Row:
    """One measured line of the table."""

    name: str
    num_envs: int
    device: str
    steps_per_s: float


def timed(learn: Callable[[int], int], warmup: int, steps: int, device: str) -> float:
    """Env steps per second of ``learn(steps)`` after ``learn(warmup)`` (``learn`` returns the steps it ran)."""
    learn(warmup)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    done = learn(steps)
    if device == "cuda":
        torch.cuda.synchronize()
    return done / (time.perf_counter() - start)


def bench_sb3_ppo_default(config: str, num_envs: int, steps: int, device: str) -> float:
    """SB3 PPO on ``make_vec_env`` of the scalarised single env (``DummyVecEnv``)."""
    from stable_baselines3 import PPO

    try:
        from paretochain.agents.sb3 import make_default_sb3_vec_env, make_scalarization

        names = make_vec(ENV_ID, 1, config=config).core.objectives.names
        venv = make_default_sb3_vec_env(ENV_ID, num_envs, make_scalarization(names), config=config, seed=0)
    except ImportError:  # the SB3 adapters are not there: scalarise with a plain wrapper
        import gymnasium as gym
        import numpy as np
        from stable_baselines3.common.env_util import make_vec_env

        class EqualWeights(gym.Wrapper):
            def step(self, action):  # type: ignore[no-untyped-def]
                obs, reward, terminated, truncated, info = self.env.step(action)
                return obs, float(np.mean(reward)), terminated, truncated, info

        venv = make_vec_env(lambda: EqualWeights(gym.make(ENV_ID, config=config)), n_envs=num_envs, seed=0)
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=128,
        batch_size=256,
        n_epochs=4,
        policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64])),
        device=device,
        seed=0,
        verbose=0,
    )

    def learn(n: int) -> int:
        before = model.num_timesteps
        model.learn(n, reset_num_timesteps=False)
        return model.num_timesteps - before

    return timed(learn, 128 * num_envs, steps, device)


def bench_mo_ppo(config: str, num_envs: int, updates: int, device: str) -> float:
    """MO-PPO with its default hyperparameters on a batched env of ``num_envs``."""
    env = make_vec(ENV_ID, num_envs, device=device, config=config, tensors=True, check_actions=False)
    agent = MOPPO(env, {"log_interval": 10**6}, device=device)
    per_update = agent.config.num_steps * num_envs

    def learn(n: int) -> int:
        before = agent.global_step
        agent.learn(n)
        return agent.global_step - before

    return timed(learn, per_update, per_update * updates, device)


def bench_sb3_ppo_core(config: str, num_envs: int, steps: int, device: str) -> float:
    """The SB3 PPO of the default row (same hyperparameters) on the batched core through ``CoreVecEnv``."""
    from paretochain.agents.sb3 import SB3Agent

    env = make_vec(ENV_ID, num_envs, config=config, tensors=True, check_actions=False)
    hyper = {
        "algo": "ppo",
        "n_steps": 128,
        "batch_size": 256,
        "n_epochs": 4,
        "norm_obs": False,
        "norm_return": False,
        "log_interval_steps": 10**9,
    }
    agent = SB3Agent(env, hyper, device=device)

    def learn(n: int) -> int:
        before = agent.num_env_steps
        agent.learn(n)
        return agent.num_env_steps - before

    return timed(learn, 128 * num_envs, steps, device)


def bench_mo_dqn(config: str, num_envs: int, steps: int, device: str) -> float:
    """Envelope MO-DQN with its default hyperparameters on a batched env of ``num_envs``."""
    from paretochain.agents.mo_dqn import MODQNAgent

    env = make_vec(ENV_ID, num_envs, device=device, config=config, tensors=True, check_actions=False)
    agent = MODQNAgent(env, {"learning_starts": 1_000, "log_interval_steps": 10**9}, device=device)

    def learn(n: int) -> int:
        before = agent.num_env_steps
        agent.learn(n)
        return agent.num_env_steps - before

    return timed(learn, max(2_000, 4 * num_envs), steps, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="lost_sales", help="Warehouse config (default: lost_sales)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where MO-PPO (env and networks) runs")
    parser.add_argument("--sb3-envs", type=int, default=8, help="environments of the SB3 PPO row")
    parser.add_argument("--sb3-steps", type=int, default=8_192, help="timed env steps of the SB3 PPO row")
    parser.add_argument(
        "--mo-ppo-sizes",
        type=int,
        nargs="+",
        default=None,
        help="batch sizes of the MO-PPO rows (default: 256 1024 4096 on CPU, 4096 16384 65536 on CUDA)",
    )
    parser.add_argument("--mo-ppo-updates", type=int, default=4, help="timed updates per MO-PPO row")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 avoids oversubscription with small networks)"
    )
    parser.add_argument("--skip-sb3", action="store_true", help="leave out the SB3 row (no ratios)")
    parser.add_argument(
        "--mo-dqn-sizes",
        type=int,
        nargs="*",
        default=None,
        help="batch sizes of the MO-DQN rows (default: 16 256 1024 on CPU, 1024 4096 16384 on CUDA; none to skip)",
    )
    parser.add_argument(
        "--mo-dqn-steps", type=int, default=8_192, help="timed env steps per MO-DQN row (at least 32 vector steps)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = args.mo_ppo_sizes or ([4096, 16384, 65536] if args.device == "cuda" else [256, 1024, 4096])

    rows: list[Row] = []
    if not args.skip_sb3:
        rows.append(
            Row(
                "sb3 ppo, default vec env (DummyVecEnv)",
                args.sb3_envs,
                "cpu",
                bench_sb3_ppo_default(args.config, args.sb3_envs, args.sb3_steps, "cpu"),
            )
        )
    for n in sizes:
        rows.append(
            Row("mo-ppo, batched env", n, args.device, bench_mo_ppo(args.config, n, args.mo_ppo_updates, args.device))
        )
    if not args.skip_sb3:
        rows.append(
            Row(
                "sb3 ppo, CoreVecEnv",
                args.sb3_envs,
                "cpu",
                bench_sb3_ppo_core(args.config, args.sb3_envs, args.sb3_steps, "cpu"),
            )
        )
    dqn_sizes = (
        args.mo_dqn_sizes
        if args.mo_dqn_sizes is not None
        else ([1024, 4096, 16384] if args.device == "cuda" else [16, 256, 1024])
    )
    for n in dqn_sizes:
        rows.append(
            Row(
                "mo-dqn, batched env",
                n,
                args.device,
                bench_mo_dqn(args.config, n, max(args.mo_dqn_steps, 32 * n), args.device),
            )
        )

    base = rows[0].steps_per_s if not args.skip_sb3 else None
    print(
        f"\nTraining throughput on {ENV_ID} config={args.config!r}, torch threads={args.threads}, torch {torch.__version__}"
    )
    if args.device == "cuda":
        print(f"GPU: {torch.cuda.get_device_name()}")
    print(f"{'row':<42} {'envs':>7} {'device':>7} {'env-steps/s':>13} {'x sb3 ppo default':>18}")
    print("-" * 91)
    for r in rows:
        ratio = f"{r.steps_per_s / base:>18.1f}" if base else f"{'-':>18}"
        print(f"{r.name:<42} {r.num_envs:>7} {r.device:>7} {r.steps_per_s:>13,.0f} {ratio}")


if __name__ == "__main__":
    main()
