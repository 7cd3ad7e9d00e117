"""A debugging check that every observation and reward an environment returns is finite.

Off by default (it reads the values back from the device every step). Turn it on with
the environment variable ``PARETOCHAIN_CHECK_FINITE=1`` before the environments are built
(the test suite does), or per core with ``core.check_finite = True``. A NaN or an
infinity then raises :class:`NonFiniteError` at the reset or step that produced it,
naming the environment of the batch and the observation block or objective.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch

from paretochain.errors import ParetochainError

if TYPE_CHECKING:
    from paretochain.envs.core import BatchedCore


class NonFiniteError(ParetochainError, FloatingPointError):
    """An environment produced a NaN or infinite observation or reward (see :mod:`paretochain.envs.checks`)."""


def finite_check_requested() -> bool:
    """Whether ``PARETOCHAIN_CHECK_FINITE`` asks new cores to check their outputs."""
    return os.environ.get("PARETOCHAIN_CHECK_FINITE", "0") not in ("0", "")


def check_finite(core: BatchedCore, doing: str, obs: torch.Tensor, reward: torch.Tensor | None = None) -> None:
    """Raise :class:`NonFiniteError` if ``obs`` ``(B, obs_dim)`` or ``reward`` ``(B, k)`` holds a NaN or infinity."""
    name = type(core).__name__
    if not bool(torch.isfinite(obs).all()):
        env, index = (int(i) for i in torch.nonzero(~torch.isfinite(obs))[0])
        block = next(
            (
                f"{seg} [{index - s.start}]"
                for seg, s in core.observation_layout.segments.items()
                if s.start <= index < s.stop
            ),
            f"entry {index}",
        )
        raise NonFiniteError(f"{name} {doing}: observation {block} of env {env} is {float(obs[env, index])}")
    if reward is not None and not bool(torch.isfinite(reward).all()):
        env, column = (int(i) for i in torch.nonzero(~torch.isfinite(reward))[0])
        objective = core.objectives.names[column]
        raise NonFiniteError(f"{name} {doing}: reward {objective} of env {env} is {float(reward[env, column])}")
