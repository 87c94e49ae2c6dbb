"""Where the tiles are: the halo the network needs, the alignment of tile borders, the tiles of a step.

**Halo.** VGG's 3x3 convolutions pad with zeros, so a feature computed from a crop differs from the
whole image's near the crop's border. Walk the network from the input: count ``c``, how many positions
at the current resolution are wrong at a crop border that is not an image border: ``c = 0`` at the
pixels, ``c ← c + 1`` at every 3x3 convolution (padding 1), ``c ← ⌈c / 2⌉`` at every 2x2 pooling of stride 2
(max or average; the crop's origin is on the pooling grid, see alignment). A layer ``l`` after ``P_l``
poolings is exact on a tile's own positions when the crop reaches ``halo_l = c_l · 2^P_l`` input
pixels past the tile on every side that is not an image border. The halo is
``max_l halo_l`` over the layers used, rounded up to the alignment. For VGG19 this gives 80 px for
``relu5_1`` (c = 5 at 1/16 resolution; its receptive field is 156 px, radius 78) and 40 px for ``relu4_2``.

**Alignment.** Every tile border (and so every crop origin, tile border − halo) is a multiple of
``2^P``, P the poolings before the deepest layer used, so that each crop's pooling grid is the whole
image's and a tile's own positions at layer l are exactly the rows ``[r0 / 2^P_l, r1 / 2^P_l)`` (the last
tile of a side keeps the whole image's floor, as ``max_pool2d`` does). Tiles therefore partition every
feature map exactly: each position is counted once.

**Moving borders.** :class:`TileSchedule` gives the tiles of evaluation k: the grid shifted by an
offset that changes with k (staggered: a fixed stride through the possible offsets, so consecutive
evaluations never share a border; or random, drawn from the run's seed and k). With a sufficient halo the
loss and gradient do not depend on where the borders are (up to float rounding); the moving borders are
for the inexact cases (a halo deliberately smaller) and against any residue of the borders.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from impasto.errors import ImpastoError
from impasto.vgg import VGGFeatures
from impasto.vgg.features import layer_names

Box = tuple[int, int, int, int]
"""(row start, row stop, column start, column stop), stops exclusive, in whole-image pixels."""


def network_ops(model: VGGFeatures) -> list[str]:
    """The canonical op names the model runs, in order (up to its deepest requested layer)."""
    names = layer_names(model.arch)
    return names[: names.index(model.deepest) + 1]


def op_channels(model: VGGFeatures) -> list[tuple[str, int]]:
    """(op, channels of its output) for every op the model runs."""
    out: list[tuple[str, int]] = []
    c, k = 3, 0
    for name in network_ops(model):
        if name.startswith("conv"):
            c = int(model.convs[k].out_channels)  # type: ignore[arg-type]
            k += 1
        out.append((name, c))
    return out


def layer_halos(model: VGGFeatures) -> dict[str, int]:
    """Per requested layer, the input pixels a crop needs past a tile's border for that layer's maps to
    be exact on the tile: ``c_l · 2^P_l`` (see the module's docstring)."""
    c, pools = 0, 0
    out: dict[str, int] = {}
    wanted = set(model.layers)
    for name in network_ops(model):
        if name.startswith("conv"):
            c += 1
        elif name.startswith("pool"):
            c, pools = math.ceil(c / 2), pools + 1
        if name in wanted:
            out[name] = c * 2**pools
    return out


def alignment(model: VGGFeatures) -> int:
    """2^P, P the poolings before (or at) the deepest requested layer: tile borders are multiples of it."""
    return int(2 ** model.pools_before(model.deepest))


def required_halo(model: VGGFeatures) -> int:
    """The smallest halo that makes every requested layer exact: max over layers, rounded up to
    :func:`alignment`."""
    unit = alignment(model)
    need = max(layer_halos(model).values())
    return unit * math.ceil(need / unit)


def cuts(length: int, tile: int, offset: int, unit: int) -> list[int]:
    """Tile borders along one side: 0, offset + k·tile inside (0, length), length; a piece shorter than
    ``unit`` (the first or the last) is merged into its neighbour, so every crop is at least ``unit``
    wide (the network needs 2^P pixels)."""
    if tile <= 0 or tile % unit or offset % unit:
        raise ValueError(f"tile {tile} and offset {offset} must be positive multiples of {unit}")
    inner = list(range(offset % tile or tile, length, tile))
    borders = [0, *inner, length]
    if len(borders) > 2 and borders[1] - borders[0] < unit:
        borders.pop(1)
    if len(borders) > 2 and borders[-1] - borders[-2] < unit:
        borders.pop(-2)
    return borders


@dataclass(frozen=True)
class Tile:
    """One tile: the pixels it owns and the pixels it reads."""

    core: Box
    """The pixels (and, scaled down, feature positions) this tile counts."""
    net: Box
    """What the network sees: the core plus the halo, clipped to the image."""
    read: Box
    """What the tile's functions receive: ``net`` plus, when the halo is 0, the one row and column after
    the core that the total variation's last differences reach."""


def tile_grid(height: int, width: int, tile: int, halo: int, unit: int, offset: tuple[int, int] = (0, 0)) -> list[Tile]:
    """The tiles of a ``height`` x ``width`` picture: ``tile``-pixel squares (multiples of ``unit``)
    whose grid is shifted by ``offset`` (multiples of ``unit``), each read with ``halo`` pixels around."""
    if halo < 0 or halo % unit:
        raise ValueError(f"halo {halo} must be a multiple of {unit}")
    rows = cuts(height, tile, offset[0], unit)
    cols = cuts(width, tile, offset[1], unit)
    tv = max(halo, 1)
    tiles = []
    for r0, r1 in zip(rows, rows[1:]):
        for c0, c1 in zip(cols, cols[1:]):
            net = (max(0, r0 - halo), min(height, r1 + halo), max(0, c0 - halo), min(width, c1 + halo))
            read = (net[0], min(height, r1 + tv), net[2], min(width, c1 + tv))
            tiles.append(Tile((r0, r1, c0, c1), net, read))
    return tiles


def coverage(height: int, width: int, tiles: list[Tile]) -> list[list[int]]:
    """How many tiles own each pixel (a partition: all ones)."""
    count = [[0] * width for _ in range(height)]
    for t in tiles:
        r0, r1, c0, c1 = t.core
        for r in range(r0, r1):
            row = count[r]
            for c in range(c0, c1):
                row[c] += 1
    return count


SCHEDULES = ("staggered", "random")


@dataclass(frozen=True)
class TileSchedule:
    """The tiles of every evaluation of one scale: the grid of :func:`tile_grid` shifted by an offset
    that depends on the evaluation's number ``k`` alone, so a resumed run that knows k gets the same
    tiles.

    ``staggered``: offset_k = (k·a mod n, k·b mod n)·unit with n = tile / unit and a, b coprime with n
    near n/φ and n/φ² (a low-discrepancy walk), so consecutive evaluations never share a border when
    n > 1. ``random``: offsets drawn uniformly from ``random.Random(f"{seed}:{k}")``; consecutive
    evaluations share a border with probability 1/n per axis. A departure from the usual tiling tools
    (fixed tiles, each stylised alone), not from the paper, which has no tiles.
    """

    height: int
    width: int
    tile: int
    halo: int
    unit: int
    mode: str = "staggered"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in SCHEDULES:
            raise ImpastoError(f"tile schedule must be one of {', '.join(SCHEDULES)} (got {self.mode!r})")

    def offset(self, k: int) -> tuple[int, int]:
        n = self.tile // self.unit
        if n <= 1:
            return (0, 0)
        if self.mode == "random":
            rng = random.Random(f"{self.seed}:{k}")
            return (rng.randrange(n) * self.unit, rng.randrange(n) * self.unit)
        a, b = _coprime_near(n, n / 1.618034), _coprime_near(n, n / 2.618034)
        return ((k * a) % n * self.unit, (k * b) % n * self.unit)

    def tiles(self, k: int) -> list[Tile]:
        return tile_grid(self.height, self.width, self.tile, self.halo, self.unit, self.offset(k))


def _coprime_near(n: int, x: float) -> int:
    """The integer in [1, n) coprime with n nearest to x (1 when none is closer)."""
    best = 1
    for a in range(1, n):
        if math.gcd(a, n) == 1 and abs(a - x) < abs(best - x):
            best = a
    return best
