"""The one exception type a user sees.

Everything that is the user's fault (a missing file, a bad layer name, an unwritable folder) raises
:class:`ImpastoError` with a message that fits on one line; the CLI prints it and exits with status 2.
"""

from __future__ import annotations


class ImpastoError(Exception):
    """A user-facing error: ``str(err)`` is one line that says what is wrong and how to fix it."""


_OOM_MARKERS = (
    "out of memory",  # CUDA, MPS, and torch's own messages
    "can't allocate memory",  # the CPU allocator: "DefaultCPUAllocator: can't allocate memory: you tried ..."
    "cannot allocate memory",  # ENOMEM as strerror
    "not enough memory",  # Windows CPU allocator
)


def out_of_memory_message(err: BaseException) -> str | None:
    """One line for an exception that means the machine ran out of memory, or ``None`` if it is not one.

    Front-ends call this in their top-level handler (``MemoryError`` and the RuntimeErrors torch raises
    on the CPU and on GPUs), so a user hears "out of memory: try a smaller --size", not a traceback.
    """
    if isinstance(err, MemoryError):
        return "out of memory: try a smaller --size"
    text = str(err).lower()
    if isinstance(err, (RuntimeError, OSError)) and any(m in text for m in _OOM_MARKERS):
        where = "on the GPU" if ("cuda" in text or "mps" in text or "gpu" in text) else "on the CPU"
        return f"out of memory {where}: try a smaller --size"
    return None
