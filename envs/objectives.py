"""Objectives declared as data: what each entry of a vector reward means.

Every environment returns a reward vector whose entries are "higher is better"
(costs are negated). Metrics, reports and exports read the declaration below,
so they need no per-environment code.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Objective:
    """One entry of a vector reward.

    Attributes:
        name: identifier used in configs, logs and reports (``"profit"``).
        unit: unit of the per-episode return (``"currency"``, ``"share of demand"``).
        description: one sentence a planner understands, including the sign convention.
        reference: a worst plausible per-episode return, the reference point for hypervolume.
        direction: always ``"maximize"``: costs are negated before they enter the reward.
    """

    name: str
    unit: str
    description: str
    reference: float
    direction: str = "maximize"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class ObjectiveSet(Sequence[Objective]):
    """The ordered objectives of an environment instance."""

    def __init__(self, objectives: Sequence[Objective]) -> None:
        names = [o.name for o in objectives]
        if len(set(names)) != len(names):
            raise ValueError(f"objective names must be unique, got {names}")
        if not objectives:
            raise ValueError("at least one objective is required")
        self._objectives = tuple(objectives)

    def __getitem__(self, index):  # type: ignore[override]
        return self._objectives[index]

    def __len__(self) -> int:
        return len(self._objectives)

    def __iter__(self) -> Iterator[Objective]:
        return iter(self._objectives)

    @property
    def names(self) -> list[str]:
        return [o.name for o in self._objectives]

    @property
    def reference_point(self) -> np.ndarray:
        return np.array([o.reference for o in self._objectives], dtype=np.float64)

    def index(self, name: str) -> int:  # type: ignore[override]
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown objective {name!r}; this environment has {self.names}") from None

    def to_list(self) -> list[dict[str, object]]:
        return [o.to_dict() for o in self._objectives]


def select_objectives(
    catalogue: dict[str, Objective],
    names: Sequence[str],
    where: str,
    reference_overrides: dict[str, float] | None = None,
) -> ObjectiveSet:
    """Pick objectives by name from a family's catalogue, with a clear error for unknown names.

    ``reference_overrides`` replaces declared reference points (the config's ``reference_point``).
    """
    catalogue = dict(catalogue)
    for name, value in (reference_overrides or {}).items():
        if name not in catalogue:
            raise ValueError(f"reference_point: unknown objective {name!r}; the catalogue has {sorted(catalogue)}")
        o = catalogue[name]
        catalogue[name] = Objective(o.name, o.unit, o.description, float(value), o.direction)
    unknown = [n for n in names if n not in catalogue]
    if unknown:
        raise ValueError(f"{where}: unknown objective(s) {unknown}; the catalogue has {sorted(catalogue)}")
    return ObjectiveSet([catalogue[n] for n in names])
