"""The state of a batch of environments: one dataclass of tensors per family.

Every field is a tensor whose first dimension is the batch ``B`` (or a dict of such
tensors, for a part chosen by an injected generator). The dynamics of a family read
and write its state object and nothing else that changes within an episode, so a
batch can be saved, restored, indexed, cloned and repeated: an algorithm may branch
simulations from any set of states.

Rows are selected with ``state[rows]``, written back with ``state[rows] = other``,
copied with ``state.clone()`` and tiled with ``state.repeat(k)``. The random keys are
fields like any other: a copy of a row carries its key and period, so it draws exactly
the random numbers the original row would have drawn (common random numbers), and its
future depends only on its own actions. ``state.rekeyed(salts)`` gives copies fresh,
reproducible randomness instead: each row's keys are derived from its own and a salt,
so copies with different salts play independent futures (demand scenarios) and copies
with the same salt share theirs.

>>> core = WarehouseCore(config, num_envs=1)
>>> core.reset(seeds=[7]); core.step(action)
>>> branches = WarehouseCore(config, num_envs=8)
>>> branches.state = core.state.repeat(8)  # eight copies of the same mid-episode state
>>> branches.state = core.state.repeat(8).rekeyed(torch.arange(8))  # eight independent futures
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

import torch

from paretochain.envs import _rng
from paretochain.errors import PolicyFileError

#: A selection of rows: an index, a slice, a list of indices, or an int64 or bool tensor.
Rows: TypeAlias = int | slice | list[int] | torch.Tensor
#: A field's value: a ``(B, ...)`` tensor, or a dict of them.
FieldValue: TypeAlias = torch.Tensor | dict[str, torch.Tensor]
S = TypeVar("S", bound="BatchState")


def _map(value: FieldValue, fn: Any) -> FieldValue:
    if isinstance(value, dict):
        return {name: fn(v) for name, v in value.items()}
    return fn(value)


@dataclasses.dataclass
class BatchState:
    """The part of the state every family shares: the random keys and the period of each environment.

    Attributes:
        key_lo: low 32 bits of each env's seed key, int64 ``(B,)``.
        key_hi: high 32 bits of each env's seed key, int64 ``(B,)``.
        episode: episodes started since the env was seeded (0 for the seeded one), int64 ``(B,)``.
        stream_key: key of the current episode's random stream (a hash of ``key_lo`` and ``key_hi``),
            int64 ``(B,)``; every draw of period ``t`` is a pure function of it and ``t``.
        t: periods (decisions, for Dispatch) played in the current episode, int64 ``(B,)``.
    """

    key_lo: torch.Tensor
    key_hi: torch.Tensor
    episode: torch.Tensor
    stream_key: torch.Tensor
    t: torch.Tensor

    # ------------------------------------------------------------------ fields
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the fields, in declaration order (the shared ones first)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def items(self) -> Iterator[tuple[str, FieldValue]]:
        """``(name, value)`` of every field."""
        for name in self.field_names():
            yield name, getattr(self, name)

    @property
    def batch_size(self) -> int:
        """The number of environments ``B``."""
        return int(self.t.shape[0])

    @property
    def device(self) -> torch.device:
        """Where the tensors live."""
        return self.t.device

    def _apply(self: S, fn: Any) -> S:
        fields: dict[str, Any] = {name: _map(value, fn) for name, value in self.items()}
        return type(self)(**fields)

    # ------------------------------------------------------------------ rows
    def _index(self, rows: Rows) -> torch.Tensor:
        """``rows`` as an int64 index tensor on the state's device."""
        if isinstance(rows, torch.Tensor):
            rows = rows.to(self.device)
            if rows.dtype == torch.bool:
                if rows.shape != (self.batch_size,):
                    raise IndexError(f"a bool row mask must have shape ({self.batch_size},), got {tuple(rows.shape)}")
                return torch.nonzero(rows).flatten()
            return rows.long().reshape(-1)
        every = torch.arange(self.batch_size, device=self.device)
        return every[rows].reshape(-1)

    def __getitem__(self: S, rows: Rows) -> S:
        """A new state of the selected rows (copies, in the order asked; an int keeps a batch of one)."""
        index = self._index(rows)
        return self._apply(lambda x: x.index_select(0, index))

    def __setitem__(self, rows: Rows, other: BatchState) -> None:
        """Write the rows of ``other`` (one per selected row, or one row for all) into the selected rows.

        Every field is replaced by a new tensor (written out of place), so states that shared a
        tensor do not change each other.
        """
        if type(other) is not type(self):
            raise TypeError(f"cannot write a {type(other).__name__} into a {type(self).__name__}")
        index = self._index(rows)
        count = int(index.numel())
        if other.batch_size not in (count, 1):
            raise ValueError(f"{other.batch_size} rows given for {count} rows selected")
        for name, value in self.items():
            new = getattr(other, name)

            def write(old: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
                source = source.to(old.device, old.dtype).expand(count, *old.shape[1:])
                return old.index_put((index,), source)

            if isinstance(value, dict):
                setattr(self, name, {k: write(v, new[k]) for k, v in value.items()})
            else:
                setattr(self, name, write(value, new))

    def clone(self: S) -> S:
        """A deep copy (no tensor shared)."""
        return self._apply(lambda x: x.clone())

    def repeat(self: S, k: int) -> S:
        """The batch tiled ``k`` times, as ``torch.Tensor.repeat``: row ``j * B + i`` is a copy of row ``i``."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        return self._apply(lambda x: x.repeat(k, *([1] * (x.dim() - 1))))

    def rekeyed(self: S, salts: torch.Tensor | Sequence[int]) -> S:
        """A copy whose rows draw fresh random numbers: each row's keys derived from its own and ``salts[row]``.

        The period, the episode count and every other field are kept; only ``key_lo``, ``key_hi``
        and ``stream_key`` change (``stream_key`` stays the hash of the two halves), so the draws
        of the rest of the current episode and of every later one follow the new keys (what a
        family drew when the episode started, such as Dispatch's orders, stays as drawn). The same state and salts
        give the same keys again; rows with the same keys and salt share their random numbers
        (common random numbers), rows with different salts do not. A core notices the new keys
        when the state is assigned (``core.state = state.rekeyed(salts)``).

        Args:
            salts: one non-negative integer per row, ``(B,)`` (an int64 tensor or a sequence).

        Raises:
            ValueError: not one salt per row, or a negative salt.
        """
        salt = torch.as_tensor(salts, dtype=torch.int64, device=self.device).reshape(-1)
        if salt.numel() != self.batch_size:
            raise ValueError(f"rekeyed: {salt.numel()} salts given for {self.batch_size} rows")
        if bool((salt < 0).any()):
            raise ValueError("rekeyed: salts must be non-negative integers")
        out = self.clone()
        out.key_lo, out.key_hi = _rng.rekey(self.key_lo, self.key_hi, salt)
        out.stream_key = _rng.derive_key(out.key_lo, out.key_hi)
        return out

    def to(self: S, device: str | torch.device) -> S:
        """A copy on ``device``."""
        return self._apply(lambda x: x.to(device, copy=True))

    # ------------------------------------------------------------------ checkpoints
    def to_dict(self) -> dict[str, FieldValue]:
        """Copies of the fields by name: tensors (and dicts of tensors) only, for ``torch.save``."""
        return {name: _map(value, lambda x: x.detach().clone()) for name, value in self.items()}

    @classmethod
    def from_dict(cls: type[S], data: Mapping[str, Any], like: BatchState) -> S:
        """The state saved by :meth:`to_dict`, checked against ``like`` (a state of the same core) field by field.

        Raises:
            PolicyFileError: a field is missing, not a tensor, or of another shape or dtype than ``like``'s.
        """
        fields: dict[str, Any] = {}
        for name, expected in like.items():
            if name not in data:
                raise PolicyFileError(f"checkpoint environment state has no field {name!r}")
            got = data[name]
            if isinstance(expected, dict):
                if not isinstance(got, Mapping) or set(got) != set(expected):
                    raise PolicyFileError(f"checkpoint environment state {name!r} does not fit this environment")
                fields[name] = {k: _checked(f"{name}.{k}", got[k], v) for k, v in expected.items()}
            else:
                fields[name] = _checked(name, got, expected)
        return cls(**fields)


def _checked(name: str, got: Any, expected: torch.Tensor) -> torch.Tensor:
    """``got`` copied to ``expected``'s device when it has its shape and dtype; PolicyFileError otherwise."""
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape or got.dtype != expected.dtype:
        what = f"{tuple(got.shape)} {got.dtype}" if isinstance(got, torch.Tensor) else f"a {type(got).__name__}"
        raise PolicyFileError(
            f"checkpoint environment state {name!r} is {what}; this environment needs "
            f"{tuple(expected.shape)} {expected.dtype}"
        )
    return got.to(expected.device, copy=True)
