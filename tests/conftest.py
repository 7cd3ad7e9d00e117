"""Shared fixtures: where the real data lives, and a CPU-only torch setting for stable timings."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch

from paretochain.envs import make_vec
from paretochain.envs.views import BatchedVectorEnv

torch.set_num_threads(1)
# every env built in the tests checks that its observations and rewards are finite (paretochain.envs.checks)
os.environ.setdefault("PARETOCHAIN_CHECK_FINITE", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BENCH = Path(__file__).resolve().parents[1] / "bench"


def load_bench_script(name: str) -> ModuleType:
    """The module of ``bench/<name>.py`` (the bench folder is not a package), to test its helpers."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def checked_masked_env() -> Callable[[str, int], BatchedVectorEnv]:
    """``make(env_id, num_envs)``: a tensor-mode batched env whose core checks every action it steps.

    Agents step the core with ``check=False``; here the check runs anyway, so a masked-out
    action raises :class:`~paretochain.errors.ActionError` instead of passing unnoticed.
    """

    def make(env_id: str, num_envs: int) -> BatchedVectorEnv:
        env = make_vec(env_id, num_envs, tensors=True, check_actions=False)
        unchecked_step = env.core.step

        def checked_step(action: torch.Tensor, check: bool = False):  # type: ignore[no-untyped-def]
            return unchecked_step(action, check=True)

        env.core.step = checked_step  # type: ignore[method-assign]
        return env

    return make


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data beside the project (CVRPLIB, Solomon, retail); tests needing it skip without it."""
    if not SHARED_DATA.exists():
        pytest.skip(f"real data folder {SHARED_DATA} is not present")
    return SHARED_DATA


#: MO-PPO hyperparameters for Dispatch with a small attention encoder over the order slots (fast in tests).
DISPATCH_ATTENTION = {
    "encoder": "attention",
    "attention": {
        "slots_block": "orders",
        "valid_block": "order_valid",
        "embed_dim": 32,
        "num_heads": 2,
        "num_layers": 1,
    },
}
