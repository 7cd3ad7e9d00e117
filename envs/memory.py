"""Refuse, before anything is built, a batch whose state cannot fit in the device's memory.

Every family's config estimates the bytes a batch of its environments needs
(``config.memory_estimate(num_envs)``: the state, the observation and the
largest working arrays of a step, from the config's sizes). The estimate errs
low, so a refusal means the batch cannot run; a batch that passes may still
need more. ``PARETOCHAIN_MEMORY_CHECK=0`` turns the check off.
"""

from __future__ import annotations

import os
from typing import Protocol

import torch

from paretochain.errors import ConfigError


class SizedConfig(Protocol):
    """A config that can estimate the memory of a batch of its environments."""

    def memory_estimate(self, num_envs: int) -> int: ...


def available_bytes(device: torch.device) -> int | None:
    """Memory free for new tensors on ``device``: CUDA's free memory, the host's available memory; None if unknown."""
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return None
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    """``n`` bytes in binary units, e.g. ``'12.3 GiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def check_memory(config: SizedConfig, num_envs: int, device: torch.device, env_id: str = "") -> None:
    """Raise :class:`~paretochain.errors.ConfigError` when ``num_envs`` environments of ``config`` cannot fit.

    The message gives the estimate and the memory available, so the user can shrink the
    batch (``num_envs``) or the instance (SKUs, warehouses, orders...).
    """
    if os.environ.get("PARETOCHAIN_MEMORY_CHECK", "1") == "0":
        return
    free = available_bytes(device)
    if free is None:
        return
    need = config.memory_estimate(num_envs)
    if need > free:
        per_env = config.memory_estimate(1)
        what = f"{env_id} " if env_id else ""
        raise ConfigError(
            f"{what}with num_envs={num_envs} needs at least {format_bytes(need)} "
            f"(about {format_bytes(per_env)} for one environment), but only {format_bytes(free)} is available "
            f"on {device}: use fewer environments or a smaller instance (PARETOCHAIN_MEMORY_CHECK=0 skips this check)"
        )
