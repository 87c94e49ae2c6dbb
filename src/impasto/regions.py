"""Region masks for guided style transfer (Gatys et al. 2017): a mask image's colours pick regions,
each region a style number (from 1) or ``content`` (that region keeps the photo).

Pure parsing and mask arithmetic; nothing here reads a Config.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto.errors import ImpastoError

NAMED_COLORS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0), "white": (255, 255, 255), "red": (255, 0, 0), "green": (0, 255, 0),
    "blue": (0, 0, 255), "yellow": (255, 255, 0), "cyan": (0, 255, 255), "magenta": (255, 0, 255),
    "gray": (128, 128, 128), "grey": (128, 128, 128),
}

CONTENT_REGION = "content"


def _is_whole(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts '²', which ``int()`` then refuses."""
    return re.fullmatch(r"[0-9]+", text) is not None


def parse_color(text: str) -> tuple[int, int, int]:
    """``red`` / ``#ff0000`` / ``255,0,0`` -> (r, g, b) in 0-255."""
    t = text.strip().lower()
    if t in NAMED_COLORS:
        return NAMED_COLORS[t]
    m = re.fullmatch(r"#?([0-9a-f]{6})", t)
    if m:
        v = int(m.group(1), 16)
        return (v >> 16) & 255, (v >> 8) & 255, v & 255
    parts = t.split(",")
    if len(parts) == 3 and all(_is_whole(p.strip()) and int(p) <= 255 for p in parts):
        return int(parts[0]), int(parts[1]), int(parts[2])
    names = ", ".join(sorted(NAMED_COLORS))
    raise ImpastoError(f"unknown region colour {text!r} (use {names}, #rrggbb or r,g,b)")


def parse_region(spec: str) -> tuple[tuple[int, int, int], int | str]:
    """``COLOR=N`` (1-based style number), ``COLOR=content`` or ``COLOR=PATH`` -> (rgb, N-1, 'content'
    or the path). Paths are for the command line, which turns them into style numbers."""
    if "=" not in spec:
        raise ImpastoError(f"a region is COLOR=STYLE, e.g. red=1 or blue=content (got {spec!r})")
    color_text, target = spec.rsplit("=", 1)
    color = parse_color(color_text)
    target = target.strip()
    if target.lower() == CONTENT_REGION:
        return color, CONTENT_REGION
    if _is_whole(target) and int(target) >= 1:
        return color, int(target) - 1
    if not target or _is_whole(target.lstrip("-")):
        raise ImpastoError(f"region {spec!r}: the style must be a style number from 1, a style image or 'content'")
    return color, target


@dataclass
class RegionMasks:
    """One-hot region maps of the mask image at its own resolution, one per ``--region``."""

    onehot: Tensor
    """[R, H, W] float, each pixel 1 in the region whose colour is nearest to the pixel's."""
    targets: list[int | str]
    """Per region: the style index, or 'content'."""

    @classmethod
    def from_image(cls, mask_rgb: Tensor, regions: Sequence[str], n_styles: int) -> RegionMasks:
        parsed = [parse_region(r) for r in regions]
        for spec, (_, t) in zip(regions, parsed):
            if isinstance(t, str) and t != CONTENT_REGION:
                raise ImpastoError(f"region {spec!r}: give the style number (from 1) of one of the style images")
            if isinstance(t, int) and t >= n_styles:
                raise ImpastoError(f"region {spec!r} names style {t + 1}, but only {n_styles} style(s) given")
        cols = torch.tensor([c for c, _ in parsed], dtype=torch.float32) / 255.0  # [R, 3]
        px = mask_rgb.reshape(3, -1).T  # [HW, 3]
        # Nearest listed colour: anti-aliased edges and JPEG noise in a hand-painted mask still land
        # in a region.
        label = torch.cdist(px, cols).argmin(dim=1)
        onehot = F.one_hot(label, len(parsed)).T.reshape(len(parsed), *mask_rgb.shape[1:]).float()
        return cls(onehot=onehot, targets=[t for _, t in parsed])

    def at(self, size: tuple[int, int]) -> Tensor:
        """[R, h, w] region weights at ``size`` (area-averaged, so edges are soft and sum to 1)."""
        return F.interpolate(self.onehot.unsqueeze(0), size=size, mode="area")[0] if tuple(
            self.onehot.shape[1:]) != size else self.onehot

    def content_weight(self, size: tuple[int, int]) -> Tensor | None:
        """[1, h, w] weight of the regions that keep the content (None if there are none)."""
        idx = [i for i, t in enumerate(self.targets) if t == CONTENT_REGION]
        if not idx:
            return None
        m = self.at(size)
        return m[idx].sum(dim=0, keepdim=True).clamp(0.0, 1.0)
