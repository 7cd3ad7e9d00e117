"""The allocator setting that batched CPU views apply: on by default on glibc, off when the user says so."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "from paretochain.envs._allocator import tune_allocator; print(tune_allocator())"


def probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "PARETOCHAIN_MALLOC_TUNING"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
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
