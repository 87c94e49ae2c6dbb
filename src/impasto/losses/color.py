"""Colour preservation (Gatys et al. 2017, *Controlling Perceptual Factors in Neural Style Transfer*).

Pure functions on RGB images ``[3, H, W]`` in [0, 1]:

- :func:`rgb_to_yiq` / :func:`yiq_to_rgb`: the NTSC YIQ transform the paper uses (Y luminance,
  I and Q chroma); the two matrices are exact inverses of each other.
- :func:`match_color`: a linear colour transfer that gives a source image the mean and covariance of a
  target image's RGB values (the paper's section 5.1, "colour histogram matching"), with the
  symmetric matrix square roots taken by eigendecomposition.
- :func:`luminance_only` / :func:`combine_luminance`: the paper's "luminance-only transfer": optimise
  on luminance (a grey image) and put the content's chroma back afterwards.
"""

from __future__ import annotations

import torch
from torch import Tensor

from impasto.errors import ImpastoError

# NTSC 1953 RGB -> YIQ (FCC); the inverse is computed, not rounded, so a round trip is exact up to
# float error.
_RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ],
    dtype=torch.float64,
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)

PRESERVE_COLOR_MODES = ("none", "luminance", "match")


def _check(x: Tensor, what: str) -> None:
    if x.ndim != 3 or x.shape[0] != 3:
        raise ImpastoError(f"{what} must be a [3, H, W] RGB image (got {tuple(x.shape)})")


def _apply(m: Tensor, x: Tensor) -> Tensor:
    return torch.einsum("ij,jhw->ihw", m.to(x.dtype), x)


def rgb_to_yiq(rgb: Tensor) -> Tensor:
    """[3, H, W] RGB -> [3, H, W] YIQ (Y in [0, 1]; I, Q signed)."""
    _check(rgb, "rgb_to_yiq input")
    return _apply(_RGB_TO_YIQ, rgb)


def yiq_to_rgb(yiq: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_yiq` (no clamping: out-of-gamut colours stay visible to the caller)."""
    _check(yiq, "yiq_to_rgb input")
    return _apply(_YIQ_TO_RGB, yiq)


def _sym_sqrt(c: Tensor, inverse: bool = False) -> Tensor:
    """Square root (or inverse square root) of a symmetric positive semi-definite matrix."""
    evals, evecs = torch.linalg.eigh(c)
    # A flat-coloured image has a singular covariance: floor the eigenvalues so the inverse exists
    # (the floor, 1e-8 in [0, 1]² units, is far below any visible colour variation).
    evals = evals.clamp_min(1e-8)
    d = evals.rsqrt() if inverse else evals.sqrt()
    out: Tensor = (evecs * d.unsqueeze(0)) @ evecs.T
    return out


def color_stats(rgb: Tensor) -> tuple[Tensor, Tensor]:
    """Mean [3] and covariance [3, 3] of an image's pixel colours (float64)."""
    _check(rgb, "image")
    x = rgb.reshape(3, -1).double()
    mu = x.mean(dim=1)
    d = x - mu.unsqueeze(1)
    return mu, d @ d.T / max(1, d.shape[1])


def match_color(source: Tensor, target: Tensor, clamp: bool = True) -> Tensor:
    """``source`` recoloured so its RGB mean and covariance equal ``target``'s.

    x' = A (x − μ_s) + μ_t with A = Σ_t^½ Σ_s^-½ (the paper's "Image Analogies" colour transform,
    symmetric square roots). A is one of many matrices with A Σ_s Aᵀ = Σ_t; this one involves no
    rotation of the colour axes when the covariances commute. Clamping to [0, 1] afterwards (the
    default) can move the statistics slightly where colours leave the gamut.
    """
    _check(target, "colour-match target")
    return match_color_stats(source, *color_stats(target), clamp=clamp)


def blended_stats(images: list[Tensor], weights: list[float]) -> tuple[Tensor, Tensor]:
    """Mean and covariance of the mixture of several images' colours, image i drawn with weight w_i
    (weights summing to 1): μ = Σ w_i μ_i, Σ = Σ w_i (Σ_i + μ_i μ_iᵀ) − μ μᵀ."""
    stats = [color_stats(x) for x in images]
    mu = sum((w * m for (m, _), w in zip(stats, weights)), torch.zeros(3, dtype=torch.float64))
    second = sum((w * (c + torch.outer(m, m)) for (m, c), w in zip(stats, weights)),
                 torch.zeros(3, 3, dtype=torch.float64))
    return mu, second - torch.outer(mu, mu)


def match_color_stats(source: Tensor, mu_t: Tensor, cov_t: Tensor, clamp: bool = True) -> Tensor:
    """``source`` recoloured to the colour mean ``mu_t`` [3] and covariance ``cov_t`` [3, 3] (see
    :func:`match_color`)."""
    _check(source, "colour-match source")
    mu_s, cov_s = color_stats(source)
    mu_t, cov_t = mu_t.double(), cov_t.double()
    a = _sym_sqrt(cov_t) @ _sym_sqrt(cov_s, inverse=True)
    x = source.reshape(3, -1).double()
    y = a @ (x - mu_s.unsqueeze(1)) + mu_t.unsqueeze(1)
    out = y.reshape(source.shape).to(source.dtype)
    return out.clamp(0.0, 1.0) if clamp else out


def luminance(rgb: Tensor) -> Tensor:
    """The Y channel [H, W] of an RGB image."""
    return rgb_to_yiq(rgb)[0]


def luminance_only(rgb: Tensor, reference: Tensor | None = None) -> Tensor:
    """A grey [3, H, W] image of ``rgb``'s luminance (the same value in R, G and B).

    With ``reference``, the luminance is first shifted and scaled to the reference luminance's mean
    and standard deviation: the paper's luminance histogram matching of the style image to the
    content image (eq. 8), so the style's brightness range does not override the photo's.
    """
    y = luminance(rgb)
    if reference is not None:
        yr = luminance(reference)
        std = y.std().clamp_min(1e-6)
        y = (y - y.mean()) * (yr.std() / std) + yr.mean()
    y = y.clamp(0.0, 1.0)
    return y.unsqueeze(0).expand(3, -1, -1).contiguous()


def combine_luminance(stylised: Tensor, content: Tensor) -> Tensor:
    """The stylised image's luminance with the content's chroma (I, Q), back in RGB, clamped to [0, 1].

    ``content`` is resized by the caller to the stylised image's size. Where the combination leaves
    the RGB gamut the clamp changes the colour slightly; elsewhere the content's I and Q are kept
    exactly.
    """
    _check(stylised, "stylised image")
    _check(content, "content image")
    if stylised.shape != content.shape:
        raise ImpastoError(f"sizes differ: {tuple(stylised.shape)} vs {tuple(content.shape)}")
    # The stylised image is optimised grey, but a few steps of colour drift are possible: take its
    # luminance, not its red channel.
    yiq = rgb_to_yiq(content)
    yiq = torch.cat([rgb_to_yiq(stylised)[:1], yiq[1:]], dim=0)
    return yiq_to_rgb(yiq).clamp(0.0, 1.0)


__all__ = [
    "PRESERVE_COLOR_MODES",
    "color_stats",
    "combine_luminance",
    "luminance",
    "luminance_only",
    "match_color",
    "rgb_to_yiq",
    "yiq_to_rgb",
]
