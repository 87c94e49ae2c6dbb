"""The copied-object figure: how much of a result is a near-copy of some place of the painting (issue 19).

A style transfer should take a painting's brushwork, not its objects; a result that paints the painting's
eyes, mouths, figures or moons into the photo has copied places of the painting. Texture statistics
cannot see that (a copied eye has the painting's statistics); a nearest-neighbour search can.

**Definition** (:func:`copied_fraction`). P is the painting resized so its long side is the result's
(as the judges do). At one deep VGG19 layer (:data:`COPY_LAYER`, relu5_1, stride 16 px; read position by
position, never as a Gram matrix) every position's feature vector is L2-normalised, and:

* for each result position r, best(r) = max over painting positions p of cos(f_r, f_p): how close its
  nearest place in the painting is;
* for each painting position p, self(p) = max of cos(f_p, f_q) over painting positions q more than
  :data:`EXCLUDE` positions away in x or y: how closely the painting repeats that place elsewhere;
* the threshold τ = the :data:`QUANTILE` quantile of self(p) over the painting (0.99: only 1 % of the
  painting's places have a repeat elsewhere in it as close as τ);
* a result position is **copied** when best(r) > τ (+ 1e-9 against rounding): it is closer to one place
  of the painting than the painting's own places are to their repeats, except for the most repetitive
  1 %.

The figure is the fraction of result positions copied (0 to 1). It counts positions, not pixels: a
position whose receptive field straddles the copy's edge sees the photo too and does not match, so a
pasted rectangle of the painting scores less than its area (about 0.6 of it for a quarter of the
picture at 512 px, 0.3 to 0.55 for a twelfth). The quantile and layer were set so that
jcjohnson/neural-style's published results score 0 (``docs/perf/copies_512.json``).

Pure functions; nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from impasto.vgg import VGGFeatures, VGGWeights, load_weights

COPY_LAYER = "relu5_1"
QUANTILE = 0.99
EXCLUDE = 2
"""Painting positions within this many positions (Chebyshev) of p are not "elsewhere" for self(p)."""
TIE = 1e-9
"""best(r) must exceed τ by this much: rounding must not make an exact repeat of the painting a copy."""


def unit_rows(f: Tensor) -> Tensor:
    """Features [C, H, W] -> [H·W, C] float64 rows of unit length (all-zero rows stay zero)."""
    c = f.shape[0]
    v = f.reshape(c, -1).T.double()
    out: Tensor = v / torch.linalg.vector_norm(v, dim=1, keepdim=True).clamp_min(1e-12)
    return out


def best_match(result_rows: Tensor, painting_rows: Tensor) -> tuple[Tensor, Tensor]:
    """For every result row: the largest cosine similarity to a painting row, and that row's index."""
    sims = result_rows @ painting_rows.T
    best = sims.max(dim=1)
    return best.values, best.indices


def self_match(painting_rows: Tensor, hw: tuple[int, int], exclude: int = EXCLUDE) -> Tensor:
    """For every painting position, the largest cosine similarity to a position more than ``exclude``
    positions away (in x or y); -1 where no such position exists."""
    h, w = hw
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    yy, xx = yy.flatten(), xx.flatten()
    near = ((yy[:, None] - yy[None, :]).abs() <= exclude) & ((xx[:, None] - xx[None, :]).abs() <= exclude)
    sims = (painting_rows @ painting_rows.T).masked_fill(near, -1.0)
    return sims.max(dim=1).values


@dataclass(frozen=True)
class CopyScore:
    fraction: float
    """Fraction of result positions that are near-copies of a place of the painting."""
    threshold: float
    """τ, the QUANTILE quantile of the painting's self-match similarities."""
    copied: Tensor
    """[h, w] bool map of copied positions (feature grid of COPY_LAYER)."""
    source: Tensor
    """[h, w] index (row-major in the painting's feature grid) of each position's best match."""
    best: Tensor
    """[h, w] best cosine similarity of each result position."""
    painting_grid: tuple[int, int]

    def summary(self) -> dict[str, float | list[int]]:
        return {"fraction": self.fraction, "threshold": self.threshold, "positions": int(self.copied.numel()),
                "copied_positions": int(self.copied.sum()), "best_max": float(self.best.max()),
                "grid": list(self.copied.shape), "painting_grid": list(self.painting_grid)}


def copy_score_features(result_f: Tensor, painting_f: Tensor, *, quantile: float = QUANTILE,
                        exclude: int = EXCLUDE) -> CopyScore:
    """The figure from feature maps [C, h, w] of the result and of the painting (any network, any layer)."""
    pr = unit_rows(painting_f)
    ph, pw = int(painting_f.shape[1]), int(painting_f.shape[2])
    tau = float(torch.quantile(self_match(pr, (ph, pw), exclude), quantile))
    best, idx = best_match(unit_rows(result_f), pr)
    h, w = int(result_f.shape[1]), int(result_f.shape[2])
    copied = (best > tau + TIE).view(h, w)
    return CopyScore(fraction=float(copied.double().mean()), threshold=tau, copied=copied,
                     source=idx.view(h, w), best=best.view(h, w), painting_grid=(ph, pw))


class CopyJudge:
    """The copied-object figure for results of one painting (its features computed once per size)."""

    def __init__(self, style: Tensor, *, weights: VGGWeights | None = None, layer: str = COPY_LAYER,
                 quantile: float = QUANTILE, exclude: int = EXCLUDE) -> None:
        self.style = style.float().clamp(0, 1)
        self.model = VGGFeatures(weights if weights is not None else load_weights(None), (layer,), "max")
        self.layer = self.model.layers[0]
        self.quantile = quantile
        self.exclude = exclude
        self._painting: dict[int, Tensor] = {}

    @torch.no_grad()
    def features(self, rgb: Tensor) -> Tensor:
        out: Tensor = self.model(rgb.float().unsqueeze(0))[self.layer][0]
        return out

    def painting_features(self, long_side: int) -> Tensor:
        if long_side not in self._painting:
            from impasto.io import resize_long_side

            self._painting[long_side] = self.features(resize_long_side(self.style, long_side))
        return self._painting[long_side]

    def __call__(self, result: Tensor) -> CopyScore:
        x = result.float().clamp(0, 1)
        return copy_score_features(self.features(x), self.painting_features(max(int(x.shape[1]), int(x.shape[2]))),
                                   quantile=self.quantile, exclude=self.exclude)


def copied_fraction(style: Tensor, result: Tensor, *, weights: VGGWeights | None = None) -> float:
    """The copied-object figure of one result [3, H, W] against its painting [3, H', W'] (see the module)."""
    return CopyJudge(style, weights=weights)(result).fraction


__all__ = ["COPY_LAYER", "EXCLUDE", "QUANTILE", "TIE", "CopyJudge", "CopyScore", "best_match", "copied_fraction",
           "copy_score_features", "self_match", "unit_rows"]
