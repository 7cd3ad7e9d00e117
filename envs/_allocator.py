"""Keep glibc's malloc from handing large tensor buffers back to the kernel after every step.

A batched CPU step allocates and frees tensors of a few hundred kilobytes to a few megabytes
(observations, masks, per-order distances). With glibc's default settings such blocks are
mapped with ``mmap`` and unmapped when freed, or trimmed from the top of the heap, so the next
step takes a page fault for every 4 KiB it writes again. On a 1,024-environment Dispatch batch
that is about a third of the step's time. Raising the mmap threshold and the trim threshold
keeps those pages in the process for reuse.

:func:`tune_allocator` (``paretochain.envs.tune_allocator``) applies the setting once per process,
and only when called: building or stepping an environment never changes the allocator of the
process it runs in. Benchmarks and long training jobs on the CPU call it first. It is skipped on
other C libraries, when the user set any ``MALLOC_*`` variable (their choice wins), and when
``PARETOCHAIN_MALLOC_TUNING=0``. The cost is memory: up to :data:`TRIM_THRESHOLD_BYTES` of freed
heap may stay resident instead of going back to the system.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

#: Blocks below this size come from the heap (glibc's default starts at 128 KiB).
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # the largest value glibc accepts on 64-bit systems
#: Free memory at the top of the heap returned to the system only above this size.
TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's malloc.h
_M_MMAP_THRESHOLD = -3

_applied: bool | None = None


def tune_allocator() -> bool:
    """Keep freed tensor buffers in the process for reuse (glibc only; an opt-in for the whole process).

    Idempotent. Returns True when the thresholds are in effect, False where they were skipped (another
    C library, a ``MALLOC_*`` variable set by the user, or ``PARETOCHAIN_MALLOC_TUNING=0``).
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("PARETOCHAIN_MALLOC_TUNING", "1") == "0" or any(k.startswith("MALLOC_") for k in os.environ):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
    return _applied
