"""Colour spaces for the judges (pure functions)."""

from __future__ import annotations

import torch
from torch import Tensor


def srgb_to_lab(rgb: Tensor) -> Tensor:
    """sRGB [3, H, W] in [0, 1] -> CIELAB [3, H, W] (D65 white, float64)."""
    x = rgb.double().clamp(0.0, 1.0)
    lin = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    m = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                      [0.2126729, 0.7151522, 0.0721750],
                      [0.0193339, 0.1191920, 0.9503041]], dtype=torch.float64)
    xyz = torch.einsum("ij,jhw->ihw", m, lin)
    white = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64).view(3, 1, 1)
    t = xyz / white
    eps, kappa = 216.0 / 24389.0, 24389.0 / 27.0
    ft = torch.where(t > eps, t.clamp_min(1e-12) ** (1.0 / 3.0), (kappa * t + 16.0) / 116.0)
    lab_l = 116.0 * ft[1] - 16.0
    lab_a = 500.0 * (ft[0] - ft[1])
    lab_b = 200.0 * (ft[1] - ft[2])
    return torch.stack([lab_l, lab_a, lab_b])


__all__ = ["srgb_to_lab"]
