"""The objective of one scale: targets computed once, then a loss of the pixels with a typed result.

:meth:`Objective.build` runs the content image and the style images through the VGG once (under
no_grad) and keeps the content features and the style *slots*; calling the objective on pixels gives
:class:`LossTerms`. A slot is one style target with the region it applies to: without a mask there is
one slot (the blend of all styles over the whole image); with a mask there is one slot per region that
names a style, matched with guided Gram matrices (Gatys et al. 2017) or their W2/histogram
counterparts restricted to the region.

:class:`LossForms` and :class:`LossWeights` are the only things read from a
:class:`~impasto.config.Config`, once per run; the loss functions themselves take explicit arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto.config import Config
from impasto.losses import content_loss, masked_gram, style_layer_loss, tv_loss
from impasto.losses.style import (
    W2Target,
    blend_quantiles,
    hist_loss,
    moments,
    normalize_grad,
    sorted_target,
    w2_loss,
)
from impasto.regions import CONTENT_REGION, RegionMasks
from impasto.vgg import VGGFeatures


class ExtraLoss(Protocol):
    """A loss term a front-end adds to the objective (video: the temporal loss).

    Called with the pixels [1, 3, H, W] in [0, 1] at the current scale; returns an already weighted
    scalar. Reported as ``terms["extra/<name>"]``.
    """

    name: str

    def __call__(self, pixels: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class LossForms:
    """Which formula each term uses (see :mod:`impasto.losses`)."""

    content: str = "mse"
    gram_norm: str = "chw"
    style: str = "mse"
    tv: str = "l2"
    style_kind: str = "gram"
    hist_weight: float = 1.0
    normalize_gradients: bool = False
    clamp_input: bool = False
    """The loss sees the pixels clamped to range while the gradient passes straight through, and the
    optimised pixels themselves are never clamped (the pytorch-stylecnn write-up's clamped clone)."""
    balance: str = "none"
    """``relative``: every layer's term is divided by its value at all-zero features (see Objective)."""

    @classmethod
    def from_config(cls, cfg: Config) -> LossForms:
        return cls(cfg.content_loss, cfg.gram_norm, cfg.style_loss, cfg.tv_loss, cfg.style_kind,
                   cfg.hist_weight, cfg.normalize_gradients, cfg.clamp_in_loss, cfg.balance)


def straight_through_clamp(x: Tensor, low: float, high: float) -> Tensor:
    """``x`` clamped to [low, high] in the forward pass, with the identity as its gradient.

    What ``p = param.clone(); p.data.clamp_(low, high)`` does in PyTorch: the in-place change of ``.data``
    is invisible to autograd, so the loss is evaluated at clamped pixels while the gradient reaches
    every pixel unchanged, including those outside the range.
    """
    return x + (x.detach().clamp(low, high) - x.detach())


@dataclass(frozen=True)
class LossWeights:
    """Multipliers: the content and style multipliers already include ``alpha`` when it is set."""

    content: float
    style: float
    tv: float
    content_layers: tuple[float, ...]
    style_layers: tuple[float, ...]

    @classmethod
    def from_config(cls, cfg: Config) -> LossWeights:
        if cfg.alpha is None:
            c_mult, s_mult = cfg.content_weight, cfg.style_weight
        else:
            c_mult, s_mult = cfg.alpha * cfg.content_weight, (1.0 - cfg.alpha) * cfg.style_weight
        cw = cfg.content_layer_weights or tuple(1.0 for _ in cfg.content_layers)
        sw = cfg.style_layer_weights or tuple(1.0 for _ in cfg.style_layers)
        return cls(c_mult, s_mult, cfg.tv_weight, tuple(cw), tuple(sw))


@dataclass
class LossTerms:
    """One evaluation: the weighted terms and their per-layer parts."""

    total: Tensor
    content: Tensor
    style: Tensor
    tv: Tensor
    per: dict[str, Tensor]
    """Weighted per-layer terms, e.g. ``{"style/relu1_1": ...}``, and ``extra/<name>``."""

    def flat(self) -> list[Tensor]:
        """[total, content, style, tv, *per] (what the evaluator returns and reads back in one go)."""
        return [self.total, self.content, self.style, self.tv, *self.per.values()]


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
    norms: dict[str, float] = field(default_factory=dict)
    """Per layer, the divisor of the layer's loss (balance ``relative``: its value at a blank image times
    the sum of the style layer weights; absent: 1)."""


def layer_target(feats: list[Tensor], weights: list[float], forms: LossForms) -> LayerTarget:
    """Blend one layer's statistics of several style images with ``weights`` (summing to 1).

    Several styles blend as weighted statistics (Gram matrices, moments or quantiles): the weighted
    Gram of several paintings is the Gram of their union when their maps have equal size.
    """
    grams = [masked_gram(f, None, forms.gram_norm) for f in feats] if forms.style_kind in ("gram", "hist") else []
    moms = [moments(f) for f in feats] if forms.style_kind == "w2" else []
    t = blend_statistics(grams, moms, weights, forms)
    if forms.style_kind == "hist":
        qs = [sorted_target(f) for f in feats]
        t.sorted = blend_quantiles(qs, weights, max(q.shape[1] for q in qs))
    return t


def blend_statistics(
    grams: Sequence[tuple[Tensor, float]], moms: Sequence[tuple[Tensor, Tensor]], weights: Sequence[float],
    forms: LossForms,
) -> LayerTarget:
    """A layer's target from several style images' statistics, blended with ``weights``: their
    normalised Gram matrices with their areas (:func:`~impasto.losses.masked_gram`'s result) for the
    ``gram``/``hist`` kinds, their :func:`~impasto.losses.style.moments` for ``w2``. The histogram
    part of ``hist`` is not a statistic that blends here (see :func:`layer_target`)."""
    t = LayerTarget()
    if forms.style_kind in ("gram", "hist"):
        g = None
        for (gi, area), w in zip(grams, weights):
            if forms.gram_norm == "none":
                # Per position: an un-normalised Gram grows with the number of positions, and each
                # style image has its own; the loss multiplies back by the generated area.
                gi = gi / area
            g = gi * w if g is None else g + gi * w
        t.gram = g
    if forms.style_kind == "w2":
        mean = srm = None
        for (m, s), w in zip(moms, weights):
            mean = m * w if mean is None else mean + m * w
            srm = s * w if srm is None else srm + s * w
        assert mean is not None and srm is not None
        t.w2 = W2Target(mean, srm)
    return t


@torch.no_grad()
def build_slots(
    style_feats: list[dict[str, Tensor]],
    blend: list[float],
    layers: Sequence[str],
    layer_shapes: dict[str, tuple[int, int]],
    forms: LossForms,
    regions: RegionMasks | None,
    size: tuple[int, int],
) -> list[Slot]:
    """The slots of this scale. ``style_feats[i][layer]`` are style image i's activations;
    ``layer_shapes`` the generated image's map size per layer at this scale."""
    if regions is None:
        return [Slot({n: layer_target([sf[n] for sf in style_feats], blend, forms) for n in layers})]
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
        slots.append(Slot({n: layer_target([style_feats[target][n]], [1.0], forms) for n in layers},
                          masks, frac, areas))
    return slots


def relative_unit(blank_loss: Tensor) -> float:
    """A term's value at all-zero features, the unit of ``balance="relative"``; a target with no energy
    at all (a black painting's deep layer) divides by 1 rather than by zero."""
    v = float(blank_loss)
    return v if v > 1e-12 else 1.0


def gram_distance(
    g: Tensor, area: float, t: LayerTarget, forms: LossForms, channels: int, image_positions: int | None = None,
) -> Tensor:
    """The Gram distance of one layer (unweighted) given the generated image's normalised Gram ``g``
    over ``area`` positions (:func:`~impasto.losses.masked_gram`'s result)."""
    assert t.gram is not None
    a = t.gram * area if forms.gram_norm == "none" else t.gram
    return style_layer_loss(
        g, a, forms.style, channels=channels, positions=round(area), image_positions=image_positions
    )


def slot_layer_loss(
    f: Tensor, t: LayerTarget, mask: Tensor | None, forms: LossForms, image_positions: int | None = None,
    area: float | None = None,
) -> Tensor:
    """One slot's style distance at one layer (unweighted)."""
    if forms.style_kind == "w2":
        assert t.w2 is not None
        mean, srm = moments(f, mask)
        return w2_loss(mean, srm, t.w2)
    assert t.gram is not None
    g, area = masked_gram(f, mask, forms.gram_norm, area)
    e = gram_distance(g, area, t, forms, int(f.shape[1]), image_positions)
    if forms.style_kind == "hist":
        assert t.sorted is not None
        e = e + forms.hist_weight * hist_loss(f, t.sorted, mask)
    return e


class Objective:
    """L(x) = Σ content terms + Σ style terms + TV (+ extra) at one scale."""

    def __init__(
        self,
        model: VGGFeatures,
        content_layers: Sequence[str],
        style_layers: Sequence[str],
        content_targets: dict[str, Tensor],
        slots: list[Slot],
        forms: LossForms,
        weights: LossWeights,
        pixel_scale: float,
        extra: ExtraLoss | None = None,
        content_norms: dict[str, float] | None = None,
    ) -> None:
        self.model = model
        self.content_layers = list(content_layers)
        self.style_layers = list(style_layers)
        self.content_targets = content_targets
        self.slots = slots
        self.forms = forms
        self.weights = weights
        self.pixel_scale = pixel_scale
        self.extra = extra
        self.content_norms = content_norms or {}
        # TV and a front-end's extra term (video's temporal loss) share the content terms' unit, so
        # balance="relative" keeps their ratios as they are under "none" (and the extra term's calibration).
        self.unit = sum(self.content_norms.values()) if self.content_norms else 1.0

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
        regions: RegionMasks | None = None,
        extra: ExtraLoss | None = None,
    ) -> Objective:
        """Targets for the scale of ``content`` ([1, 3, H, W] in [0, 1], on the model's device);
        ``styles`` are [1, 3, h, w] already at this scale's style size."""
        size = (int(content.shape[2]), int(content.shape[3]))
        feats = model(content)
        content_t = {name: feats[name].detach().clone() for name in content_layers}
        shapes = {n: (int(feats[n].shape[2]), int(feats[n].shape[3])) for n in style_layers}
        style_feats = []
        for style in styles:
            sf = model(style)
            style_feats.append({n: sf[n] for n in style_layers})
        slots = build_slots(style_feats, blend, style_layers, shapes, forms, regions, size)
        for slot in slots:
            if slot.masks is not None:
                slot.masks = {n: m.to(content.device) for n, m in slot.masks.items()}
        content_norms: dict[str, float] = {}
        if forms.balance == "relative":
            positions = size[0] * size[1]
            content_norms = {n: relative_unit(content_loss(torch.zeros_like(t), t, forms.content))
                             for n, t in content_t.items()}
            # Divided by the sum of the layer weights too: the style term is the weighted mean of the
            # layers' relative distances (the paper's w_l = 1/|L|), so style_weight keeps its scale
            # whatever the number of layers.
            layer_sum = sum(weights.style_layers) or 1.0
            for slot in slots:
                for n in style_layers:
                    blank = feats[n].new_zeros(feats[n].shape)
                    mask = slot.masks[n] if slot.masks is not None else None
                    slot.norms[n] = layer_sum * relative_unit(slot_layer_loss(blank, slot.layers[n], mask, forms,
                                                                         positions, slot.areas.get(n)))
        return cls(model, content_layers, style_layers, content_t, slots, forms, weights, pixel_scale, extra,
                   content_norms)

    def __call__(self, x: Tensor) -> LossTerms:
        """The loss of pixels ``x`` [1, 3, H, W] in pixel_scale units."""
        forms, wts = self.forms, self.weights
        if forms.clamp_input:
            x = straight_through_clamp(x, 0.0, self.pixel_scale)
        feats = self.model(x / self.pixel_scale)
        per: dict[str, Tensor] = {}
        zero = x.new_zeros(())
        lc = zero
        for name, w in zip(self.content_layers, wts.content_layers):
            strength = wts.content * w
            f = normalize_grad(feats[name], strength) if forms.normalize_gradients else feats[name]
            term = strength * content_loss(f, self.content_targets[name], forms.content)
            if name in self.content_norms:
                term = term / self.content_norms[name]
            per[f"content/{name}"] = term
            lc = lc + term
        ls = zero
        positions = x.shape[2] * x.shape[3]
        for name, w in zip(self.style_layers, wts.style_layers):
            term = zero
            for slot in self.slots:
                share = slot.fraction.get(name, 1.0)
                if share <= 0.0:
                    continue
                strength = wts.style * w * share
                f = normalize_grad(feats[name], strength) if forms.normalize_gradients else feats[name]
                mask = slot.masks[name] if slot.masks is not None else None
                term = term + (strength / slot.norms.get(name, 1.0)) * slot_layer_loss(
                    f, slot.layers[name], mask, forms, positions, slot.areas.get(name)
                )
            per[f"style/{name}"] = term
            ls = ls + term
        ltv = wts.tv * tv_loss(x, forms.tv) / self.unit if wts.tv > 0 else zero
        total = lc + ls + ltv
        if self.extra is not None:
            lx = self.extra(x / self.pixel_scale) / self.unit
            per[f"extra/{self.extra.name}"] = lx
            total = total + lx
        return LossTerms(total, lc, ls, ltv, per)
