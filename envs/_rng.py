"""Counter-based random numbers for batched environment cores.

Every environment in a batch owns a 64-bit key (two 32-bit halves) and a step
counter. A random draw is a pure function of (key, counter, draw site, element
index), computed with a 32-bit integer hash on int64 tensors. Consequences:

- an environment's episode depends only on its own seed, never on how many other
  environments share its batch or where it sits in it (single/batched parity);
- there is no generator object to carry between devices: the same code runs on
  the CPU or a GPU and keeps the data where it is.

All arithmetic stays below 2**63 (32-bit values times multipliers below 2**31),
so no signed overflow happens on any backend.
"""

from __future__ import annotations

import torch

_MASK32 = 0xFFFFFFFF
_M1 = 0x21F0AAAD  # multipliers of a low-bias 32-bit integer hash (both < 2**31)
_M2 = 0x735A2D97
_GOLDEN = 0x61C88647  # 2**32 / golden ratio, below 2**31
_TWO_POW_24 = float(1 << 24)


def mix32(x: torch.Tensor) -> torch.Tensor:
    """Hash int64 values in [0, 2**32) to int64 values in [0, 2**32)."""
    x = x ^ (x >> 16)
    x = (x * _M1) & _MASK32
    x = x ^ (x >> 15)
    x = (x * _M2) & _MASK32
    return x ^ (x >> 15)


def split_seed(seed: int) -> tuple[int, int]:
    """Split a non-negative integer seed into two 32-bit key halves."""
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return seed & _MASK32, (seed >> 32) & _MASK32


def derive_key(key_lo: torch.Tensor, key_hi: torch.Tensor) -> torch.Tensor:
    """Fold the two key halves into one 32-bit stream key per environment."""
    return mix32(key_lo ^ mix32(key_hi + _GOLDEN))


def next_episode_seed(key_lo: torch.Tensor, key_hi: torch.Tensor, episode: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Key halves for the next episode of an environment reset without a seed."""
    lo = mix32(key_lo ^ mix32((episode * _GOLDEN) & _MASK32))
    hi = mix32(key_hi ^ mix32(lo + 0x2545F491))
    return lo, hi


class DrawSite:
    """One place in the dynamics that draws uniforms of a fixed per-env shape.

    Args:
        site_id: small integer distinguishing this site from the others of the core.
        shape: per-environment shape of the draw (excluding the batch dimension).
        device: where the precomputed element offsets live.
    """

    def __init__(self, site_id: int, shape: tuple[int, ...], device: torch.device) -> None:
        numel = 1
        for n in shape:
            numel *= n
        index = torch.arange(numel, dtype=torch.int64, device=device).reshape(shape)
        self.shape = shape
        self._offsets = mix32((index + site_id * 0x9E3779B) & _MASK32).unsqueeze(0)

    def uniform(self, step_key: torch.Tensor) -> torch.Tensor:
        """Uniforms in (0, 1), float32, shape (batch, *shape), from per-env step keys (batch,)."""
        view = step_key.view((-1,) + (1,) * len(self.shape))
        bits = mix32(view ^ self._offsets) >> 8
        return (bits.to(torch.float32) + 0.5) / _TWO_POW_24


def step_keys(stream_key: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
    """Per-env key for one step: hash of the stream key and the step counter."""
    return mix32(stream_key ^ mix32((counter * _GOLDEN + 0x3C6EF372) & _MASK32))
