"""The allocator setting a process opts into with ``paretochain.envs.tune_allocator()``: applied on glibc when
called, off when the user says so, and never a side effect of building or stepping an environment."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "from paretochain.envs import tune_allocator; print(tune_allocator())"
#: builds and steps a batched CPU view, then prints whether the allocator was touched (None: never asked)
UNTOUCHED = (
    "import torch; from paretochain.envs import make_vec, _allocator; "
    "env = make_vec('paretochain/Warehouse-v0', 4); env.reset(seed=0); "
    "env.step(env.action_space.sample()); print(_allocator._applied)"
)


def probe(code: str = PROBE, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "PARETOCHAIN_MALLOC_TUNING"}
    result = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="the allocator setting uses glibc's mallopt; other C libraries are left alone",
)
def test_allocator_tuning_applies_on_glibc() -> None:
    assert probe() == "True"


def test_allocator_tuning_is_skipped_when_opted_out_or_when_the_user_tunes_malloc() -> None:
    assert probe(PARETOCHAIN_MALLOC_TUNING="0") == "False"
    assert probe(MALLOC_ARENA_MAX="2") == "False"


def test_building_and_stepping_a_batched_view_leaves_the_allocator_alone() -> None:
    assert probe(UNTOUCHED) == "None"
