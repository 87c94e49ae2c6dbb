"""The temporal loss of Ruder, Dosovitskiy and Brox (2016), as an engine ``extra_loss``.

L_temporal = γ · Σ_j (1/D) Σ_k c_jk · (x_k − ω_jk)²

over the previous frames j (one for the short-term loss, several for the long-term one), where ω_j is
stylised frame t-j warped into frame t, c_j its reliability weights and D = C·H·W.

Calibration. The paper's γ = 1e3 sits next to content weight 5 and style weight 100 in
jcjohnson/neural-style's normalisation (their torch code, artistic-videos): mean-squared content error,
Gram matrices divided by C·H·W, mean-squared Gram error, and images in Caffe's 0-255 units. impasto's
defaults are that normalisation exactly (same layers, same forms, VGG fed 0-255 Caffe input), so
the paper's γ carries over unchanged provided x and ω are measured in 0-255 units too: the loss here
takes [0, 1] pixels and multiplies the differences by 255. ``--temporal-weight 1000`` is therefore the
paper's setting; the measured table in the README checks it (temporal error and style distance).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

PIXEL_UNITS = 255.0
"""The temporal loss measures pixel differences in 0-255 units (see the module docstring)."""
DEFAULT_TEMPORAL_WEIGHT = 1e3


def temporal_loss_value(x: Tensor, warped: Tensor, weights: Tensor) -> Tensor:
    """(1/D) Σ c·(255·(x − ω))² for one previous frame; x, ω [1, 3, H, W] in [0, 1], c [H, W]."""
    d = (x - warped) * PIXEL_UNITS
    return (weights * d.pow(2)).sum() / x.numel()


class TemporalLoss:
    """γ·Σ_j temporal_loss_value(x, ω_j, c_j), resized to whatever scale the engine optimises.

    The engine calls it with the pixels at the current scale ([1, 3, h, w] in [0, 1]); the warped
    frames and weights are resampled to that size once per size and cached (bilinear for images,
    area-averaged for the weights).
    """

    name = "temporal"

    def __init__(self, warped: Sequence[Tensor], weights: Sequence[Tensor], weight: float) -> None:
        if len(warped) != len(weights):
            raise ValueError("one weight map per warped frame")
        self.warped = [w.detach().float().unsqueeze(0) if w.ndim == 3 else w.detach().float() for w in warped]
        self.weights = [c.detach().float() for c in weights]
        self.weight = float(weight)
        self._cache: dict[tuple[int, int, str], list[tuple[Tensor, Tensor]]] = {}

    def _at(self, size: tuple[int, int], device: torch.device) -> list[tuple[Tensor, Tensor]]:
        key = (size[0], size[1], str(device))
        if key not in self._cache:
            pairs = []
            for w, c in zip(self.warped, self.weights, strict=True):
                if tuple(w.shape[-2:]) != size:
                    w = F.interpolate(w, size=size, mode="bilinear", align_corners=False)
                    c = F.interpolate(c[None, None], size=size, mode="area")[0, 0]
                pairs.append((w.to(device), c.to(device)))
            self._cache = {key: pairs}  # one size at a time: the engine never goes back to a coarser one
        return self._cache[key]

    def __call__(self, pixels: Tensor) -> Tensor:
        size = (int(pixels.shape[-2]), int(pixels.shape[-1]))
        total = pixels.new_zeros(())
        for w, c in self._at(size, pixels.device):
            total = total + temporal_loss_value(pixels, w.to(pixels.dtype), c.to(pixels.dtype))
        return self.weight * total
