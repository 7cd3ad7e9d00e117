"""Training throughput of the SB3 path and of MO-DQN, against SB3 PPO on its default vector env.

Every row is measured in the same run, on the same Warehouse config, so the ratios hold
on a noisy machine. Throughput is environment steps per second *while training*
(collection and updates together), from a timed ``learn`` call after a short warm-up:

- ``sb3 ppo, default vec env``: SB3 PPO on ``make_vec_env`` (a ``DummyVecEnv`` of N
  Monitor-wrapped single ``gymnasium.make`` envs, reward scalarised): the plain alternative,
  the denominator of every ratio;
- ``sb3 ppo, CoreVecEnv``: the same PPO on :class:`~paretochain.agents.sb3.CoreVecEnv`,
  which steps the N environments of the batched core in one call;
- ``sb3 dqn, CoreVecEnv``: SB3 DQN (Discrete configs only);
- ``mo-dqn, batched``: Envelope MO-DQN on the batched env, for several batch sizes
  (one gradient step of ``batch_size`` x ``num_preference_samples`` rows per vector step).

Also printed, without learning: ``env only`` rows, the stepping rate of the two vector
envs with fixed actions, so the share of the speed-up that comes from the environment is
visible.

Usage::

    python bench/bench_training_sb3.py                      # CPU, lost_sales
    python bench/bench_training_sb3.py --device cuda        # MO-DQN and SB3 networks on a GPU
    python bench/bench_training_sb3.py --config default --dqn-sizes 16 256
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import paretochain  # noqa: F401  (registers the environments)
from paretochain.agents.mo_dqn import MODQNAgent
from paretochain.agents.sb3 import CoreVecEnv, SB3Agent, make_default_sb3_vec_env, make_scalarization
from paretochain.envs import make_vec

ENV_ID = "paretochain/Warehouse-v0"


def ppo_hyper(num_envs: int) -> dict[str, object]:
    """The PPO settings used for every PPO row: 128 steps per env per rollout, 4 epochs, minibatch 256."""
    return {
        "algo": "ppo",
        "n_steps": 128,
        "batch_size": min(256, 128 * num_envs),
        "n_epochs": 4,
        "log_interval_steps": 10**9,
    }


def time_learn(learn, warmup: int, steps: int) -> float:  # type: ignore[no-untyped-def]
    """Env steps per second of ``learn(steps)`` after ``learn(warmup)``."""
    learn(warmup)
    start = time.perf_counter()
    done = learn(steps)
    return done / (time.perf_counter() - start)


def bench_sb3_default(config: str, num_envs: int, steps: int, device: str) -> float:
    """SB3 PPO on make_vec_env of the scalarised single env (DummyVecEnv)."""
    from stable_baselines3 import PPO

    probe = make_vec(ENV_ID, 1, config=config)
    scal = make_scalarization(probe.core.objectives.names)
    venv = make_default_sb3_vec_env(ENV_ID, num_envs, scal, config=config, seed=0)
    hyper = ppo_hyper(num_envs)
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=hyper["n_steps"],
        batch_size=hyper["batch_size"],
        n_epochs=hyper["n_epochs"],
        policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64])),
        device=device,
        seed=0,
        verbose=0,
    )

    def learn(n: int) -> int:
        before = model.num_timesteps
        model.learn(n, reset_num_timesteps=False)
        return model.num_timesteps - before

    return time_learn(learn, 128 * num_envs, steps)


def bench_sb3_agent(algo: str, config: str, num_envs: int, steps: int, device: str) -> float:
    env = make_vec(ENV_ID, num_envs, config=config, tensors=True, check_actions=False)
    hyper = (
        ppo_hyper(num_envs) if algo == "ppo" else {"algo": "dqn", "learning_starts": 1_000, "log_interval_steps": 10**9}
    )
    agent = SB3Agent(env, hyper, device=device)

    def learn(n: int) -> int:
        before = agent.num_env_steps
        agent.learn(n)
        return agent.num_env_steps - before

    return time_learn(learn, 128 * num_envs if algo == "ppo" else 2_000, steps)


def bench_mo_dqn(config: str, num_envs: int, steps: int, device: str) -> float:
    env = make_vec(ENV_ID, num_envs, device=device, config=config, tensors=True, check_actions=False)
    agent = MODQNAgent(env, {"learning_starts": 1_000, "log_interval_steps": 10**9}, device=device)

    def learn(n: int) -> int:
        before = agent.num_env_steps
        agent.learn(n)
        if device == "cuda":
            torch.cuda.synchronize()
        return agent.num_env_steps - before

    return time_learn(learn, max(2_000, 4 * num_envs), steps)


def bench_env_only(config: str, num_envs: int, seconds: float) -> tuple[float, float]:
    """Stepping rate (env steps/s) of DummyVecEnv vs CoreVecEnv with a fixed action, no learning."""
    probe = make_vec(ENV_ID, 1, config=config)
    scal = make_scalarization(probe.core.objectives.names)
    action = np.stack([probe.single_action_space.sample() for _ in range(num_envs)])
    rates = []
    for venv in (
        make_default_sb3_vec_env(ENV_ID, num_envs, scal, config=config, seed=0),
        CoreVecEnv(
            make_vec(ENV_ID, num_envs, config=config, tensors=True, check_actions=False), scal, check_actions=False
        ),
    ):
        venv.reset()
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            venv.step(action)
            calls += 1
        rates.append(calls * num_envs / (time.perf_counter() - start))
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="lost_sales", help="Warehouse config (default: lost_sales)")
    parser.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="where networks (and MO-DQN's env) run"
    )
    parser.add_argument("--num-envs", type=int, default=8, help="environments of the SB3 rows")
    parser.add_argument("--steps", type=int, default=8_192, help="timed env steps per SB3 row")
    parser.add_argument("--dqn-sizes", type=int, nargs="+", default=[16, 256], help="batch sizes of the MO-DQN rows")
    parser.add_argument(
        "--dqn-steps", type=int, default=8_192, help="timed env steps per MO-DQN row (scaled up with the batch)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 avoids oversubscription on small networks)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    discrete = make_vec(ENV_ID, 1, config=args.config).core.config.action.kind == "discrete"

    rows: list[tuple[str, int, float]] = []
    base = bench_sb3_default(args.config, args.num_envs, args.steps, args.device)
    rows.append(("sb3 ppo, default vec env (DummyVecEnv)", args.num_envs, base))
    rows.append(
        (
            "sb3 ppo, CoreVecEnv",
            args.num_envs,
            bench_sb3_agent("ppo", args.config, args.num_envs, args.steps, args.device),
        )
    )
    if discrete:
        rows.append(
            (
                "sb3 dqn, CoreVecEnv",
                args.num_envs,
                bench_sb3_agent("dqn", args.config, args.num_envs, args.steps, args.device),
            )
        )
    for n in args.dqn_sizes:
        steps = max(args.dqn_steps, 32 * n)
        rows.append((f"mo-dqn, batched env ({args.device})", n, bench_mo_dqn(args.config, n, steps, args.device)))

    env_default, env_core = bench_env_only(args.config, args.num_envs, seconds=3.0)

    print(
        f"\nTraining throughput on {ENV_ID} config={args.config!r}, device={args.device}, torch threads={args.threads}"
    )
    print(f"{'row':<44} {'envs':>6} {'env-steps/s':>12} {'x sb3 ppo default':>18}")
    print("-" * 84)
    for name, n, sps in rows:
        print(f"{name:<44} {n:>6} {sps:>12,.0f} {sps / base:>18.2f}")
    print(f"\n{'stepping only (fixed action, no learning)':<44} {'envs':>6} {'env-steps/s':>12} {'x DummyVecEnv':>18}")
    print("-" * 84)
    print(f"{'env only: DummyVecEnv, fixed action':<44} {args.num_envs:>6} {env_default:>12,.0f} {1.0:>18.2f}")
    print(
        f"{'env only: CoreVecEnv, fixed action':<44} {args.num_envs:>6} {env_core:>12,.0f} {env_core / env_default:>18.2f}"
    )


if __name__ == "__main__":
    main()
