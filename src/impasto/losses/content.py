"""Content loss: how far the generated image's responses are from the photo's at one layer."""

from __future__ import annotations

from torch import Tensor


def content_loss(f: Tensor, p: Tensor, form: str = "mse") -> Tensor:
    """Distance between generated features ``f`` and content features ``p`` at one layer.

    ``form``:
      - ``"sse"``: Σ (F − P)²  (Keras example),
      - ``"half_sse"``: ½ Σ (F − P)²  (the paper's L_content, eq. 1),
      - ``"mse"``: mean (F − P)² over all B·C·H·W entries (TF tutorial, PyTorch tutorial, jcjohnson),
      - ``"coursera"``: Σ (F − P)² / (4·nH·nW·nC)  (deeplearning.ai assignment).
    """
    d2 = (f - p).pow(2)
    if form == "sse":
        return d2.sum()
    if form == "half_sse":
        return 0.5 * d2.sum()
    if form == "mse":
        return d2.mean()
    if form == "coursera":
        _, c, h, w = f.shape
        return d2.sum() / (4.0 * c * h * w)
    raise ValueError(f"unknown content loss {form!r}")


def content_scale(form: str, shape: tuple[int, ...]) -> float:
    """The factor k with ``content_loss(f, p, form) == k · Σ (F − P)²`` for features of ``shape``
    [B, C, H, W]: every form is a sum over positions, so a tiled objective sums Σ (F − P)² over tiles
    and multiplies by k once (k uses the whole map's shape)."""
    b, c, h, w = (int(v) for v in shape)
    if form == "sse":
        return 1.0
    if form == "half_sse":
        return 0.5
    if form == "mse":
        return 1.0 / (b * c * h * w)
    if form == "coursera":
        return 1.0 / (4.0 * c * h * w)
    raise ValueError(f"unknown content loss {form!r}")
