"""Sizes with units: ``parse_memory("1.5GiB")`` -> bytes, and back to text. Pure; no torch."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from impasto.errors import ImpastoError

MEMORY_UNITS: dict[str, int] = {
    "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
"""Decimal (KB = 1000 B) and binary (KiB = 1024 B) units; letter case is not significant."""

_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]+)\s*")


def parse_memory(text: str, name: str = "max_memory") -> int:
    """Bytes in ``text``, a positive number with a unit: ``1.5GiB``, ``512MiB``, ``2 GB``, ``4096B``
    (units B, KB/KiB, MB/MiB, GB/GiB, TB/TiB; fractions of a byte are dropped). Anything else is one
    ImpastoError line naming ``name``."""
    m = _SIZE.fullmatch(text) if isinstance(text, str) else None
    unit = MEMORY_UNITS.get(m.group(2).lower()) if m else None
    if m is None or unit is None:
        raise ImpastoError(f"{name} must be a size with a unit, e.g. 1.5GiB or 512MiB (units B, KB, KiB, MB, MiB, "
                           f"GB, GiB, TB, TiB; got {str(text)[:40]!r})")
    try:
        value = int(Decimal(m.group(1)) * unit)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimal numbers
        raise ImpastoError(f"{name}: {text!r} is not a number with a unit") from None
    if value <= 0:
        raise ImpastoError(f"{name} must be more than 0 bytes (got {text!r})")
    return value


def format_bytes(n: float) -> str:
    """``n`` bytes as a short binary size: 1536 -> '1.5 KiB', 3 * 2**30 -> '3.0 GiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
