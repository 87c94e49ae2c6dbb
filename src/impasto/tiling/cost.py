"""What a run will cost before it starts: peak memory per scale (whole and as planned under the budget,
from :mod:`~impasto.tiling.memory`) and time from a measured step rate scaled by pixels.

Time model: seconds per step = rate · megapixels, ``rate`` measured at 512 px and assumed linear in the
pixels (the network's work is; the Gram matrices' C²·positions too), so it is a rough guide, not a promise.
A tiled step runs two forwards and one backward of each crop instead of one forward and backward of the
picture: with a backward costing two forwards, 4/3 of a whole step times the crops' total area over the
picture's (the halos are computed by every tile that reads them).

Measured rates (the default objective, one L-BFGS step):

- CPU: :data:`CPU_SECONDS_PER_MPIXEL`, the median of ``docs/perf/step_seconds_512.json`` (2.08 s per step
  at 512x512 on the 2-core CPU with 2 threads) per 0.262 Mpx; a machine with more cores is faster;
- CUDA: :data:`CUDA_SECONDS_PER_MPIXEL`, 5 ms per step at 512 px on an H100 (``docs/perf/bench_h100.json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from impasto.tiling.grid import Tile
from impasto.tiling.memory import ScalePlan
from impasto.units import format_bytes

CPU_SECONDS_PER_MPIXEL = 2.08 / (512 * 512 / 1e6)
CUDA_SECONDS_PER_MPIXEL = 0.005 / (512 * 512 / 1e6)
TILED_STEP_FACTOR = 4 / 3
"""Two forwards and one backward against one forward and one backward (a backward is two forwards)."""


@dataclass(frozen=True)
class ScaleCost:
    size: tuple[int, int]
    steps: int
    plan: ScalePlan | None
    """None: no budget (``max_memory`` none)."""
    tiles: int
    """Tiles of the scale's first evaluation (0: whole)."""
    seconds_per_step: float

    @property
    def seconds(self) -> float:
        return self.steps * self.seconds_per_step


@dataclass(frozen=True)
class RunCost:
    scales: list[ScaleCost]
    budget: int | None
    device: str
    rate: float
    """Seconds per step per megapixel of a whole-image step."""

    @property
    def peak(self) -> int | None:
        """The modelled peak of the process over the run, as planned (None without a budget)."""
        peaks = [s.plan.peak for s in self.scales if s.plan is not None]
        return max(peaks) if peaks else None

    @property
    def whole_peak(self) -> int | None:
        """The modelled peak if every scale ran whole with its configured history."""
        peaks = [s.plan.whole.total + s.plan.overhead for s in self.scales if s.plan is not None]
        return max(peaks) if peaks else None

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.scales)

    def lines(self) -> list[str]:
        """The cost as a few lines of text (what ``impasto ... --show-cost`` prints)."""
        out = [f"{'scale':>11} {'steps':>5} {'whole':>10} {'as run':>10} {'tiles':>6} {'pairs':>5} {'s/step':>8}"]
        for s in self.scales:
            h, w = s.size
            whole = format_bytes(s.plan.whole.total + s.plan.overhead) if s.plan else "-"
            run = format_bytes(s.plan.peak) if s.plan else "-"
            tiles = f"{s.tiles}" if s.tiles else "whole"
            pairs = f"{s.plan.pairs}" if s.plan else "-"
            out.append(f"{w:>5}x{h:<5} {s.steps:>5} {whole:>10} {run:>10} {tiles:>6} {pairs:>5} "
                       f"{s.seconds_per_step:>8.2f}")
        budget = format_bytes(self.budget) if self.budget is not None else "none"
        peak = format_bytes(self.peak) if self.peak is not None else "not modelled (max_memory none)"
        whole = format_bytes(self.whole_peak) if self.whole_peak is not None else "-"
        out.append(f"peak memory {peak} under the budget {budget} (all scales whole: {whole}); "
                   f"about {_duration(self.seconds)} on {self.device} at {self.rate:.3g} s per step per megapixel "
                   "(memory and time are estimates: see impasto.tiling.cost)")
        return out


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def default_rate(device_type: str) -> float:
    return CUDA_SECONDS_PER_MPIXEL if device_type == "cuda" else CPU_SECONDS_PER_MPIXEL


def step_seconds(size: tuple[int, int], tiles: Sequence[Tile], rate: float) -> float:
    """Seconds of one step at ``size``: whole (``tiles`` empty) or in these tiles."""
    h, w = size
    if not tiles:
        return rate * h * w / 1e6
    area = sum((t.net[1] - t.net[0]) * (t.net[3] - t.net[2]) for t in tiles)
    return rate * TILED_STEP_FACTOR * area / 1e6


def scale_cost(size: tuple[int, int], steps: int, plan: ScalePlan | None, tiles: Sequence[Tile],
               rate: float) -> ScaleCost:
    return ScaleCost(size, steps, plan, len(tiles), step_seconds(size, tiles, rate))
