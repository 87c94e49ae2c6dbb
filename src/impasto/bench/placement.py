"""Where the painting's colours go: the colour-placement figure and look (issue 19).

The colour figures of :mod:`impasto.bench.independent` compare *distributions*: a result whose sky took
the painting's ground colour and whose ground took its sky colour scores as well as the right way round.
This module asks *which* regions of the photo took *which* of the painting's colours:

* the painting's palette: :data:`PALETTE_SIZE` colours, k-means in CIELAB over the painting's pixels
  (k-means++ start from a fixed seed, so the palette of one painting is always the same);
* a picture's palette map: every pixel labelled with its nearest palette colour (CIELAB distance);
* :func:`placement_agreement` of a result and a reference (jcjohnson/neural-style's output, or the
  stand-in): the fraction of pixels whose labels agree, and Cohen's κ, which discounts the agreement two
  maps with the same label frequencies would have by chance (κ = 1: the same placement; κ = 0: no more
  alike than shuffled; below 0: systematically different). κ, not the raw fraction, compares pairs.
* :func:`placement_look`: rows of (picture | its palette map painted in the palette colours) to look at.

The figure reads colours only, never the objective's network. Pure functions; nothing here prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto.losses.color import lab_to_srgb, srgb_to_lab

PALETTE_SIZE = 8
"""Enough to separate a painting's sky, ground and figure colours (The Starry Night: two blues, the
yellows, the greens of the cypress); few enough that every colour covers a region, not a speck."""
SAMPLES = 20_000
ITERATIONS = 30


def _sample(lab: Tensor, n: int, gen: torch.Generator) -> Tensor:
    flat = lab.reshape(3, -1).T
    if flat.shape[0] <= n:
        return flat
    return flat[torch.randperm(flat.shape[0], generator=gen)[:n]]


def palette(painting: Tensor, k: int = PALETTE_SIZE, seed: int = 0) -> Tensor:
    """The painting's ``k`` palette colours [k, 3] in CIELAB (k-means, k-means++ start, fixed seed),
    sorted by lightness."""
    gen = torch.Generator().manual_seed(seed)
    x = _sample(srgb_to_lab(painting), SAMPLES, gen)
    centres = [x[int(torch.randint(x.shape[0], (1,), generator=gen))]]
    for _ in range(1, k):
        d2 = torch.cdist(x, torch.stack(centres)).min(dim=1).values ** 2
        if float(d2.sum()) <= 0:
            centres.append(centres[-1].clone())
            continue
        centres.append(x[int(torch.multinomial(d2 / d2.sum(), 1, generator=gen))])
    c = torch.stack(centres)
    for _ in range(ITERATIONS):
        label = torch.cdist(x, c).argmin(dim=1)
        for j in range(k):
            members = x[label == j]
            if members.shape[0]:
                c[j] = members.mean(dim=0)
    return c[torch.argsort(c[:, 0])]


def palette_map(img: Tensor, centres: Tensor) -> Tensor:
    """Every pixel's nearest palette colour: [H, W] int64 labels into ``centres``."""
    lab = srgb_to_lab(img)
    h, w = lab.shape[1:]
    return torch.cdist(lab.reshape(3, -1).T, centres).argmin(dim=1).reshape(h, w)


def render_map(labels: Tensor, centres: Tensor) -> Tensor:
    """A palette map painted in its palette colours: [3, H, W] sRGB."""
    return lab_to_srgb(centres[labels].permute(2, 0, 1)).float()


@dataclass(frozen=True)
class Placement:
    agreement: float
    """Fraction of pixels with the same palette label in both pictures."""
    chance: float
    """The agreement expected from the two maps' label frequencies alone."""
    kappa: float
    """Cohen's κ = (agreement − chance) / (1 − chance)."""


def agreement_of(a: Tensor, b: Tensor, k: int) -> Placement:
    """:class:`Placement` of two label maps of one size."""
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in size: {tuple(a.shape)} vs {tuple(b.shape)}")
    n = a.numel()
    agree = float((a == b).sum()) / n
    pa = torch.bincount(a.flatten(), minlength=k).double() / n
    pb = torch.bincount(b.flatten(), minlength=k).double() / n
    chance = float((pa * pb).sum())
    kappa = (agree - chance) / (1 - chance) if chance < 1 else 1.0
    return Placement(agree, chance, kappa)


def _to_size(img: Tensor, hw: tuple[int, int]) -> Tensor:
    if tuple(img.shape[1:]) == hw:
        return img
    return F.interpolate(img[None].float(), size=hw, mode="area")[0]


def placement_agreement(result: Tensor, reference: Tensor, painting: Tensor,
                        k: int = PALETTE_SIZE) -> Placement:
    """How alike ``result`` and ``reference`` place ``painting``'s colours (the reference is resized to
    the result's size by area averaging)."""
    centres = palette(painting, k)
    hw = (int(result.shape[1]), int(result.shape[2]))
    return agreement_of(palette_map(result, centres), palette_map(_to_size(reference, hw), centres), k)


def placement_look(painting: Tensor, pictures: Sequence[Tensor], height: int = 256,
                   k: int = PALETTE_SIZE) -> Tensor:
    """Rows of (picture | its palette map) at ``height`` px, the painting and its own map first:
    [3, rows·height, W] sRGB (rows narrower than the widest are padded white)."""
    centres = palette(painting, k)
    rows = []
    for pic in [painting, *pictures]:
        h, w = int(pic.shape[1]), int(pic.shape[2])
        small = _to_size(pic, (height, max(1, round(w * height / h)))).clamp(0, 1)
        rows.append(torch.cat([small, render_map(palette_map(small, centres), centres)], dim=2))
    width = max(r.shape[2] for r in rows)
    return torch.cat([F.pad(r, (0, width - r.shape[2]), value=1.0) for r in rows], dim=1)


__all__ = ["PALETTE_SIZE", "Placement", "agreement_of", "palette", "palette_map", "placement_agreement",
           "placement_look", "render_map"]
