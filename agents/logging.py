"""Where training statistics go: a tiny ``Logger`` protocol and two implementations.

Agents call ``logger.scalar(tag, value, step)`` once per logging interval (never
per environment step). Tags follow one scheme so that runs compare side by side:

- ``charts/SPS``: environment steps per second since the previous log;
- ``charts/episode_return/<objective>``: mean undiscounted return of the episodes
  finished since the previous log, per objective;
- ``charts/scalarised_return``: the same episodes' returns weighted by their preference;
- ``losses/<name>``: optimisation figures (``policy``, ``value``, ``entropy``,
  ``approx_kl``, ``clip_fraction``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class Logger(Protocol):
    """Receives scalar statistics during training."""

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Record ``value`` under ``tag`` at environment step ``step``."""
        ...


class NullLogger:
    """A logger that drops everything (the default when none is given)."""

    def scalar(self, tag: str, value: float, step: int) -> None:
        return None

    def close(self) -> None:
        return None


class TensorBoardLogger:
    """Writes scalars to TensorBoard event files in ``log_dir``.

    Args:
        log_dir: folder of the event files (created if missing), e.g. ``runs/<name>/tb``.
        flush_secs: how often pending events are written to disk, in seconds.
    """

    def __init__(self, log_dir: str | Path, flush_secs: int = 10) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(log_dir=str(self.log_dir), flush_secs=flush_secs)

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, float(value), global_step=int(step))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class MemoryLogger:
    """Keeps every scalar in memory as ``{tag: [(step, value), ...]}`` (tests, notebooks)."""

    def __init__(self) -> None:
        self.history: dict[str, list[tuple[int, float]]] = {}

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.history.setdefault(tag, []).append((int(step), float(value)))

    def last(self, tag: str) -> float:
        """The latest value logged under ``tag`` (``KeyError`` if none)."""
        return self.history[tag][-1][1]
