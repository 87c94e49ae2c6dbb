"""What a run will cost before it starts: peak memory per scale (whole and as planned under the budget,
from :mod:`~impasto.tiling.memory`) and time from a measured step rate scaled by pixels.

Time model: seconds per step = rate · megapixels, ``rate`` measured at 512 px and assumed linear in the
pixels (the network's work is; the Gram matrices' C²·positions too), so it is a rough guide, not a promise.
A tiled step runs two forwards and one backward of each crop instead of one forward and backward of the
picture: with a backward costing two forwards, 4/3 of a whole step times the crops' total area over the
picture's (the halos are computed by every tile that reads them).

``impasto --show-cost`` and ``impasto batch --show-cost`` price with a rate measured on the machine just
before (:func:`impasto.engine.measure_rate`: a few steps of a small picture with the run's own objective on
random weights of the network's shapes). The studio's ``POST /api/cost`` prices with the steps its own jobs
took on the same network (:class:`RateMeter`; its web process times nothing itself, since its workers run
jobs beside it), and until it has seen some, like any caller that passes no rate, with these committed
rates (the default objective, one L-BFGS step):

- CPU: :data:`CPU_SECONDS_PER_MPIXEL`, the median of ``docs/perf/step_seconds_512.json`` (2.08 s per step
  at 512x512 on the 2-core CPU with 2 threads) per 0.262 Mpx; a machine with more cores is faster;
- CUDA: :data:`CUDA_SECONDS_PER_MPIXEL`, 5 ms per step at 512 px on an H100 (``docs/perf/bench_h100.json``).

Two ways in, one computation (:func:`run_cost`): :meth:`StyleTransfer.cost <impasto.engine.StyleTransfer.cost>`
with the engine's loaded model and images, and :func:`config_cost` from a Config and the images' sizes alone,
on the network's structure (:func:`~impasto.vgg.structure_of`: channel counts, no weights), for front-ends
that price a job before anything is loaded (the studio's ``POST /api/cost`` and its job-memory guard,
``impasto batch --show-cost``). Both count the process's fixed part as :func:`process_overhead` does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from impasto.config import Config
from impasto.tiling.grid import Tile, TileSchedule, alignment
from impasto.tiling.memory import F32, RUNTIME_BYTES, ScalePlan, plan_scale
from impasto.units import format_bytes
from impasto.vgg import VGGFeatures, VGGWeights, canonical_layer, load_weights, structure_of

COMMITTED_RATE = "the committed measurement for this device type"
MEASURED_RATE = "measured on this machine just now"
OBSERVED_RATE = "from this server's recent steps of the same network"
GIVEN_RATE = "as given"
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
    rate_source: str = COMMITTED_RATE
    """Where ``rate`` comes from: :data:`COMMITTED_RATE`, :data:`MEASURED_RATE`, :data:`OBSERVED_RATE` or
    :data:`GIVEN_RATE`."""

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

    def to_dict(self) -> dict[str, Any]:
        """The cost as JSON-ready numbers (bytes, seconds): what the studio's ``POST /api/cost`` returns.
        Per scale: ``whole_bytes`` (the scale run whole with its configured history, runtime and inputs
        included) and ``run_bytes`` (as planned under the budget), both None without a budget."""
        rows = []
        for s in self.scales:
            h, w = s.size
            rows.append({
                "width": w, "height": h, "steps": s.steps,
                "whole_bytes": s.plan.whole.total + s.plan.overhead if s.plan else None,
                "run_bytes": s.plan.peak if s.plan else None,
                "tiles": s.tiles, "tile": s.plan.tile if s.plan else None, "pairs": s.plan.pairs if s.plan else None,
                "seconds_per_step": s.seconds_per_step, "seconds": s.seconds,
            })
        return {"scales": rows, "budget_bytes": self.budget, "peak_bytes": self.peak,
                "whole_peak_bytes": self.whole_peak, "seconds": self.seconds, "device": self.device,
                "seconds_per_step_per_mpixel": self.rate, "rate_source": self.rate_source}

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
                   f"about {format_duration(self.seconds)} on {self.device} at {self.rate:.3g} s per step per "
                   f"megapixel, {self.rate_source} (memory and time are estimates: see impasto.tiling.cost)")
        return out


def evaluations_per_step(cfg: Config) -> float:
    """Objective evaluations one step of ``cfg`` costs: L-BFGS's inner iterations, a line search as 1.25 of
    them (torch's strong-Wolfe search usually takes one evaluation, sometimes two); Adam's one."""
    if cfg.optimizer != "lbfgs":
        return 1.0
    return cfg.lbfgs_max_iter * (1.25 if cfg.lbfgs_line_search else 1.0)


def rate_key(cfg: Config, device: str) -> tuple[Any, ...]:
    """What a step's time per pixel depends on besides the machine: the device kind, the network the
    layers reach and how it pools."""
    kind = "cpu" if device == "cpu" else "cuda"
    return (kind, cfg.weights is None, tuple(cfg.content_layers), tuple(cfg.style_layers), cfg.pooling)


class RateMeter:
    """Seconds per evaluation per megapixel, observed from the steps jobs actually take: the median of the
    last :attr:`keep` whole-image steps (not a scale's first step, which sets up kernels, nor tiled steps,
    which the cost model prices with their own factor), per :func:`rate_key`. A server keeps one and prices
    jobs with it once it has seen a few steps. Thread-safe."""

    keep = 25
    least = 3

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samples: dict[tuple[Any, ...], list[float]] = {}
        self._last: dict[str, tuple[int, int, float]] = {}

    def observe(self, job: str, key: tuple[Any, ...], scale: int, step: int, size: tuple[int, int], elapsed: float,
                tiles: int, evaluations: float) -> None:
        """One progress event of ``job``: its step, scale, picture size and seconds since the job started."""
        with self._lock:
            prev = self._last.get(job)
            self._last[job] = (scale, step, elapsed)
            if prev is None or prev[0] != scale or step != prev[1] + 1 or tiles or elapsed <= prev[2]:
                return
            mpx = size[0] * size[1] / 1e6
            rows = self._samples.setdefault(key, [])
            rows.append((elapsed - prev[2]) / mpx / evaluations)
            del rows[:-self.keep]

    def forget(self, job: str) -> None:
        with self._lock:
            self._last.pop(job, None)

    def rate(self, key: tuple[Any, ...]) -> float | None:
        """The median observed seconds per evaluation per megapixel, None before :attr:`least` samples."""
        with self._lock:
            rows = sorted(self._samples.get(key, ()))
        if len(rows) < self.least:
            return None
        mid = len(rows) // 2
        return rows[mid] if len(rows) % 2 else (rows[mid - 1] + rows[mid]) / 2


def format_duration(seconds: float) -> str:
    """Seconds as "40 s", "12 min" or "3.5 h" (the cost table's rounding)."""
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


def input_bytes(content_hw: tuple[int, int], style_hws: Sequence[tuple[int, int]]) -> int:
    """Bytes of the input images as the engine holds them on the CPU (float32 RGB at their own sizes): the
    content twice (as prepared for the loss and as RGB for the output's colours; the engine counts both
    even where they are one tensor) and every style image."""
    h, w = content_hw
    return 3 * F32 * (2 * h * w + sum(sh * sw for sh, sw in style_hws))


def process_overhead(device_type: str, content_hw: tuple[int, int], style_hws: Sequence[tuple[int, int]]) -> int:
    """What a run's process holds besides a scale's estimate: the runtime allowance
    (:data:`~impasto.tiling.memory.RUNTIME_BYTES`) and, on the CPU, :func:`input_bytes` (on a GPU the
    input images stay in host memory, outside the device's budget)."""
    if device_type == "cpu":
        return RUNTIME_BYTES["cpu"] + input_bytes(content_hw, style_hws)
    return RUNTIME_BYTES["cuda"]


def run_cost(model: VGGFeatures, content_layers: Sequence[str], style_layers: Sequence[str],
             schedule: Sequence[tuple[tuple[int, int], int]], pairs_for: Callable[[int, int], int],
             budget: int | None, overhead: int, device: str, rate: float,
             rate_source: str = COMMITTED_RATE) -> RunCost:
    """Each scale of ``schedule`` ((height, width), steps) planned under ``budget`` (None: no budget, every
    scale whole and unpriced in memory) with :func:`~impasto.tiling.memory.plan_scale` (``pairs_for(h, w)``:
    the configured L-BFGS pairs), its first evaluation's tiles, and its time at ``rate`` seconds per step
    per megapixel. A scale whose floor is over the budget raises
    :class:`~impasto.tiling.memory.MemoryFloorError`."""
    scales = []
    for (h, w), steps in schedule:
        plan = (plan_scale(model, content_layers, style_layers, h, w, budget, pairs_for(h, w), overhead)
                if budget is not None else None)
        tiles: list[Tile] = []
        if plan is not None and plan.tile is not None:
            tiles = TileSchedule(h, w, plan.tile, plan.halo, alignment(model), "staggered", 0).tiles(0)
        scales.append(scale_cost((h, w), steps, plan, tiles, rate))
    return RunCost(scales, budget, device, rate, rate_source)


def structure_for(cfg: Config, weights: VGGWeights | None = None) -> VGGWeights:
    """The shapes of the network ``cfg`` runs (see :func:`~impasto.vgg.structure_of`): ``weights``' when
    given, else the bundled VGG19's architecture when ``cfg.weights`` is unset (nothing is read), else
    ``cfg.weights`` loaded for its shapes."""
    if weights is None:
        weights = structure_of("vgg19") if cfg.weights is None else load_weights(cfg.weights, fmt=cfg.weights_format)
    return weights if all(w.is_meta for w, _ in weights.convs) else structure_of(weights)


def network_of(cfg: Config, weights: VGGWeights | None = None) -> VGGFeatures:
    """The network ``cfg`` runs, as structure only (no weights in memory): :func:`structure_for`'s."""
    net = structure_for(cfg, weights)
    layers = [canonical_layer(x, net.arch) for x in (*cfg.content_layers, *cfg.style_layers)]
    return VGGFeatures(net, layers, cfg.pooling)


def config_cost(cfg: Config, content_hw: tuple[int, int], style_hws: Sequence[tuple[int, int]], *,
                budget: int | None, device: str = "cpu", weights: VGGWeights | None = None,
                rate: float | None = None, rate_source: str | None = None) -> RunCost:
    """What a run of ``cfg`` on a content image of ``content_hw`` (height, width, as loaded) and style
    images of ``style_hws`` will cost, without the engine: the same figures as
    :meth:`StyleTransfer.cost <impasto.engine.StyleTransfer.cost>` for the same budget and device (the
    network from :func:`network_of`, the overhead from :func:`process_overhead`, the time from
    :func:`default_rate` of the device's type unless ``rate`` is given). ``budget``: bytes, already resolved
    (see :func:`~impasto.tiling.memory.resolve_budget`). A setting that cannot run in tiles is refused here
    when a scale needs tiles (:func:`~impasto.tiling.objective.check_tileable`), as the engine refuses it
    when the run starts."""
    from impasto.objective import LossForms
    from impasto.tiling.objective import check_tileable

    model = network_of(cfg, weights)
    arch = model.arch
    content_layers = [canonical_layer(x, arch) for x in cfg.content_layers]
    style_layers = [canonical_layer(x, arch) for x in cfg.style_layers]
    kind = "cpu" if device == "cpu" else "cuda"
    cost = run_cost(model, content_layers, style_layers, cfg.schedule(*content_hw), cfg.history_for, budget,
                    process_overhead(kind, content_hw, style_hws), device,
                    rate if rate is not None else default_rate(kind),
                    rate_source or (GIVEN_RATE if rate is not None else COMMITTED_RATE))
    if any(s.tiles for s in cost.scales):
        check_tileable(LossForms.from_config(cfg), regions=cfg.mask is not None)
    return cost
