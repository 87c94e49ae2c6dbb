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
    if form == "l1":
        return dh.abs().sum() + dw.abs().sum()
    if form == "l2":
        return dh.pow(2).sum() + dw.pow(2).sum()
    raise ValueError(f"unknown total-variation loss {form!r}")
