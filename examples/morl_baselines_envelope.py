"""MORL-Baselines' Envelope Q-learning on paretochain environments, unmodified.

Envelope needs a ``Discrete`` action space and reads no action masks. Each family offers
a ``Discrete`` config: Warehouse ``lost_sales`` (``action.kind: discrete``, one SKU at one
node), Pricing ``dp_single_sku`` with ``action.kind: discrete`` (the joint index over the
price ladder), and Dispatch (always ``Discrete``). ``gymnasium.make`` builds the envs with
``invalid_action="fallback"`` (the default), so an exploratory action outside the mask is
replaced by the family's fallback and counted in ``info["actions_replaced"]`` instead of
raising.

Install the client first (``pip install "paretochain[morl]"`` or ``pip install
morl-baselines``), then::

    python examples/morl_baselines_envelope.py --steps 2000

The budget here is tiny; it shows the wiring, not a trained policy.
"""

from __future__ import annotations

import argparse
from typing import Any

import gymnasium as gym
import numpy as np

import paretochain.envs  # noqa: F401  (registers the paretochain/ ids with Gymnasium)

#: (env id, packaged config, overrides) of a Discrete-action setting of each family.
SETTINGS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "warehouse": ("paretochain/Warehouse-v0", "lost_sales", {"horizon": 52}),
    "pricing": ("paretochain/Pricing-v0", "dp_single_sku", {"action": {"kind": "discrete"}}),
    "dispatch": ("paretochain/Dispatch-v0", "default", {}),
}


def train_envelope(family: str, total_timesteps: int, seed: int = 0) -> Any:
    """Train Envelope on a family's Discrete setting (:data:`SETTINGS`) for ``total_timesteps`` steps.

    Returns the trained ``morl_baselines`` agent. A small network and replay buffer keep a tiny
    budget quick; nothing is logged to Weights & Biases.
    """
    from morl_baselines.multi_policy.envelope.envelope import Envelope

    env_id, config, overrides = SETTINGS[family]
    env = gym.make(env_id, config=config, **overrides)
    agent = Envelope(
        env,
        net_arch=[64, 64],
        batch_size=32,
        learning_starts=min(100, total_timesteps // 2),
        buffer_size=10_000,
        log=False,
        seed=seed,
        device="cpu",
    )
    agent.train(total_timesteps=total_timesteps, eval_env=None)
    return agent


def evaluate(agent: Any, family: str, weights: np.ndarray) -> np.ndarray:
    """The undiscounted vector return of one greedy episode of ``agent`` under preference ``weights``."""
    env_id, config, overrides = SETTINGS[family]
    _, _, vector_return, _ = agent.policy_eval(gym.make(env_id, config=config, **overrides), weights=weights, log=False)
    return np.asarray(vector_return)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="environment steps of training per family")
    parser.add_argument("--families", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    args = parser.parse_args()
    for family in args.families:
        agent = train_envelope(family, args.steps)
        k = agent.reward_dim
        objectives = agent.env.unwrapped.objectives.names
        returns = evaluate(agent, family, np.full(k, 1.0 / k))
        shown = ", ".join(f"{name} {value:.3g}" for name, value in zip(objectives, returns))
        print(f"{family}: equal weights, one greedy episode: {shown}")


if __name__ == "__main__":
    main()
