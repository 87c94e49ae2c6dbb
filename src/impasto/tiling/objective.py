"""The exact tiled objective: one scale's loss and its gradient w.r.t. the whole picture, tile by tile.

The style loss of Gatys et al. depends on the picture through each layer's Gram matrix, a *sum over
positions*: G = Σ_k F_k F_kᵀ. So with tiles that partition every feature map (:mod:`~impasto.tiling.grid`)

- **pass 1** (no graph): each tile returns its raw sums S_l = Σ_{k in tile} F_k F_kᵀ (and Σ F_k for the
  ``w2`` kind) and its position count; their sums are the whole picture's statistics, exactly;
- **global**: the style loss is a function of those statistics alone, L_s = f(S); its value and
  K_l = ∂f/∂S_l (a C x C matrix per layer) come from autograd on the tiny statistics;
- **pass 2**: each tile back-propagates the surrogate ⟨K_l, S_l(tile)⟩ + its content term + its share of
  the total variation, whose gradient w.r.t. the tile's pixels is exactly the whole loss's gradient
  restricted to what the tile's positions contribute (chain rule with K fixed); the gradients of the
  crops, overlapping in the halos, add up to the whole picture's gradient.

Both passes are pure functions of (the tile's pixel crop, fixed data): :func:`tile_statistics` and
:func:`tile_backward`, so tiles can run on other devices or workers and be summed centrally.

Departures from a whole-image evaluation (not from the paper): the statistics are summed over tiles in
float64 and the loss is then evaluated in the pixels' dtype (float32) as usual, so the result equals the
whole image's up to float rounding (the tests hold it to a relative 1e-4); each tile runs the network twice (pass 1 and
pass 2) and the halos are computed by every tile that reads them, so a step costs about
2·(1 + halo overhead) forwards and one backward instead of one of each.

Max pooling's gradient is not defined where a pooling window has a tie; at near-ties the whole image's
own gradient depends on float rounding (on a flat synthetic picture it changes by half its size between
channels-last and contiguous layouts), and so does the tiled one: equal values, different subgradients.

What cannot be tiled is refused (:func:`check_tileable`): a term that needs the whole picture at once
and is not a sum over positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from impasto.errors import ImpastoError
from impasto.losses import content_loss
from impasto.losses.content import content_scale
from impasto.losses.gram import gram_banded, gram_inner, normalise_gram
from impasto.losses.style import w2_loss
from impasto.losses.tv import tv_penalty
from impasto.objective import (
    LossForms,
    LossTerms,
    LossWeights,
    Objective,
    Slot,
    blend_statistics,
    gram_distance,
    relative_unit,
    straight_through_clamp,
)
from impasto.tiling.grid import Box, Tile, TileSchedule, alignment, op_channels, required_halo, tile_grid
from impasto.vgg import VGGFeatures


def check_tileable(forms: LossForms, *, regions: bool = False, extra: str | None = None) -> None:
    """Raise a one-line ImpastoError naming the first setting the tiled objective cannot compute."""
    if forms.style_kind == "hist":
        raise ImpastoError("style_kind 'hist' cannot run in tiles: its histogram term ranks every position of the "
                           "whole picture at once; use style_kind gram or w2, or raise max_memory")
    if forms.normalize_gradients:
        raise ImpastoError("normalize_gradients cannot run in tiles: it divides each term's gradient by its L1 norm "
                           "over the whole picture; turn it off or raise max_memory")
    if regions:
        raise ImpastoError("mask/regions cannot run in tiles (guided Gram matrices are not implemented tile by tile); "
                           "drop the mask or raise max_memory")
    if extra is not None:
        raise ImpastoError(f"the extra loss {extra!r} (a front-end's term, e.g. video's temporal loss) cannot run in "
                           "tiles; raise max_memory")


@dataclass(frozen=True)
class TileSpec:
    """The fixed description of the loss that a tile's functions need besides its pixels (no tensors,
    no model: it pickles)."""

    height: int
    width: int
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    pools: dict[str, int]
    """Poolings before each layer: the layer's map is the picture's size >> this."""
    forms: LossForms
    pixel_scale: float
    content_coef: tuple[float, ...]
    """Per content layer, k with term = k · Σ (F − P)² over the layer (weights, form and balance folded in)."""
    tv_coef: float
    """The TV term is tv_coef · Σ penalty(neighbour differences)."""
    min_side: int
    """The network's smallest input side (a smaller crop would be upsampled by ``fit_input``)."""

    def layer_box(self, name: str, core: Box) -> Box:
        """``core`` in the layer's positions (the whole map's floor at the picture's far sides)."""
        p = self.pools[name]
        r0, r1, c0, c1 = core
        bottom = self.height >> p if r1 == self.height else r1 >> p
        right = self.width >> p if c1 == self.width else c1 >> p
        return (r0 >> p, bottom, c0 >> p, right)


@dataclass
class LayerStats:
    """One layer's additive statistics over some positions."""

    gram: Tensor
    """Σ F_k F_kᵀ, [1, C, C], float64."""
    total: Tensor | None
    """Σ F_k, [C], float64 (only for the ``w2`` kind)."""
    count: int

    def __add__(self, other: LayerStats) -> LayerStats:
        total = None if self.total is None or other.total is None else self.total + other.total
        return LayerStats(self.gram + other.gram, total, self.count + other.count)


Stats = dict[str, LayerStats]


def _crop_features(model: VGGFeatures, pixels: Tensor, tile: Tile, spec: TileSpec) -> dict[str, Tensor]:
    """The requested layers' maps on the tile's own positions, from ``pixels``: the tile's ``read``
    crop [1, 3, h, w] in pixel_scale units (already clamped if the forms say so)."""
    nh, nw = tile.net[1] - tile.net[0], tile.net[3] - tile.net[2]
    whole = tile.net == (0, spec.height, 0, spec.width)
    if min(nh, nw) < spec.min_side and not whole:
        raise ValueError(f"a {nh}x{nw} crop is smaller than the network's {spec.min_side} px (tile too small)")
    feats = model(pixels[:, :, :nh, :nw] / spec.pixel_scale)
    out: dict[str, Tensor] = {}
    for name, f in feats.items():
        p = spec.pools[name]
        r0, r1, c0, c1 = spec.layer_box(name, tile.core)
        dr, dc = tile.net[0] >> p, tile.net[2] >> p
        out[name] = f[:, :, r0 - dr : r1 - dr, c0 - dc : c1 - dc]
    return out


def _prepared(pixels: Tensor, spec: TileSpec) -> Tensor:
    return straight_through_clamp(pixels, 0.0, spec.pixel_scale) if spec.forms.clamp_input else pixels


@torch.no_grad()
def tile_statistics(model: VGGFeatures, pixels: Tensor, tile: Tile, spec: TileSpec) -> Stats:
    """Pass 1 for one tile: each style layer's raw Gram sum (and feature sum for ``w2``) over the
    tile's own positions. ``pixels`` is the tile's ``read`` crop of the picture."""
    feats = _crop_features(model, _prepared(pixels, spec), tile, spec)
    out: Stats = {}
    for name in spec.style_layers:
        f = feats[name]
        total = f.sum(dim=(0, 2, 3)).double() if spec.forms.style_kind == "w2" else None
        out[name] = LayerStats(gram_banded(f).double(), total, int(f.shape[2] * f.shape[3]))
    return out


def sum_statistics(parts: Sequence[Stats]) -> Stats:
    """The statistics of the union of disjoint sets of positions."""
    out: Stats = {}
    for part in parts:
        for name, s in part.items():
            out[name] = s if name not in out else out[name] + s
    return out


@dataclass
class StyleGradient:
    """The fixed global data of pass 2 for one layer: K = ∂L_style/∂(Σ F Fᵀ), and ∂L/∂(Σ F) for w2."""

    gram: Tensor
    total: Tensor | None = None


@dataclass
class TileResult:
    """Pass 2 of one tile: the gradient of the tile's ``read`` crop and the tile's loss parts."""

    grad: Tensor
    content: dict[str, Tensor]
    tv: Tensor


def tile_backward(
    model: VGGFeatures, pixels: Tensor, tile: Tile, spec: TileSpec, style: dict[str, StyleGradient],
    content: dict[str, Tensor],
) -> TileResult:
    """Pass 2 for one tile: d/d(pixels) of ⟨K_l, Σ_tile F Fᵀ⟩ (+ ⟨k_l, Σ_tile F⟩) + the tile's content and
    TV terms. ``pixels``: the tile's ``read`` crop; ``content``: the content targets on the tile's own
    positions (see :meth:`TiledObjective.content_crop`)."""
    crop = pixels.detach().requires_grad_(True)
    with torch.enable_grad():
        x = _prepared(crop, spec)
        feats = _crop_features(model, x, tile, spec)
        surrogate = x.new_zeros(())
        for name in spec.style_layers:
            f, k = feats[name], style[name]
            surrogate = surrogate + gram_inner(f, k.gram)
            if k.total is not None:
                surrogate = surrogate + (k.total * f.sum(dim=(0, 2, 3))).sum()
        terms: dict[str, Tensor] = {}
        total = surrogate
        for name, coef in zip(spec.content_layers, spec.content_coef):
            terms[name] = coef * (feats[name] - content[name]).pow(2).sum()
            total = total + terms[name]
        tv = x.new_zeros(())
        if spec.tv_coef > 0:
            rr, cc = tile.read[0], tile.read[2]
            r0, r1, c0, c1 = tile.core
            down = x[:, :, r0 - rr : min(r1 + 1, spec.height) - rr, c0 - cc : c1 - cc]
            across = x[:, :, r0 - rr : r1 - rr, c0 - cc : min(c1 + 1, spec.width) - cc]
            form = spec.forms.tv
            tv = spec.tv_coef * (tv_penalty(down[:, :, 1:, :] - down[:, :, :-1, :], form)
                                 + tv_penalty(across[:, :, :, 1:] - across[:, :, :, :-1], form))
            total = total + tv
        (grad,) = torch.autograd.grad(total, crop)
    return TileResult(grad, {n: t.detach() for n, t in terms.items()}, tv.detach())


class _Precomputed(torch.autograd.Function):
    """A loss value whose gradient w.r.t. ``x`` was computed already (by the tile passes): the engine's
    evaluator calls ``backward`` as for any objective and ``x.grad`` becomes that gradient."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, value: Tensor, grad: Tensor) -> Tensor:
        ctx.save_for_backward(grad)
        return value.clone()

    @staticmethod
    def backward(ctx: Any, out: Tensor) -> tuple[Tensor, None, None]:
        (grad,) = ctx.saved_tensors
        return out * grad, None, None


def _crop(x: Tensor, box: Box) -> Tensor:
    return x[:, :, box[0] : box[1], box[2] : box[3]]


class TiledObjective:
    """One scale's objective evaluated tile by tile; called like :class:`~impasto.objective.Objective`
    (pixels -> :class:`LossTerms`, with the gradient reaching ``x`` through ``backward``).

    ``base`` holds the targets, forms, weights and balance divisors, exactly as the whole-image objective
    has them; only how they are evaluated differs. ``evaluations`` counts calls: the tiles of call k
    are ``schedule.tiles(k)``.
    """

    def __init__(self, base: Objective, schedule: TileSchedule, spec: TileSpec) -> None:
        self.base = base
        self.model = base.model
        self.schedule = schedule
        self.spec = spec
        self.evaluations = 0
        self.last_tiles: list[Tile] = []
        self.executor: Any = None
        """A :class:`~impasto.tiling.executors.TileExecutor` that runs the tiles (None: this process, here)."""

    # -- construction -----------------------------------------------------------------------------
    @staticmethod
    def spec_for(base: Objective, height: int, width: int) -> TileSpec:
        """The tile spec of ``base`` at a picture of ``height`` x ``width``."""
        model, forms, wts = base.model, base.forms, base.weights
        pools = {n: model.pools_before(n) for n in model.layers}
        coefs = []
        for name, w in zip(base.content_layers, wts.content_layers):
            t = base.content_targets[name]
            coef = wts.content * w * content_scale(forms.content, tuple(t.shape))
            coefs.append(coef / base.content_norms[name] if name in base.content_norms else coef)
        tv = wts.tv / base.unit if wts.tv > 0 else 0.0
        return TileSpec(height, width, tuple(base.content_layers), tuple(base.style_layers), pools, forms,
                        base.pixel_scale, tuple(coefs), tv, model.min_side())

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        model: VGGFeatures,
        content: Tensor,
        styles: Sequence[Tensor],
        blend: list[float],
        *,
        content_layers: Sequence[str],
        style_layers: Sequence[str],
        forms: LossForms,
        weights: LossWeights,
        pixel_scale: float,
        tile: int,
        halo: int | None = None,
        schedule: str = "staggered",
        seed: int = 0,
    ) -> TiledObjective:
        """Targets as :meth:`Objective.build` computes them (same arguments; regions and extra terms are
        refused by :func:`check_tileable`), but the content and style images also run through the
        network in tiles, so no whole-image forward is needed at any size. ``tile``: the core side in
        pixels (a multiple of :func:`~impasto.tiling.grid.alignment`); ``halo``: default
        :func:`~impasto.tiling.grid.required_halo` (smaller is inexact, for tests and figures)."""
        check_tileable(forms)
        unit = alignment(model)
        halo = required_halo(model) if halo is None else halo
        h, w = int(content.shape[2]), int(content.shape[3])
        # Layers, pools and forms only (the coefficients need the targets); the images are in [0, 1].
        probe = TileSpec(h, w, tuple(content_layers), tuple(style_layers),
                         {n: model.pools_before(n) for n in model.layers}, forms, 1.0, (), 0.0, model.min_side())
        # Content targets: each tile writes its own positions of each content layer.
        content_t: dict[str, Tensor] = {}
        for t in tile_grid(h, w, tile, halo, unit):
            feats = _crop_features(model, _crop(content, t.read), t, probe)
            for name in content_layers:
                f = feats[name]
                if name not in content_t:
                    p = probe.pools[name]
                    content_t[name] = f.new_zeros((1, f.shape[1], h >> p, w >> p))
                r0, r1, c0, c1 = probe.layer_box(name, t.core)
                content_t[name][:, :, r0:r1, c0:c1] = f
        # Style targets from the style images' summed statistics (blended as layer_target blends them).
        per_style: list[Stats] = []
        for s in styles:
            sh, sw = int(s.shape[2]), int(s.shape[3])
            sspec = TileSpec(sh, sw, (), tuple(style_layers), probe.pools, forms, 1.0, (), 0.0, probe.min_side)
            per_style.append(sum_statistics([tile_statistics(model, _crop(s, t.read), t, sspec)
                                             for t in tile_grid(sh, sw, tile, halo, unit)]))
        targets = {}
        for name in style_layers:
            dt = content.dtype
            grams = [normalise_gram(st[name].gram.to(dt), forms.gram_norm, float(st[name].count)) for st in per_style]
            moms = [(tot.to(dt) / st[name].count, st[name].gram[0].to(dt) / st[name].count)
                    for st in per_style if (tot := st[name].total) is not None]
            targets[name] = blend_statistics(grams, moms, blend, forms)
        slot = Slot(targets)
        content_norms: dict[str, float] = {}
        if forms.balance == "relative":
            # The divisors Objective.build takes from an all-zero feature map, from its statistics (zero).
            content_norms = {n: relative_unit(content_loss(torch.zeros_like(t), t, forms.content))
                             for n, t in content_t.items()}
            layer_sum = sum(weights.style_layers) or 1.0
            for name in style_layers:
                p, c = probe.pools[name], _channels(model, name)
                area = float((h >> p) * (w >> p))
                blank = LayerStats(content.new_zeros((1, c, c)), content.new_zeros((c,)), int(area))
                slot.norms[name] = layer_sum * relative_unit(_stats_loss(blank, slot, name, forms, h * w))
        base = Objective(model, content_layers, style_layers, content_t, [slot], forms, weights, pixel_scale,
                         None, content_norms)
        spec = cls.spec_for(base, h, w)
        return cls(base, TileSchedule(h, w, tile, halo, unit, schedule, seed), spec)

    # -- evaluation -------------------------------------------------------------------------------
    def content_crop(self, tile: Tile) -> dict[str, Tensor]:
        """The content targets on ``tile``'s own positions (what :func:`tile_backward` takes)."""
        out = {}
        for name, t in self.base.content_targets.items():
            r0, r1, c0, c1 = self.spec.layer_box(name, tile.core)
            out[name] = t[:, :, r0:r1, c0:c1]
        return out

    def style_gradient(self, stats: Stats, dtype: torch.dtype = torch.float32,
                       ) -> tuple[dict[str, Tensor], dict[str, StyleGradient]]:
        """The weighted style term of each layer from the whole picture's statistics (evaluated in
        ``dtype``, the pixels'), and its gradient w.r.t. those statistics (the fixed data of pass 2)."""
        base, wts = self.base, self.base.weights
        slot = base.slots[0]
        terms: dict[str, Tensor] = {}
        leaves: list[Tensor] = []
        with torch.enable_grad():
            total = None
            for name, w in zip(base.style_layers, wts.style_layers):
                s = stats[name]
                gram = s.gram.to(dtype).requires_grad_(True)
                tot = s.total.to(dtype).requires_grad_(True) if s.total is not None else None
                leaves += [gram] + ([tot] if tot is not None else [])
                d = _stats_loss(LayerStats(gram, tot, s.count), slot, name, base.forms,
                                self.spec.height * self.spec.width)
                term = (wts.style * w / slot.norms.get(name, 1.0)) * d
                terms[name] = term
                total = term if total is None else total + term
            raw = (torch.autograd.grad(total, leaves, allow_unused=True)
                   if total is not None and total.requires_grad else [None] * len(leaves))
        grads = [g.detach() if g is not None else torch.zeros_like(leaf) for g, leaf in zip(raw, leaves)]
        out: dict[str, StyleGradient] = {}
        i = 0
        for name in base.style_layers:
            k = StyleGradient(grads[i])
            i += 1
            if stats[name].total is not None:
                k.total = grads[i]
                i += 1
            out[name] = k
        return {n: t.detach() for n, t in terms.items()}, out

    def __call__(self, x: Tensor) -> LossTerms:
        """The loss of pixels ``x`` [1, 3, H, W] in pixel_scale units; ``backward`` on ``total`` sets
        ``x.grad`` to the whole picture's gradient."""
        tiles = self.schedule.tiles(self.evaluations)
        self.evaluations += 1
        self.last_tiles = tiles
        pixels = x.detach()
        if self.executor is not None:
            return self._call_executor(x, tiles)
        stats = sum_statistics([tile_statistics(self.model, _crop(pixels, t.read), t, self.spec) for t in tiles])
        style_terms, coeffs = self.style_gradient(stats, pixels.dtype)
        grad = torch.zeros_like(pixels)
        content = {n: pixels.new_zeros(()) for n in self.base.content_layers}
        tv = pixels.new_zeros(())
        for t in tiles:
            res = tile_backward(self.model, _crop(pixels, t.read), t, self.spec, coeffs, self.content_crop(t))
            _crop(grad, t.read).add_(res.grad)
            for n, v in res.content.items():
                content[n] = content[n] + v
            tv = tv + res.tv
        zero = pixels.new_zeros(())
        per = {f"content/{n}": v for n, v in content.items()}
        per.update({f"style/{n}": v for n, v in style_terms.items()})
        lc = sum(content.values(), zero)
        ls = sum(style_terms.values(), zero)
        value = lc + ls + tv
        return LossTerms(_Precomputed.apply(x, value, grad), lc, ls, tv, per)  # type: ignore[no-untyped-call]

    def _call_executor(self, x: Tensor, tiles: list[Tile]) -> LossTerms:
        """:meth:`__call__` with the tiles run by ``self.executor``; the sums are taken here."""
        pixels, ex, ckpt = x.detach(), self.executor, bool(getattr(self.model, "checkpointing", False))
        stats = ex.statistics(pixels, tiles, self.spec, ckpt)
        style_terms, coeffs = self.style_gradient(stats, pixels.dtype)
        res = ex.backward(pixels, tiles, self.spec, coeffs, [self.content_crop(t) for t in tiles], ckpt)
        grad = torch.zeros_like(pixels)
        for t, g in zip(tiles, res.grads):
            _crop(grad, t.read).add_(g)
        zero = pixels.new_zeros(())
        content = {n: res.content.get(n, zero) for n in self.base.content_layers}
        per = {f"content/{n}": v for n, v in content.items()}
        per.update({f"style/{n}": v for n, v in style_terms.items()})
        lc = sum(content.values(), zero)
        ls = sum(style_terms.values(), zero)
        tv = res.tv.to(pixels.dtype)
        value = lc + ls + tv
        return LossTerms(_Precomputed.apply(x, value, grad), lc, ls, tv, per)  # type: ignore[no-untyped-call]


def _channels(model: VGGFeatures, name: str) -> int:
    return dict(op_channels(model))[name]


def _stats_loss(s: LayerStats, slot: Slot, name: str, forms: LossForms, image_positions: int) -> Tensor:
    """One layer's style distance (unweighted) from its statistics: what
    :func:`~impasto.objective.slot_layer_loss` computes from the features, without a mask."""
    t = slot.layers[name]
    if forms.style_kind == "w2":
        assert t.w2 is not None and s.total is not None
        return w2_loss(s.total / s.count, s.gram[0] / s.count, t.w2)
    g, area = normalise_gram(s.gram, forms.gram_norm, float(s.count))
    return gram_distance(g, area, t, forms, int(s.gram.shape[1]), image_positions)
