"""Shared fixtures: where the real data lives, and a CPU-only torch setting for stable timings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data beside the project (CVRPLIB, Solomon, retail); tests needing it skip without it."""
    if not SHARED_DATA.exists():
        pytest.skip(f"real data folder {SHARED_DATA} is not present")
    return SHARED_DATA
