"""Keep the C allocator from holding freed memory while a scale runs in tiles (glibc on Linux).

A tiled scale allocates and frees the same few sizes of tensors many times a step: each tile's
activations (a few MiB to a few tens of MiB), the crops, the gradient pieces. glibc's malloc serves an
allocation above its *mmap threshold* with a fresh mapping that goes back to the system when freed, and
anything smaller from its heap, which it keeps. The threshold is dynamic: it starts at 128 KiB and rises to
the size of any mapped block freed, up to 32 MiB, so after the first few tiles almost every tile tensor
comes from the heap, and the heap fragments: freed blocks that are never the right size and shape again
stay resident. The memory model counts live tensors only; a 1800 px scale in 184 px tiles under a
1.1 GiB budget peaked at 1.7 GiB resident with glibc's defaults and at 0.99 GiB with the threshold fixed
at 128 KiB (``scripts/memory_phases.py``, ``docs/perf/memory_phases_cpu_{glibc,bound}.json``).

:func:`bound_allocator` fixes the threshold at :data:`TILED_MMAP_THRESHOLD` and returns what the heap
holds free; :func:`relax_allocator` fixes it at glibc's ceiling (32 MiB, where the dynamic threshold
ends up in a long run) when the engine leaves the scales that need the bound. A fixed threshold stops
glibc adjusting it for the rest of the process, which is why relaxing sets the ceiling rather than a
default. The cost of the bound is a fresh mapping, and its page faults, for every large tensor: none
measurable with 896 px tiles (2048 px: 70.0 s/step bound, 71.1 with glibc's defaults,
``docs/perf/print_size_memory_cpu.json``), 38 % with 184 px tiles (the 1800 px run above), so the engine
binds only where the budget binds (see ``impasto.engine.BOUND_FRACTION``).

Other C libraries (musl, macOS) have no ``mallopt``: both functions then do nothing and return False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
TILED_TRIM_THRESHOLD = 2**20
"""Free memory at the heap's top beyond this goes back to the system at once (glibc would have raised
it to twice the mmap threshold, 64 MiB, by the time a tiled scale starts)."""
TILED_MMAP_THRESHOLD = 128 * 1024
"""glibc's starting threshold: a block this size or larger is mapped, and unmapped when freed."""
RELAXED_MMAP_THRESHOLD = 32 * 2**20
"""glibc's ceiling for the dynamic threshold on 64-bit systems (``DEFAULT_MMAP_THRESHOLD_MAX``)."""


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        lib.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.mallopt.restype = ctypes.c_int
        lib.malloc_trim.argtypes = [ctypes.c_size_t]
        lib.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return lib


def bound_allocator() -> bool:
    """Map every block of 128 KiB or more (unmapped when freed) and hand back the heap's free memory.
    True where the C library has ``mallopt`` (glibc) and took the setting."""
    lib = _libc()
    if lib is None or lib.mallopt(M_MMAP_THRESHOLD, TILED_MMAP_THRESHOLD) != 1:
        return False
    lib.mallopt(M_TRIM_THRESHOLD, TILED_TRIM_THRESHOLD)
    lib.malloc_trim(0)
    return True


def relax_allocator() -> bool:
    """Serve blocks up to 32 MiB from the heap again (the fast path for whole-image steps). True where
    the setting was taken."""
    lib = _libc()
    if lib is None or lib.mallopt(M_MMAP_THRESHOLD, RELAXED_MMAP_THRESHOLD) != 1:
        return False
    lib.mallopt(M_TRIM_THRESHOLD, 2 * RELAXED_MMAP_THRESHOLD)
    return True

