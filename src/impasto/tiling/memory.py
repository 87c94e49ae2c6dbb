"""How much memory a scale needs, whole or in tiles, and the tile size that keeps it under a budget.

The model counts bytes of float32 tensors (4 B per value) from the network's channel counts and the
picture's size; it is an estimate of what a step keeps alive at its peak, not a measurement:

- ``network``: the convolutions' weights and biases up to the deepest layer used;
- ``pixels``: V float32 vectors of the picture's size (3·H·W·4 B each): V = 11 for the whole image (the
  pixels, their gradient, L-BFGS's previous gradient, direction and one temporary of its two-loop
  recursion, the trust region's pixels before the step, its difference and blend, the divergence guard's
  lowest-loss pixels, and the scale's inputs: the photo resized to the scale and the painting resized to
  its long side, counted as one picture each), V = 13 in tiles (also the gradient accumulated over tiles
  and its product in the backward call). The scale's inputs were added after a 4096 px run under a 4 GiB
  budget peaked at 4.34 GiB against 3.98 modelled (``docs/perf/print_size_memory_cpu.json``): two
  pictures of that size are 0.32 GiB;
- ``history``: m L-BFGS pairs (s and y): 2·m·3·H·W·4 B;
- ``targets``: the content targets, Σ_content C_l·h_l·w_l·4 B (h_l = H >> P_l), and the Gram targets
  Σ_style C_l²·4 B;
- ``activations``: one forward and backward of the network on an input of h x w: the three copies of the
  input the forward makes (scaled, preprocessed, channels-last; 3·3·h·w·4 B), every ReLU and pooling
  output (kept for the backward: Σ C·h·w·4 B), max pooling's int64 indices (Σ C·h·w·8 B), and three maps of
  the largest size alive at once (a convolution's output before its ReLU in the forward; the gradients
  of an op's output and input in the backward). For the whole image h x w = H x W; in tiles it is the
  crop, min(H, T + 2·halo) x min(W, T + 2·halo) for tiles of side T.

Not counted by the estimate itself: the Python and torch runtime, the input images at their original
size, allocator slack and fragmentation, and activation recomputation (``recompute_activations``, which
the whole-image estimate ignores: it is the conservative side). The budget covers the whole process, so
:func:`plan_scale` takes those as one ``overhead`` (the engine passes :data:`RUNTIME_BYTES` plus the
input images' bytes; see :meth:`~impasto.engine.StyleTransfer.process_overhead`).

**Default budget** (``max_memory`` ``auto``): :func:`auto_budget`, what the machine has available when the
run starts (``MemAvailable`` of ``/proc/meminfo``, plus what this process holds already; on CUDA the GPU's
free memory plus what torch has reserved), less a margin of 10 % (at least 512 MiB). A worker of a local
batch's pool of N takes 1/N of the CPU figure (:func:`set_memory_share`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from impasto.errors import ImpastoError
from impasto.tiling.grid import alignment, op_channels, required_halo
from impasto.units import format_bytes, parse_memory
from impasto.vgg import VGGFeatures

Layers = Sequence[str]
F32 = 4
PIXEL_VECTORS_WHOLE = 11
PIXEL_VECTORS_TILED = 13
RUNTIME_BYTES = {"cpu": 384 * 2**20, "cuda": 256 * 2**20}
"""The fixed part of the process the estimate does not model: on the CPU the Python interpreter, torch
and impasto's imports (236 MiB resident measured after ``import impasto.engine`` on Linux) and allocator
slack; on a GPU the caching allocator's slack (the CUDA context is outside torch's free-memory figure)."""
MARGIN_FRACTION = 0.1
MIN_MARGIN = 512 * 2**20


def _meminfo_available(path: str = "/proc/meminfo") -> int | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _own_rss(path: str = "/proc/self/status") -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0
    return 0


def available_memory(device: str = "cpu") -> int:
    """Bytes this process could use on ``device`` now: on the CPU ``MemAvailable`` plus this process's
    resident set; on CUDA the device's free memory plus what torch's allocator has reserved. An
    ImpastoError where neither can be read (then give ``max_memory`` a size)."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free) + int(torch.cuda.memory_reserved(torch.device(device)))
    avail = _meminfo_available()
    if avail is None:
        raise ImpastoError("max_memory auto reads MemAvailable from /proc/meminfo, which this system does not have; "
                           "give max_memory a size, e.g. 8GiB, or none")
    return avail + _own_rss()


_memory_share = 1


def set_memory_share(workers: int) -> None:
    """Declare this process one of ``workers`` started together on one machine (a local batch's pool):
    each one's ``auto`` budget is then its share of the available memory, not all of it, since every
    worker measures the machine before any of them has allocated."""
    global _memory_share
    if not 1 <= workers <= 4096:
        raise ImpastoError(f"a memory share is 1 to 4096 workers (got {workers})")
    _memory_share = workers


def memory_share() -> int:
    """The number of workers this process shares the machine's memory with (itself included)."""
    return _memory_share


def auto_budget(device: str = "cpu", available: int | None = None, share: int | None = None) -> int:
    """The default budget: ``available`` (default :func:`available_memory`) divided by ``share`` workers
    (default :func:`memory_share`; GPUs are one worker's each), less 10 % of it, at least 512 MiB."""
    avail = available_memory(device) if available is None else available
    n = (memory_share() if share is None else share) if device == "cpu" else 1
    avail //= max(1, n)
    return max(0, avail - max(MIN_MARGIN, int(avail * MARGIN_FRACTION)))


def resolve_budget(max_memory: str | None, device: str = "cpu", share: int | None = None) -> int | None:
    """``Config.max_memory`` in bytes: None for none, :func:`auto_budget` of ``device`` (for one of
    ``share`` workers) for ``auto``, else the size it names."""
    if max_memory is None:
        return None
    if max_memory.strip().lower() == "auto":
        return auto_budget(device, share=share)
    return parse_memory(max_memory)


class MemoryFloorError(ImpastoError):
    """A budget below what a scale needs even in the smallest tiles with one L-BFGS pair (its message is
    the one line to show; ``need`` is that floor in bytes, the process's runtime and inputs included)."""

    def __init__(self, message: str, *, need: int = 0, budget: int = 0, size: tuple[int, int] = (0, 0)) -> None:
        super().__init__(message)
        self.need = need
        self.budget = budget
        self.size = size


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak bytes of one scale, by part (see the module's docstring for each formula)."""

    network: int
    pixels: int
    history: int
    targets: int
    activations: int

    @property
    def total(self) -> int:
        return self.network + self.pixels + self.history + self.targets + self.activations


def network_bytes(model: VGGFeatures) -> int:
    """Bytes of the model's convolution weights and biases."""
    return sum(int(p.numel()) * p.element_size() for p in model.convs.parameters())


def activation_bytes(model: VGGFeatures, height: int, width: int) -> int:
    """Bytes one forward+backward of the network keeps at an input of ``height`` x ``width`` (see the
    module's docstring; ``VGGFeatures.activation_mib`` is the ReLU/pooling/indices part of it)."""
    total = 3 * 3 * height * width * F32
    h, w, biggest = height, width, 0
    for name, c in op_channels(model):
        if name.startswith("pool"):
            h, w = h // 2, w // 2
            if model.pooling == "max":
                total += 8 * c * h * w
        if not name.startswith("conv"):
            total += F32 * c * h * w
        biggest = max(biggest, F32 * c * h * w)
    return total + 3 * biggest


def target_bytes(model: VGGFeatures, content_layers: Layers, style_layers: Layers,
                 height: int, width: int) -> int:
    """Bytes of the content targets at this size and of the Gram targets."""
    channels = dict(op_channels(model))
    total = 0
    for name in content_layers:
        p = model.pools_before(name)
        total += F32 * channels[name] * (height >> p) * (width >> p)
    return total + sum(F32 * channels[n] ** 2 for n in style_layers)


def pair_bytes(height: int, width: int) -> int:
    """Bytes of one L-BFGS pair (s and y) at this size."""
    return 2 * 3 * height * width * F32


def estimate_whole(model: VGGFeatures, content_layers: Layers,
                   style_layers: Layers, height: int, width: int, pairs: int) -> MemoryEstimate:
    """A whole-image scale of ``height`` x ``width`` with ``pairs`` L-BFGS pairs."""
    return MemoryEstimate(network_bytes(model), PIXEL_VECTORS_WHOLE * 3 * height * width * F32,
                          pairs * pair_bytes(height, width),
                          target_bytes(model, content_layers, style_layers, height, width),
                          activation_bytes(model, height, width))


def estimate_tiled(model: VGGFeatures, content_layers: Layers,
                   style_layers: Layers, height: int, width: int, pairs: int, tile: int,
                   halo: int) -> MemoryEstimate:
    """The same scale in tiles of side ``tile`` read with ``halo`` pixels around."""
    crop_h, crop_w = min(height, tile + 2 * halo), min(width, tile + 2 * halo)
    return MemoryEstimate(network_bytes(model), PIXEL_VECTORS_TILED * 3 * height * width * F32,
                          pairs * pair_bytes(height, width),
                          target_bytes(model, content_layers, style_layers, height, width),
                          activation_bytes(model, crop_h, crop_w))


@dataclass(frozen=True)
class ScalePlan:
    """How one scale runs under a memory budget."""

    size: tuple[int, int]
    tile: int | None
    """Tile side in pixels; None: the whole image (the ordinary objective)."""
    halo: int
    pairs: int
    """L-BFGS pairs to keep (the configured number, or fewer to fit the budget)."""
    estimate: MemoryEstimate
    """The estimate of the plan as chosen."""
    whole: MemoryEstimate
    """The whole image with the configured pairs (what would run without a budget)."""
    budget: int
    """The whole process's budget."""
    overhead: int = 0
    """What the process holds besides the estimate (runtime, input images): ``estimate.total + overhead``
    is the plan's peak as modelled."""

    @property
    def peak(self) -> int:
        """The modelled peak of the whole process."""
        return self.estimate.total + self.overhead

    @property
    def tiled(self) -> bool:
        return self.tile is not None


def plan_scale(model: VGGFeatures, content_layers: Layers, style_layers: Layers,
               height: int, width: int, budget: int, pairs: int, overhead: int = 0) -> ScalePlan:
    """The whole image when its estimate with ``pairs`` L-BFGS pairs plus ``overhead`` (the process's
    fixed part that the estimate does not model) is within ``budget``; else tiles.

    In tiles, the L-BFGS history is capped in bytes first: at most half of what the budget leaves after
    the fixed parts (network, pixel vectors, targets) and the smallest tile's activations, at least one
    pair (fewer pairs: a poorer curvature model, so more steps for the same loss; one pair is close to a
    scaled gradient descent). The tile side is then the largest multiple of the network's alignment
    whose estimate fits. A plan whose crops would be the whole picture runs whole (with the capped history).
    A :class:`MemoryFloorError` (an ImpastoError) says how much a budget too small for even the smallest tile
    and one pair needs.
    """
    whole = estimate_whole(model, content_layers, style_layers, height, width, pairs)
    halo, unit = required_halo(model), alignment(model)
    full_budget, budget = budget, budget - overhead
    if whole.total <= budget:
        return ScalePlan((height, width), None, halo, pairs, whole, whole, full_budget, overhead)
    fixed = estimate_tiled(model, content_layers, style_layers, height, width, 0, unit, halo).total
    pair = pair_bytes(height, width)
    if fixed + pair > budget:
        raise MemoryFloorError(
            f"max_memory {format_bytes(full_budget)} is below the {format_bytes(fixed + pair + overhead)} a "
            f"{width}x{height} scale needs at the least in tiles (runtime and input images, pixels, optimiser "
            "vectors, content targets, one L-BFGS pair, the smallest tile); raise max_memory or lower the size",
            need=fixed + pair + overhead, budget=full_budget, size=(height, width))
    m = max(1, min(pairs, (budget - fixed) // 2 // pair))
    best = unit
    side = -(-max(height, width) // unit) * unit
    for t in range(unit, side + 1, unit):
        if estimate_tiled(model, content_layers, style_layers, height, width, m, t, halo).total > budget:
            break
        best = t
    if best + 2 * halo >= height and best + 2 * halo >= width:  # every crop would be the whole picture
        return ScalePlan((height, width), None, halo, m,
                         estimate_whole(model, content_layers, style_layers, height, width, m), whole, full_budget,
                         overhead)
    return ScalePlan((height, width), best, halo, m,
                     estimate_tiled(model, content_layers, style_layers, height, width, m, best, halo), whole,
                     full_budget, overhead)
