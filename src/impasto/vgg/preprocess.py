"""How an RGB image in [0, 1] becomes a VGG's input (one implementation, used by the weights loader and
the feature extractor alike)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Preprocess:
    """How an RGB [0,1] image becomes this network's input."""

    bgr: bool
    """Reverse the channel order (RGB -> BGR) first."""
    scale: float
    """Multiply [0,1] pixels by this (255.0 for Caffe, 1.0 for torchvision)."""
    mean: tuple[float, float, float]
    """Subtracted after scaling, in the *network's* channel order."""
    std: tuple[float, float, float]
    """Divided by after mean subtraction."""

    def __post_init__(self) -> None:
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("Preprocess.mean and .std need exactly 3 values")
        if not self.scale > 0 or any(not s > 0 for s in self.std):
            raise ValueError("Preprocess.scale and .std must be positive")

    def stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std as [3, 1, 1] tensors of ``x``'s dtype and device (cache them for repeated use)."""
        if x.dim() < 3 or x.shape[-3] != 3:
            raise ValueError(f"expected an image tensor [..., 3, H, W], got shape {tuple(x.shape)}")
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(3, 1, 1)
        return mean, std

    def apply(self, x: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``x`` [N,3,H,W] RGB in [0,1] -> network input. Differentiable; never modifies ``x``.

        ``stats``: :meth:`stats` computed once (the feature extractor caches them on its device)."""
        mean, std = self.stats(x) if stats is None else (stats[0].to(x.dtype), stats[1].to(x.dtype))
        y = x.flip(-3) if self.bgr else x
        if self.scale != 1.0:
            y = y * self.scale
        y = y - mean
        if self.std != (1.0, 1.0, 1.0):
            y = y / std
        return y

    def invert(self, y: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`apply`: network input -> RGB in [0,1] (not clamped)."""
        mean, std = self.stats(y)
        x = y * std if self.std != (1.0, 1.0, 1.0) else y
        x = x + mean
        if self.scale != 1.0:
            x = x / self.scale
        return x.flip(-3) if self.bgr else x


CAFFE = Preprocess(bgr=True, scale=255.0, mean=(103.939, 116.779, 123.68), std=(1.0, 1.0, 1.0))
"""Caffe VGG: BGR, 0-255, minus the ImageNet mean pixel (B, G, R)."""
TORCHVISION = Preprocess(bgr=False, scale=1.0, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
"""torchvision VGG: RGB in [0,1], ImageNet mean/std normalisation."""
_CAFFE_RGB = Preprocess(bgr=False, scale=255.0, mean=(123.68, 116.779, 103.939), std=(1.0, 1.0, 1.0))
"""Caffe weights whose conv1_1 input channels were reordered to RGB by whoever converted them."""
