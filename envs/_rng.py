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

from typing import TypeVar

import torch

#: Keys are int64 tensors, or Python ints where one env's keys are hashed on the host (the same values).
Key = TypeVar("Key", int, torch.Tensor)

_MASK32 = 0xFFFFFFFF
_M1 = 0x21F0AAAD  # multipliers of a low-bias 32-bit integer hash (both < 2**31)
_M2 = 0x735A2D97
_GOLDEN = 0x61C88647  # 2**32 / golden ratio, below 2**31
_TWO_POW_23 = float(1 << 23)


def mix32(x: Key) -> Key:
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


def derive_key(key_lo: Key, key_hi: Key) -> Key:
    """Fold the two key halves into one 32-bit stream key per environment."""
    return mix32(key_lo ^ mix32(key_hi + _GOLDEN))


def rekey(key_lo: torch.Tensor, key_hi: torch.Tensor, salt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """New key halves derived from ``key_lo``, ``key_hi`` and a per-env ``salt`` (non-negative int64, ``(B,)``).

    The same keys and salt give the same halves; different salts give unrelated ones (the salt is
    hashed before it is mixed in, so salts 0, 1, 2, ... are as far apart as any).
    """
    salted = mix32((salt & _MASK32) ^ 0x5BD1E995)
    lo = mix32(key_lo ^ mix32(salted + _GOLDEN))
    hi = mix32(key_hi ^ mix32((salted * 3 + 0x1B873593) & _MASK32))
    return lo, hi


def next_episode_seed(key_lo: Key, key_hi: Key, episode: Key) -> tuple[Key, Key]:
    """Key halves for the next episode of an environment reset without a seed."""
    lo = mix32(key_lo ^ mix32((episode * _GOLDEN) & _MASK32))
    hi = mix32(key_hi ^ mix32(lo + 0x2545F491))
    return lo, hi


def next_episodes_on_host(key_lo: int, key_hi: int, episode: int, count: int) -> list[tuple[int, int, int, int]]:
    """One env's keys for its next ``count`` episodes, hashed on Python ints: ``(key_lo, key_hi, episode,
    stream_key)`` each, the values :func:`next_episode_seed` and :func:`derive_key` give on tensors."""
    keys = []
    for _ in range(count):
        episode += 1
        key_lo, key_hi = next_episode_seed(key_lo, key_hi, episode)
        keys.append((key_lo, key_hi, episode, derive_key(key_lo, key_hi)))
    return keys


#: Largest per-site cache of one episode's uniforms (entries over the whole batch).
CACHE_LIMIT = 4_000_000


class StepDraw:
    """The randomness handle of one step: per-env step keys and periods.

    ``keys`` are the per-env step keys ``(B,)``; ``t`` the per-env period ``(B,)``.
    Sites whose episode is cached read their uniforms at ``t`` and never hash, so keys
    taken from a precomputed ``table`` are only looked up when a site asks for them.

    Per-episode tables are laid out period-major, ``(T + 1, B, ...)``: the rows of one
    period lie together, so while the envs of a batch play the same period (they do
    after a full reset) a step reads one contiguous block of every table. One env on
    the CPU reads its period once as a number and takes its rows as views.
    """

    __slots__ = ("_flat", "_keys", "_period", "_rows", "t", "table")

    def __init__(
        self,
        keys: torch.Tensor | None,
        t: torch.Tensor,
        table: torch.Tensor | None = None,
        rows: torch.Tensor | None = None,
        period: int | None = None,
    ) -> None:
        if keys is None and table is None:
            raise ValueError("a StepDraw needs its keys or the table of episode keys they come from")
        self._keys = keys
        self.t = t
        self.table = table  # the episode keys (T + 1, B) the step keys come from, when precomputed
        self._rows = rows  # arange(B), made once by the caller
        self._flat: torch.Tensor | None = None
        self._period = period  # the period of a single env on the CPU, when known (else read at first use)

    @property
    def keys(self) -> torch.Tensor:
        """The per-env step keys ``(B,)``."""
        if self._keys is None:
            assert self.table is not None
            self._keys = self.at_period(self.table)
        return self._keys

    def at_period(self, table: torch.Tensor) -> torch.Tensor:
        """Row ``t`` of every env in a period-major, per-env ``table`` ``(T + 1, B, ...)``: ``(B, ...)``.

        The rows are a new tensor, or (one env on the CPU) a view of ``table``: callers do not write into them.
        """
        if self.t.shape[0] == 1 and self.t.device.type == "cpu":
            if self._period is None:
                self._period = int(self.t)
            return table[self._period]  # a view (1, ...): a fraction of a lookup's cost
        if self._flat is None:
            batch = self.t.shape[0]
            if batch == 1:
                self._flat = self.t  # row t of the flattened table
            else:
                rows = self._rows if self._rows is not None else torch.arange(batch, device=self.t.device)
                self._flat = torch.add(rows, self.t, alpha=batch)  # t * B + env
        return rows_at(table, self._flat)


def rows_at(table: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """Rows ``flat`` of a period-major, per-env ``table`` ``(T + 1, B, ...)`` read as ``((T + 1) * B, ...)``.

    With ``flat = t * B + arange(B)`` this is ``table[t, arange(B)]``, in one cheap lookup.
    """
    return table.flatten(0, 1).index_select(0, flat)


class DrawSite:
    """One place in the dynamics that draws uniforms of a fixed per-env shape.

    A site may cache a whole episode of uniforms (computed at reset in one
    vectorised pass); the values are identical to those computed step by step.

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
        self.numel = numel
        self._offsets = mix32((index + site_id * 0x9E3779B) & _MASK32).unsqueeze(0)
        self._cache: torch.Tensor | None = None
        self._source: torch.Tensor | None = None  # the episode-key table the cache was built from

    def _hash(self, keys: torch.Tensor) -> torch.Tensor:
        view = keys.reshape(keys.shape + (1,) * len(self.shape))
        return _uniforms(view, self._offsets.reshape((1,) * (keys.dim() - 1) + self._offsets.shape))

    def prepare(self, episode_keys: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Cache the uniforms of the episodes just started (``episode_keys``: period-major, ``(T, B)``), if
        small enough.

        ``mask`` ``(B,)`` selects the envs that changed; ``None`` rebuilds every env.
        """
        steps, batch = episode_keys.shape
        self._source = episode_keys
        if batch * steps * self.numel > CACHE_LIMIT:
            self._cache = None
            return
        fresh = self._hash(episode_keys)
        if mask is None or self._cache is None or self._cache.shape != fresh.shape:
            self._cache = fresh
        else:
            self._cache = torch.where(mask.view((1, -1) + (1,) * (fresh.dim() - 2)), fresh, self._cache)

    @property
    def cache(self) -> torch.Tensor | None:
        """The cached uniforms of the current episodes, period-major ``(T + 1, batch, *shape)`` (None when not cached)."""
        return self._cache

    def use_cache(self, cache: torch.Tensor, source: torch.Tensor) -> None:
        """Put back a :attr:`cache` built from the episode-key table ``source``."""
        self._cache, self._source = cache, source

    def uniform(self, draw: StepDraw | torch.Tensor) -> torch.Tensor:
        """Uniforms in (0, 1), float32, shape ``(batch, *shape)``, for this step."""
        if isinstance(draw, torch.Tensor):
            return self._hash(draw)
        episode = self.episode(draw)
        if episode is not None:
            return draw.at_period(episode)
        return self._hash(draw.keys)

    def episode(self, draw: StepDraw) -> torch.Tensor | None:
        """The cached uniforms of the current episodes, period-major ``(T + 1, batch, *shape)``, or None when not cached.

        A new tensor whenever episodes start over, so callers may cache what they derive from it.
        """
        if draw.table is None:
            return None
        if draw.table is not self._source:
            self.prepare(draw.table)  # the keys were replaced (e.g. a restored checkpoint): rebuild
        return self._cache


class DrawSites:
    """Several draw sites read with the same keys (what an instance generator draws at a reset), hashed in one pass.

    :meth:`uniform` gives every site the values ``site.uniform(keys)`` gives it, with the operations of one site.

    Args:
        sites: the sites, each with its own id.
    """

    def __init__(self, *sites: DrawSite) -> None:
        self.sites = sites
        self._offsets = torch.cat([site._offsets.reshape(1, -1) for site in sites], dim=1)
        self._sizes = [site.numel for site in sites]

    def uniform(self, keys: torch.Tensor) -> dict[DrawSite, torch.Tensor]:
        """Each site's uniforms in (0, 1), float32 ``(k, *site.shape)``, for the keys ``(k,)``."""
        # the hash of DrawSite._hash, over the sites' element offsets side by side
        parts = _uniforms(keys.unsqueeze(1), self._offsets).split(self._sizes, dim=1)
        return {site: part.unflatten(1, site.shape) for site, part in zip(self.sites, parts)}


def _uniforms(keys: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Uniforms in (0, 1), float32, of ``keys`` hashed with element ``offsets`` (broadcast against each other)."""
    # 23 random bits: (bits + 0.5) / 2**23 is exact in float32, so u lies strictly inside (0, 1)
    bits = mix32(keys ^ offsets) >> 9
    return bits.to(torch.float32).add_(0.5).mul_(1.0 / _TWO_POW_23)


def _counter_hash(counter: torch.Tensor) -> torch.Tensor:
    return mix32((counter * _GOLDEN + 0x3C6EF372) & _MASK32)


def step_keys(stream_key: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
    """Per-env key for one step: hash of the stream key and the step counter."""
    return mix32(stream_key ^ _counter_hash(counter))


def counter_hashes(length: int, device: torch.device) -> torch.Tensor:
    """The counter hashes of steps ``0..length-1``, so that ``mix32(stream_key ^ table[t]) == step_keys(stream_key, t)``."""
    return _counter_hash(torch.arange(length, dtype=torch.int64, device=device))
