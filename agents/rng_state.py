"""The host's random generators (torch CPU, numpy's global, Python's) as tensors and plain data.

Checkpoints hold nothing else (they are read with ``torch.load(weights_only=True)``), so
numpy's state, a tuple around an array, is stored as a dict with the key as a tensor.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from paretochain.errors import PolicyFileError


def host_rng_state() -> dict[str, Any]:
    """The states of torch's CPU generator, numpy's global generator and Python's ``random``."""
    numpy_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": str(numpy_state["bit_generator"]),
            "key": torch.from_numpy(np.asarray(numpy_state["state"]["key"], dtype=np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "python": random.getstate(),
    }


def set_host_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`host_rng_state` returned (a malformed entry raises PolicyFileError)."""
    try:
        numpy_state = state["numpy"]
        torch.set_rng_state(state["torch"])
        np.random.set_state(
            {
                "bit_generator": numpy_state["bit_generator"],
                "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": int(numpy_state["pos"])},
                "has_gauss": int(numpy_state["has_gauss"]),
                "gauss": float(numpy_state["gauss"]),
            }
        )
        random.setstate(state["python"])
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise PolicyFileError(f"the random generators' state is malformed: {type(exc).__name__}: {exc}") from None
