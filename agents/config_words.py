"""Words the agents' configs share, and the old words they refuse.

Every agent names the same idea with the same field: ``norm_obs`` (normalise observations),
``obs_scale`` (fixed environment scales or running statistics), ``norm_return`` (scale each
reward by the running std of its discounted return), ``hidden_sizes`` (hidden layer sizes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Old field name -> the field that replaced it.
RENAMED_FIELDS = {
    "normalize_observations": "norm_obs",
    "normalize_rewards": "norm_return",
    "net_arch": "hidden_sizes",
}


def refuse_renamed_fields(data: Any) -> Any:
    """Raise ValueError naming the new field for the first old field name in ``data`` (a pydantic before-validator)."""
    if isinstance(data, Mapping):
        for old, new in RENAMED_FIELDS.items():
            if old in data:
                raise ValueError(f"{old} is now called {new}: write {new}: {data[old]!r}")
    return data
