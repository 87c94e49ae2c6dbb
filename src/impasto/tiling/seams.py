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


def seam_figure(image: Tensor, row_borders: Sequence[int], col_borders: Sequence[int], band: int = 1) -> SeamFigure:
    """The seam figure of ``image`` ([C, H, W] or [1, C, H, W]) at tile borders between rows
    ``row_borders`` and columns ``col_borders`` (whole-image pixel indices of the first row/column after
    each border; 0 and the picture's far side are not borders and are ignored). ``band`` >= 1: how many
    differences either side count as the border's (1: just the crossing difference)."""
    if band < 1:
        raise ValueError("band must be at least 1")
    x = image.detach().double()
    if x.ndim == 4:
        x = x[0]
    _, h, w = x.shape
    down = (x[:, 1:, :] - x[:, :-1, :]).pow(2).sum(dim=0)  # [H-1, W]
    across = (x[:, :, 1:] - x[:, :, :-1]).pow(2).sum(dim=0)  # [H, W-1]
    rows = _band_mask(h - 1, [b for b in row_borders if 0 < b < h], band)
    cols = _band_mask(w - 1, [b for b in col_borders if 0 < b < w], band)
    band_sum = float(down[rows].sum() + across[:, cols].sum())
    band_n = int(rows.sum()) * w + int(cols.sum()) * h
    in_sum = float(down[~rows].sum() + across[:, ~cols].sum())
    in_n = int((~rows).sum()) * w + int((~cols).sum()) * h
    if band_n == 0 or in_n == 0:
        raise ValueError("no border (or no interior) to measure: give borders inside the picture")
    band_mean, in_mean = band_sum / band_n, in_sum / in_n
    ratio = band_mean / in_mean if in_mean > 0 else (1.0 if band_mean == 0 else float("inf"))
    return SeamFigure(ratio, band_mean, in_mean, band_n, in_n)
