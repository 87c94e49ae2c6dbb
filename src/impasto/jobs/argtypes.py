"""Number parsers for command-line flags: each raises ArgumentTypeError with a one-line message."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn


def float_in(
    lo: float, hi: float = math.inf, *, lo_open: bool = False, hi_open: bool = False
) -> Callable[[str], float]:
    """A parser for finite floats in [lo, hi] (either end open when asked)."""
    left = f"> {lo:g}" if lo_open else f">= {lo:g}"
    bound = left if hi == math.inf else f"{left} and {'<' if hi_open else '<='} {hi:g}"

    def parse(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
        ok = math.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
        if not ok:
            raise argparse.ArgumentTypeError(f"must be a finite number {bound}, got {s}")
        return v

    return parse


def int_at_least(lo: int) -> Callable[[str], int]:
    """A parser for whole numbers >= lo."""

    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {s!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {v}")
        return v

    return parse


nonneg_float = float_in(0.0)
positive_float = float_in(0.0, lo_open=True)
decay = float_in(0.0, 1.0, lo_open=True, hi_open=True)
nonneg_int = int_at_least(0)


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
