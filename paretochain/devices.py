"""Checks of a requested torch device, before anything runs on it."""

from __future__ import annotations

import torch

from paretochain.errors import ConfigError

DEVICE_KINDS = ("auto", "cpu", "cuda")


def require_device(device: str | torch.device, name: str = "device") -> torch.device:
    """The torch device for ``device`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``), checked to exist here.

    ``auto`` is CUDA when torch sees a GPU, else the CPU. Raises ConfigError, naming
    ``name``, for another kind of device or a GPU that this machine does not have.
    """
    text = str(device)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(text)
    except (RuntimeError, TypeError):
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda"):
        raise ConfigError(f"{name}={text!r} is not a device paretochain runs on: use one of auto, cpu, cuda, cuda:N")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU only"
            raise ConfigError(
                f"{name}={text}: torch sees no GPU on this machine (torch {torch.__version__}, {build}); "
                "use cpu, or auto to take a GPU when there is one"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ConfigError(f"{name}={text}: this machine has {torch.cuda.device_count()} GPU(s)")
    return resolved
