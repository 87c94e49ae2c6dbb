"""Artist controls: style statistics (Gram, W2, histogram), region masks and their validation.

The engine asks this module for two things at each scale: :func:`build_style_targets` (once, under
no_grad) and :func:`style_loss` (every evaluation). A *slot* is one style target with the region it
applies to: without a mask there is one slot (the blend of all styles over the whole image); with
``--mask`` there is one slot per region that names a style, each matched with guided Gram matrices
(Gatys et al. 2017) or their W2/histogram counterparts restricted to the region.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto import losses
from impasto.color import PRESERVE_COLOR_MODES
from impasto.errors import ImpastoError
from impasto.style_stats import (
    W2Target,
    blend_quantiles,
    hist_loss,
    masked_gram,
    moments,
    normalize_grad,
    sorted_target,
    w2_loss,
)

if TYPE_CHECKING:
    from impasto.config import Config

STYLE_KINDS = ("gram", "w2", "hist")
"""``gram``: Gatys; ``w2``: mean + covariance (Wasserstein-2); ``hist``: Gram + Risser histogram term."""

NAMED_COLORS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0), "white": (255, 255, 255), "red": (255, 0, 0), "green": (0, 255, 0),
    "blue": (0, 0, 255), "yellow": (255, 255, 0), "cyan": (0, 255, 255), "magenta": (255, 0, 255),
    "gray": (128, 128, 128), "grey": (128, 128, 128),
}

CONTENT_REGION = "content"


# -- validation --------------------------------------------------------------------------------------
def validate(cfg: Config) -> None:
    """The artist-control fields of ``cfg``; one-line ImpastoError naming the bad field."""
    if cfg.preserve_color not in PRESERVE_COLOR_MODES:
        raise ImpastoError(
            f"preserve_color must be one of {', '.join(PRESERVE_COLOR_MODES)} (got {cfg.preserve_color!r})"
        )
    if cfg.style_kind not in STYLE_KINDS:
        raise ImpastoError(f"style_kind must be one of {', '.join(STYLE_KINDS)} (got {cfg.style_kind!r})")
    if not (math.isfinite(cfg.hist_weight) and cfg.hist_weight >= 0):
        raise ImpastoError(f"hist_weight must be a finite number >= 0 (got {cfg.hist_weight})")
    if cfg.ema is not None and not (math.isfinite(cfg.ema) and 0.0 < cfg.ema < 1.0):
        raise ImpastoError(f"ema must be between 0 and 1, e.g. 0.99 (got {cfg.ema})")
    if cfg.tol is not None and not (math.isfinite(cfg.tol) and cfg.tol > 0):
        raise ImpastoError(f"tol must be a number > 0, in 0-255 pixel units (got {cfg.tol})")
    if cfg.tol_window < 1:
        raise ImpastoError(f"tol_window must be >= 1 (got {cfg.tol_window})")
    if cfg.scale_steps is not None and (not cfg.scale_steps or any(s < 0 for s in cfg.scale_steps)):
        raise ImpastoError(f"scale_steps must be whole numbers >= 0, one per scale (got {cfg.scale_steps})")
    if cfg.regions and not cfg.mask:
        raise ImpastoError("regions need a mask image (--mask FILE)")
    if cfg.mask and not cfg.regions:
        raise ImpastoError("a mask needs at least one region, e.g. --region red=1 --region blue=content")
    seen: set[tuple[int, int, int]] = set()
    for spec in cfg.regions:
        color, target = parse_region(spec)
        if color in seen:
            raise ImpastoError(f"region colour {spec.split('=')[0]!r} is given twice")
        seen.add(color)
        del target
    if cfg.regions and all(parse_region(r)[1] == CONTENT_REGION for r in cfg.regions):
        raise ImpastoError("every region keeps the content: name a style for at least one region")


def parse_color(text: str) -> tuple[int, int, int]:
    """``red`` / ``#ff0000`` / ``255,0,0`` -> (r, g, b) in 0-255."""
    t = text.strip().lower()
    if t in NAMED_COLORS:
        return NAMED_COLORS[t]
    m = re.fullmatch(r"#?([0-9a-f]{6})", t)
    if m:
        v = int(m.group(1), 16)
        return (v >> 16) & 255, (v >> 8) & 255, v & 255
    parts = t.split(",")
    if len(parts) == 3 and all(p.strip().isdigit() and int(p) <= 255 for p in parts):
        return int(parts[0]), int(parts[1]), int(parts[2])
    names = ", ".join(sorted(NAMED_COLORS))
    raise ImpastoError(f"unknown region colour {text!r} (use {names}, #rrggbb or r,g,b)")


def parse_region(spec: str) -> tuple[tuple[int, int, int], int | str]:
    """``COLOR=N`` (1-based style number), ``COLOR=content`` or ``COLOR=PATH`` -> (rgb, N-1, 'content'
    or the path). Paths are for the command line, which turns them into style numbers."""
    if "=" not in spec:
        raise ImpastoError(f"a region is COLOR=STYLE, e.g. red=1 or blue=content (got {spec!r})")
    color_text, target = spec.rsplit("=", 1)
    color = parse_color(color_text)
    target = target.strip()
    if target.lower() == CONTENT_REGION:
        return color, CONTENT_REGION
    if target.isdigit() and int(target) >= 1:
        return color, int(target) - 1
    if not target or target.isdigit() or target.lstrip("-").isdigit():
        raise ImpastoError(f"region {spec!r}: the style must be a style number from 1, a style image or 'content'")
    return color, target


# -- masks -------------------------------------------------------------------------------------------
@dataclass
class RegionMasks:
    """One-hot region maps of the mask image at its own resolution, one per ``--region``."""

    onehot: Tensor
    """[R, H, W] float, each pixel 1 in the region whose colour is nearest to the pixel's."""
    targets: list[int | str]
    """Per region: the style index, or 'content'."""

    @classmethod
    def from_image(cls, mask_rgb: Tensor, regions: Sequence[str], n_styles: int) -> RegionMasks:
        parsed = [parse_region(r) for r in regions]
        for spec, (_, t) in zip(regions, parsed):
            if isinstance(t, str) and t != CONTENT_REGION:
                raise ImpastoError(f"region {spec!r}: give the style number (from 1) of one of the style images")
            if isinstance(t, int) and t >= n_styles:
                raise ImpastoError(f"region {spec!r} names style {t + 1}, but only {n_styles} style(s) given")
        cols = torch.tensor([c for c, _ in parsed], dtype=torch.float32) / 255.0  # [R, 3]
        px = mask_rgb.reshape(3, -1).T  # [HW, 3]
        # Nearest listed colour: anti-aliased edges and JPEG noise in a hand-painted mask still land
        # in a region.
        label = torch.cdist(px, cols).argmin(dim=1)
        onehot = F.one_hot(label, len(parsed)).T.reshape(len(parsed), *mask_rgb.shape[1:]).float()
        return cls(onehot=onehot, targets=[t for _, t in parsed])

    def at(self, size: tuple[int, int]) -> Tensor:
        """[R, h, w] region weights at ``size`` (area-averaged, so edges are soft and sum to 1)."""
        return F.interpolate(self.onehot.unsqueeze(0), size=size, mode="area")[0] if tuple(
            self.onehot.shape[1:]) != size else self.onehot

    def content_weight(self, size: tuple[int, int]) -> Tensor | None:
        """[1, h, w] weight of the regions that keep the content (None if there are none)."""
        idx = [i for i, t in enumerate(self.targets) if t == CONTENT_REGION]
        if not idx:
            return None
        m = self.at(size)
        return m[idx].sum(dim=0, keepdim=True).clamp(0.0, 1.0)


# -- targets -----------------------------------------------------------------------------------------
@dataclass
class LayerTarget:
    gram: Tensor | None = None
    """Gram target; for gram_norm 'none' it is per position (multiplied by the area at use)."""
    w2: W2Target | None = None
    sorted: Tensor | None = None


@dataclass
class Slot:
    """One style target and the region it applies to."""

    layers: dict[str, LayerTarget]
    masks: dict[str, Tensor] | None = None
    """Per layer, [1, 1, h, w] region weights at the layer's size; None: the whole image."""
    fraction: dict[str, float] = field(default_factory=dict)
    """Per layer, the share of the image the region covers (weights the slot's loss)."""
    areas: dict[str, float] = field(default_factory=dict)
    """Per layer, Σ m² of the mask: computed once here, not read back from the device every step."""


def _layer_target(
    feats: list[Tensor], weights: list[float], cfg: Config
) -> LayerTarget:
    """Blend one layer's statistics of several style images with ``weights`` (summing to 1)."""
    t = LayerTarget()
    if cfg.style_kind in ("gram", "hist"):
        g = None
        for f, w in zip(feats, weights):
            gi, area = masked_gram(f, None, cfg.gram_norm)
            if cfg.gram_norm == "none":
                # Per position: an un-normalised Gram grows with the number of positions, and each
                # style image has its own; the loss multiplies back by the generated area.
                gi = gi / area
            g = gi * w if g is None else g + gi * w
        t.gram = g
    if cfg.style_kind == "w2":
        mean = srm = None
        for f, w in zip(feats, weights):
            m, s = moments(f)
            mean = m * w if mean is None else mean + m * w
            srm = s * w if srm is None else srm + s * w
        assert mean is not None and srm is not None
        t.w2 = W2Target(mean, srm)
    if cfg.style_kind == "hist":
        qs = [sorted_target(f) for f in feats]
        t.sorted = blend_quantiles(qs, weights, max(q.shape[1] for q in qs))
    return t


@torch.no_grad()
def build_style_targets(
    style_feats: list[dict[str, Tensor]],
    blend: list[float],
    layers: Sequence[str],
    layer_shapes: dict[str, tuple[int, int]],
    cfg: Config,
    regions: RegionMasks | None,
    size: tuple[int, int],
) -> list[Slot]:
    """The slots of this scale. ``style_feats[i][layer]`` are style image i's activations;
    ``layer_shapes`` the generated image's map size per layer at this scale."""
    if regions is None:
        return [Slot({n: _layer_target([sf[n] for sf in style_feats], blend, cfg) for n in layers})]
    slots: list[Slot] = []
    full = regions.at(size)
    for r, target in enumerate(regions.targets):
        if target == CONTENT_REGION:
            continue
        assert isinstance(target, int)
        masks: dict[str, Tensor] = {}
        frac: dict[str, float] = {}
        areas: dict[str, float] = {}
        for n in layers:
            m = F.adaptive_avg_pool2d(full[r : r + 1].unsqueeze(0), layer_shapes[n])
            masks[n] = m
            frac[n] = float(m.mean())
            areas[n] = float(m.pow(2).sum())
        slots.append(Slot(
            {n: _layer_target([style_feats[target][n]], [1.0], cfg) for n in layers}, masks, frac, areas
        ))
    return slots


# -- the loss ----------------------------------------------------------------------------------------
def style_loss(
    feats: dict[str, Tensor],
    slots: list[Slot],
    layers: Sequence[str],
    layer_weights: Sequence[float],
    s_mult: float,
    cfg: Config,
    per: dict[str, Tensor],
    zero: Tensor,
    image_positions: int | None = None,
) -> Tensor:
    """Weighted style loss of the generated activations; fills ``per['style/<layer>']``.

    ``image_positions`` (the image's H·W) is what the ``keras`` style form divides by."""
    ls = zero
    for name, w in zip(layers, layer_weights):
        f_raw = feats[name]
        term = zero
        for slot in slots:
            mask = slot.masks[name] if slot.masks is not None else None
            share = slot.fraction.get(name, 1.0)
            if share <= 0.0:
                continue
            strength = s_mult * w * share
            f = normalize_grad(f_raw, strength) if cfg.normalize_gradients else f_raw
            term = term + strength * _slot_layer_loss(
                f, slot.layers[name], mask, cfg, image_positions, slot.areas.get(name)
            )
        per[f"style/{name}"] = term
        ls = ls + term
    return ls


def _slot_layer_loss(
    f: Tensor, t: LayerTarget, mask: Tensor | None, cfg: Config, image_positions: int | None = None,
    area: float | None = None,
) -> Tensor:
    if cfg.style_kind == "w2":
        assert t.w2 is not None
        mean, srm = moments(f, mask)
        return w2_loss(mean, srm, t.w2)
    assert t.gram is not None
    g, area = masked_gram(f, mask, cfg.gram_norm, area)
    a = t.gram * area if cfg.gram_norm == "none" else t.gram
    e = losses.style_layer_loss(
        g, a, cfg.style_loss, channels=f.shape[1], positions=round(area), image_positions=image_positions
    )
    if cfg.style_kind == "hist":
        assert t.sorted is not None
        e = e + cfg.hist_weight * hist_loss(f, t.sorted, mask)
    return e


def content_features(f: Tensor, strength: float, cfg: Config) -> Tensor:
    """The content layer's activations, gradient-normalised when asked."""
    return normalize_grad(f, strength) if cfg.normalize_gradients else f


__all__ = [
    "CONTENT_REGION",
    "LayerTarget",
    "RegionMasks",
    "STYLE_KINDS",
    "Slot",
    "build_style_targets",
    "content_features",
    "parse_color",
    "parse_region",
    "style_loss",
    "validate",
]
