"""The seam figure: gradient energy in bands along tile borders against the rest of the picture.

A seam is a line where neighbouring pixels differ more (a step in colour) or less (a blurred join) than
elsewhere. With E the squared neighbour difference summed over channels (down the rows for a border
between rows, across the columns for a border between columns), the figure is

    ratio = mean E over the bands of ``band`` differences either side of each border, centred on the
            difference that crosses it
          / mean E over all other differences of the same direction,

pooled over both directions. About 1 means the borders cannot be told from the interior by gradient
energy; a hard seam gives > 1, a smeared one < 1. The borders to measure are given (the tile grid of
some step: the tiled objective moves them every evaluation, so a result has no fixed borders; measuring
at the first step's grid, or at several, is the caller's choice). A figure of this package's own design,
not from the paper or from a tiling tool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class SeamFigure:
    ratio: float
    """Band energy / interior energy (1: no seam)."""
    band: float
    """Mean squared neighbour difference in the bands along the borders."""
    interior: float
    """Mean squared neighbour difference elsewhere."""
    band_count: int
    interior_count: int


def _band_mask(n: int, borders: Sequence[int], band: int) -> Tensor:
    """Of the n differences along one axis (difference i is between pixels i and i+1), those within
    ``band`` - 1 of the one crossing a border (a border b lies between pixels b-1 and b)."""
    mask = torch.zeros(n, dtype=torch.bool)
    for b in borders:
        if 0 < b <= n:
            mask[max(0, b - band) : min(n, b + band - 1)] = True
    return mask


@dataclass(frozen=True)
class EnergyProfiles:
    """A picture's squared neighbour differences summed across the picture: ``down[i]`` over the row of
    differences between pixel rows i and i+1, ``across[j]`` over the column between columns j and j+1.
    Any grid's seam figure follows from these two vectors, so scanning many grids of a large picture
    costs one pass over its pixels."""

    down: Tensor
    """[H-1], float64."""
    across: Tensor
    """[W-1], float64."""
    height: int
    width: int


def energy_profiles(image: Tensor) -> EnergyProfiles:
    """The :class:`EnergyProfiles` of ``image`` ([C, H, W] or [1, C, H, W])."""
    x = image.detach()
    if x.ndim == 4:
        x = x[0]
    _, h, w = x.shape
    down = torch.zeros(h - 1, dtype=torch.float64)
    across = torch.zeros(w - 1, dtype=torch.float64)
    for c in range(x.shape[0]):  # a channel at a time: a 6000 px print in float64 would be 0.6 GB a copy
        ch = x[c].double()
        down += (ch[1:, :] - ch[:-1, :]).pow(2).sum(dim=1)
        across += (ch[:, 1:] - ch[:, :-1]).pow(2).sum(dim=0)
    return EnergyProfiles(down, across, h, w)


def seam_figure(image: Tensor | EnergyProfiles, row_borders: Sequence[int], col_borders: Sequence[int],
                band: int = 1) -> SeamFigure:
    """The seam figure of ``image`` ([C, H, W] or [1, C, H, W], or its :func:`energy_profiles`) at tile
    borders between rows ``row_borders`` and columns ``col_borders`` (whole-image pixel indices of the
    first row/column after each border; 0 and the picture's far side are not borders and are ignored).
    ``band`` >= 1: how many differences either side count as the border's (1: just the crossing
    difference)."""
    if band < 1:
        raise ValueError("band must be at least 1")
    p = image if isinstance(image, EnergyProfiles) else energy_profiles(image)
    h, w = p.height, p.width
    rows = _band_mask(h - 1, [b for b in row_borders if 0 < b < h], band)
    cols = _band_mask(w - 1, [b for b in col_borders if 0 < b < w], band)
    # every difference of a row of differences has the row's weight: W of them down, H across
    band_sum = float(p.down[rows].sum() + p.across[cols].sum())
    band_n = int(rows.sum()) * w + int(cols.sum()) * h
    in_sum = float(p.down[~rows].sum() + p.across[~cols].sum())
    in_n = int((~rows).sum()) * w + int((~cols).sum()) * h
    if band_n == 0 or in_n == 0:
        raise ValueError("no border (or no interior) to measure: give borders inside the picture")
    band_mean, in_mean = band_sum / band_n, in_sum / in_n
    ratio = band_mean / in_mean if in_mean > 0 else (1.0 if band_mean == 0 else float("inf"))
    return SeamFigure(ratio, band_mean, in_mean, band_n, in_n)
