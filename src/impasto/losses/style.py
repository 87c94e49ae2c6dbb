"""Style losses: the per-layer Gram distance and the statistics beyond the plain Gram matrix.

- :func:`style_layer_loss`: the per-layer distance between Gram matrices (paper, MSE, SSE, Keras).
- :func:`moments` and :func:`w2_loss`: the mean + covariance style loss of crowsonkb's
  style-transfer-pytorch: the squared 2-Wasserstein distance between the Gaussians with the two
  feature maps' means and covariances,
  W2² = ‖μ − μ_t‖² + tr Σ + tr Σ_t − 2 tr (Σ_t^½ Σ Σ_t^½)^½.
- :func:`sorted_target`, :func:`blend_quantiles` and :func:`hist_loss`: the histogram term of Risser
  et al. 2017 (*Stable and Controllable Neural Texture Synthesis and Style Transfer Using Histogram
  Losses*): each channel's values are remapped to the style's histogram by rank, and the loss is the
  squared distance to that remapped (constant) target.
- :class:`NormalizeGrad`: jcjohnson/neural-style's ``-normalize_gradients``: identity forward, the
  backward gradient divided by its L1 norm.

Features are ``[1, C, H, W]``; masks are ``[1, 1, H, W]`` weights in [0, 1] at the feature map's size.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def style_layer_loss(
    g: Tensor, a: Tensor, form: str = "mse", *, channels: int, positions: int, image_positions: int | None = None
) -> Tensor:
    """Distance between Gram matrices ``g`` (generated) and ``a`` (style) at one layer.

    ``channels`` is N (= C) and ``positions`` is M (= H·W) of the *generated* image's feature map.
    ``form``:
      - ``"paper"``: E_l = Σ (G − A)² / (4·N²·M²)  (Gatys et al. eq. 4; meant for un-normalised Gram
        matrices, ``gram_norm="none"``; the Coursera J_style_layer is the same formula),
      - ``"mse"``: mean (G − A)² over the B·N² entries,
      - ``"sse"``: Σ (G − A)²,
      - ``"keras"``: Σ (G − A)² / (36·(rows·cols)²)  (the Keras example: it hard-codes ``channels = 3``,
        so 36 = 4·3², and ``rows·cols`` is the *image's* pixel count ``image_positions``, the same at
        every layer, not the layer's M; falls back to ``positions`` when not given).
    """
    d2 = (g - a).pow(2)
    if form == "paper":
        return d2.sum() / (4.0 * channels**2 * float(positions) ** 2)
    if form == "mse":
        return d2.mean()
    if form == "sse":
        return d2.sum()
    if form == "keras":
        size = float(image_positions if image_positions is not None else positions)
        return d2.sum() / (36.0 * size**2)
    raise ValueError(f"unknown style loss {form!r}")


def moments(f: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Weighted mean [C] and second raw moment E[f fᵀ] [C, C] of the feature vectors of ``f``.

    Raw moments (not the covariance) are what several styles blend linearly: the weighted mixture of
    several feature distributions has the weighted mean and the weighted raw second moment.
    """
    _, c, h, w = f.shape
    flat = f.reshape(c, h * w)
    if mask is None:
        wts = flat.new_full((h * w,), 1.0 / (h * w))
    else:
        m = mask.reshape(h * w)
        wts = m / m.sum().clamp_min(1e-6)
    mean = flat @ wts
    srm = (flat * wts) @ flat.T
    return mean, srm


def _sqrtm(m: Tensor) -> Tensor:
    evals, evecs = torch.linalg.eigh(m)
    out: Tensor = (evecs * evals.clamp_min(0.0).sqrt().unsqueeze(0)) @ evecs.T
    return out


class W2Target:
    """A layer's precomputed mean, covariance, its square root and trace (for :func:`w2_loss`)."""

    def __init__(self, mean: Tensor, srm: Tensor) -> None:
        cov = srm - torch.outer(mean, mean)
        cov = 0.5 * (cov + cov.T)
        self.mean = mean
        self.cov = cov
        self.cov_sqrt = _sqrtm(cov.double()).to(cov.dtype)
        self.trace = torch.diagonal(cov).sum()


def w2_loss(mean: Tensor, srm: Tensor, target: W2Target, eps: float = 1e-8) -> Tensor:
    """Squared 2-Wasserstein distance between N(μ, Σ) and the target Gaussian, divided by C.

    The trace of the matrix square root is the sum of the square roots of the eigenvalues of the
    symmetric matrix Σ_t^½ Σ Σ_t^½ (same eigenvalues as Σ Σ_t); eigenvalues are floored at ``eps`` so
    the gradient of √λ stays finite for the (many) near-zero eigenvalues of deep ReLU layers. Dividing
    by the channel count C keeps layers of 64 and 512 channels on a similar scale.
    """
    c = mean.shape[0]
    cov = srm - torch.outer(mean, mean)
    cov = 0.5 * (cov + cov.T)
    prod = target.cov_sqrt @ cov @ target.cov_sqrt
    prod = 0.5 * (prod + prod.T)
    evals = torch.linalg.eigvalsh(prod.double()).clamp_min(eps)
    cross = evals.sqrt().sum().to(mean.dtype)
    mean_term = (mean - target.mean).pow(2).sum()
    cov_term = torch.diagonal(cov).sum() + target.trace - 2.0 * cross
    loss: Tensor = (mean_term + cov_term) / c
    return loss


def sorted_target(f: Tensor) -> Tensor:
    """Each channel's values of ``f`` sorted ascending: [C, H·W] (the style's quantile function)."""
    _, c, h, w = f.shape
    return f.reshape(c, h * w).sort(dim=1).values


def resample_quantiles(q: Tensor, n: int) -> Tensor:
    """A sorted [C, M] quantile table linearly resampled to [C, n] (a histogram stays a histogram)."""
    if q.shape[1] == n:
        return q
    return F.interpolate(q.unsqueeze(0), size=n, mode="linear", align_corners=True)[0]


def blend_quantiles(qs: list[Tensor], weights: list[float], n: int) -> Tensor:
    """Weighted average of quantile functions: in 1-D this is the Wasserstein barycentre of the
    styles' per-channel histograms, the histogram analogue of blending Gram matrices."""
    out = None
    for q, w in zip(qs, weights):
        r = resample_quantiles(q, n) * w
        out = r if out is None else out + r
    assert out is not None
    return out


def hist_loss(f: Tensor, target_sorted: Tensor, mask: Tensor | None = None) -> Tensor:
    """Risser et al. histogram loss: mean (F − R(F))² where R(F) gives each value the target's value of
    the same rank in its channel (computed without gradient, as in the paper).

    With a mask, only positions with weight above 0.5 take part (a region's histogram).
    """
    _, c, h, w = f.shape
    flat = f.reshape(c, h * w)
    if mask is not None:
        keep = mask.reshape(h * w) > 0.5
        if not bool(keep.any()):
            return f.new_zeros(())
        flat = flat[:, keep]
    n = flat.shape[1]
    with torch.no_grad():
        q = resample_quantiles(target_sorted, n)
        order = flat.argsort(dim=1)
        remapped = torch.empty_like(flat).scatter_(1, order, q.to(flat.dtype))
    return (flat - remapped).pow(2).mean()


class NormalizeGrad(torch.autograd.Function):
    """Identity forward; backward returns strength · gradient / (‖gradient‖₁ + 1e-8).

    jcjohnson/neural-style normalises each loss module's gradient this way, then multiplies it by the
    module's weight, so every layer pushes the image with a strength set by its weight alone, whatever
    the scale of its loss. Applied to a fork of a layer's activations used only by one loss term, so
    only that term's gradient is normalised. The incoming gradient already carries the term's weight;
    the L1 division removes it, which is why the weight is passed again as ``strength``.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, strength: float) -> Tensor:
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad * (ctx.strength / (grad.abs().sum() + 1e-8)), None


def normalize_grad(x: Tensor, strength: float = 1.0) -> Tensor:
    out: Tensor = NormalizeGrad.apply(x, strength)  # type: ignore[no-untyped-call]
    return out


__all__ = [
    "NormalizeGrad",
    "W2Target",
    "blend_quantiles",
    "hist_loss",
    "moments",
    "normalize_grad",
    "resample_quantiles",
    "sorted_target",
    "style_layer_loss",
    "w2_loss",
]
