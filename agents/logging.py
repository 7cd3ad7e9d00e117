"""Where training statistics go: a tiny ``Logger`` protocol and two implementations.

Agents call ``logger.scalar(tag, value, step)`` once per logging interval (never
per environment step). Tags follow one scheme so that runs compare side by side:

- ``charts/SPS``: environment steps per second since the previous log;
- ``charts/episode_return/<objective>``: mean undiscounted return of the episodes
  finished since the previous log, per objective;
- ``charts/scalarised_return``: the same episodes' returns weighted by their preference;
- ``charts/episode_length``: mean length (environment steps) of the same episodes;
- ``losses/<name>``: optimisation figures (``policy``, ``value``, ``entropy``,
  ``approx_kl``, ``old_approx_kl``, ``clip_fraction``, ``explained_variance``, ...).

SB3 agents add SB3's own figures under SB3's names (``train/*``, ``rollout/*``,
``time/*``). A training run also records its resolved config once
(:meth:`TensorBoardLogger.record_config`): as text under ``config`` and as
hyperparameters in TensorBoard's HPARAMS tab.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

#: Scalar tags the HPARAMS tab shows beside each run's hyperparameters.
HPARAM_METRICS = ("eval/hypervolume", "eval/expected_utility", "charts/scalarised_return")


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """Nested config as ``{"dotted.path": value}`` with TensorBoard's hyperparameter types (lists as JSON, None as "None")."""
    flat: dict[str, bool | int | float | str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, name + "."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        elif value is None:
            flat[name] = "None"
        else:
            flat[name] = json.dumps(value)
    return flat


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

    def record_config(self, config: Mapping[str, Any], text: str) -> None:
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

    def record_config(self, config: Mapping[str, Any], text: str) -> None:
        """Record a run's resolved config: ``text`` (its YAML) under the tag ``config``, ``config`` as hyperparameters."""
        from torch.utils.tensorboard.summary import hparams

        self.writer.add_text("config", "\n".join("    " + line for line in text.splitlines()))
        experiment, session_start, session_end = hparams(flatten_config(config), dict.fromkeys(HPARAM_METRICS, 0.0))
        events = self.writer._get_file_writer()  # add_hparams would open a second run folder
        for summary in (experiment, session_start, session_end):
            events.add_summary(summary)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class MemoryLogger:
    """Keeps every scalar in memory as ``{tag: [(step, value), ...]}`` (tests, notebooks)."""

    def __init__(self) -> None:
        self.history: dict[str, list[tuple[int, float]]] = {}
        self.config: dict[str, Any] | None = None

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.history.setdefault(tag, []).append((int(step), float(value)))

    def record_config(self, config: Mapping[str, Any], text: str) -> None:
        """Keep the flattened config (see :meth:`TensorBoardLogger.record_config`)."""
        self.config = flatten_config(config)

    def last(self, tag: str) -> float:
        """The latest value logged under ``tag`` (``KeyError`` if none)."""
        return self.history[tag][-1][1]
