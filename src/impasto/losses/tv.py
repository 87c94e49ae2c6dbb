"""Total variation: the smoothness prior (not in the paper)."""

from __future__ import annotations

from torch import Tensor


def tv_loss(x: Tensor, form: str = "l2") -> Tensor:
    """Total variation of images ``x`` [B, C, H, W] (neighbour differences down and across).

      - ``"l1"``: Σ |x[i+1,j] − x[i,j]| + Σ |x[i,j+1] − x[i,j]|  (= ``tf.image.total_variation``),
      - ``"l2"``: Σ (x[i+1,j] − x[i,j])² + Σ (x[i,j+1] − x[i,j])²  (squared, as jcjohnson/neural-style).

    The paper has no TV term; it is the usual regulariser against high-frequency noise.
    """
    dh = x[:, :, 1:, :] - x[:, :, :-1, :]
    dw = x[:, :, :, 1:] - x[:, :, :, :-1]
    return tv_penalty(dh, form) + tv_penalty(dw, form)


def tv_penalty(d: Tensor, form: str = "l2") -> Tensor:
    """Σ |d| (``"l1"``) or Σ d² (``"l2"``) of neighbour differences ``d``: one direction of
    :func:`tv_loss` (the tiled objective sums it over the pairs each tile owns)."""
    if form == "l1":
        return d.abs().sum()
    if form == "l2":
        return d.pow(2).sum()
    raise ValueError(f"unknown total-variation loss {form!r}")
