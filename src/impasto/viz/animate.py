"""Animations: the content/style balance sweep and the optimisation as a GIF/MP4.

The balance sweep optimises L = α·Lc + (1−α)·Ls (times the configuration's content and style weights,
:attr:`Config.alpha`) for α from 0 (style only) to 1 (content only). Each frame starts from the previous
frame's pixels, so consecutive frames differ only by what the changed balance moves: the animation is
smooth instead of flickering between independent optimisations.

GIFs are written with Pillow; MP4 with imageio + imageio-ffmpeg (imported only when asked for).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.errors import ImpastoError
from impasto.inputs import ImageLike, as_rgb
from impasto.io import atomic_write, check_writable
from impasto.io.images import to_pil
from impasto.vgg.weights import VGGWeights, load_weights

ANIMATION_SUFFIXES = (".gif", ".mp4")


@dataclass
class BalanceFrame:
    alpha: float
    image: Tensor
    """[3, H, W] RGB in [0, 1]."""
    content: float
    style: float
    """Weighted content and style terms at the end of this frame's optimisation."""


def check_animation_path(path: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]] = ()) -> Path:
    """Validate an animation output path (.gif or .mp4) before a run starts."""
    if Path(path).suffix.lower() not in ANIMATION_SUFFIXES:
        raise ImpastoError(f"animation {path} must end in {' or '.join(ANIMATION_SUFFIXES)}")
    out = check_writable(path, inputs)
    if out.suffix.lower() == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise ImpastoError("MP4 output needs imageio-ffmpeg (pip install impasto[viz]); or write a .gif") from None
    return out


def _common_size(frames: Sequence[Tensor], even: bool) -> list[Image.Image]:
    """Frames as PIL images, all resized to the last frame's size (coarse-to-fine frames are smaller)."""
    if not frames:
        raise ImpastoError("no frames to animate")
    h, w = (int(frames[-1].shape[-2]), int(frames[-1].shape[-1]))
    if even:  # yuv420p video needs even dimensions
        h, w = h - h % 2, w - w % 2
    out = []
    for f in frames:
        im = to_pil(f)
        if im.size != (w, h):
            im = im.resize((w, h), Image.Resampling.LANCZOS)
        out.append(im.convert("RGB"))
    return out


def write_animation(frames: Sequence[Tensor], path: str | os.PathLike[str], *, fps: float = 8.0,
                    hold_last: int = 4) -> Path:
    """Write ``frames`` ([3, H, W] in [0, 1]) as a looping GIF or an MP4, atomically.

    The last frame is shown ``hold_last`` extra frame-times so the result stays on screen a moment.
    """
    out = check_animation_path(path)
    mp4 = out.suffix.lower() == ".mp4"
    images = _common_size(frames, even=mp4)
    images += [images[-1]] * max(0, hold_last)

    def write(fh: BinaryIO) -> None:
        if mp4:
            import imageio.v2 as iio

            # ffmpeg writes to a path: encode into a private temporary folder, then copy into the
            # atomic writer's file.
            with tempfile.TemporaryDirectory(prefix="impasto-") as tmpdir:
                tmp = os.path.join(tmpdir, "anim.mp4")
                writer = iio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                        quality=8, pixelformat="yuv420p", macro_block_size=1)
                try:
                    for im in images:
                        writer.append_data(np.asarray(im))
                finally:
                    writer.close()
                with open(tmp, "rb") as src:
                    shutil.copyfileobj(src, fh)
        else:
            # One adaptive palette per frame: paintings need more than a shared 256-colour palette.
            pal = [im.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
                   for im in images]
            pal[0].save(fh, format="GIF", save_all=True, append_images=pal[1:],
                        duration=round(1000.0 / fps), loop=0, optimize=False, disposal=1)

    atomic_write(out, write)
    return out


def balance_alphas(frames: int, spacing: str = "log", span: float = 1e4) -> list[float]:
    """``frames`` values of α from 0 (style only) to 1 (content only).

    ``linear``: evenly spaced. ``log`` (default): between the two ends, the ratio α/(1−α) runs
    geometrically from 1/span to span. With evenly spaced α nearly every frame looked the same: the
    weighted content and style terms differ by orders of magnitude, so the picture only changes once
    α/(1−α) is large (measured on Tübingen × Starry Night: α = 0, 0.25, 0.5, 0.75 indistinguishable).
    """
    if frames < 2:
        raise ImpastoError(f"a balance sweep needs at least 2 frames (got {frames})")
    if spacing == "linear":
        return [i / (frames - 1) for i in range(frames)]
    if spacing != "log":
        raise ImpastoError(f"balance spacing must be log or linear (got {spacing!r})")
    if not (math.isfinite(span) and span > 1.0):
        raise ImpastoError(f"balance span must be > 1 (got {span})")
    inner = frames - 2
    ratios = [span ** (-1.0 + 2.0 * i / (inner - 1)) if inner > 1 else 1.0 for i in range(inner)]
    return [0.0, *(r / (1.0 + r) for r in ratios), 1.0]


def balance_sweep(
    content: ImageLike,
    style: ImageLike,
    config: Config | None = None,
    alphas: Sequence[float] | None = None,
    *,
    first_steps: int | None = None,
    weights: VGGWeights | None = None,
) -> Iterator[BalanceFrame]:
    """Yield one :class:`BalanceFrame` per α, each warm-started from the previous frame.

    ``config`` gives everything but ``alpha`` (its ``steps`` are per frame; a single scale is advised);
    ``first_steps`` (default 3 × steps) are spent on the first frame, which starts from ``config.init``.
    """
    cfg = config if config is not None else Config(size=192, start_size=None, steps=20)
    alphas = list(alphas) if alphas is not None else balance_alphas(12)
    if not alphas or any(not 0.0 <= a <= 1.0 for a in alphas):
        raise ImpastoError(f"balance α values must lie in [0, 1] (got {alphas})")
    w = weights if weights is not None else load_weights(cfg.weights, fmt=cfg.weights_format)
    content_rgb, style_rgb = as_rgb(content), as_rgb(style)
    prev: Tensor | None = None
    for i, a in enumerate(alphas):
        steps = cfg.steps if i > 0 else (first_steps if first_steps is not None else 3 * cfg.steps)
        fc = cfg.replace(alpha=a, steps=steps)
        st = StyleTransfer(content_rgb, [style_rgb], fc, weights=w, init_image=prev)
        last = None
        for ev in st.run():
            last = ev
        assert last is not None and last.image is not None
        prev = last.image
        yield BalanceFrame(alpha=a, image=last.image, content=last.content, style=last.style)


def balance_grid(frames: Sequence[BalanceFrame], path: str | os.PathLike[str], picks: int = 5) -> Path:
    """A PNG row of ``picks`` frames at evenly chosen α values, each labelled with its α."""
    from impasto.io.images import save_image

    if not frames:
        raise ImpastoError("no frames for the grid")
    n = min(picks, len(frames))
    idx = sorted({round(i * (len(frames) - 1) / max(1, n - 1)) for i in range(n)})
    tiles = [to_pil(frames[i].image).convert("RGB") for i in idx]
    w, h = tiles[-1].size
    label_h = 22
    sheet = Image.new("RGB", (w * len(tiles), h + label_h), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (i, im) in enumerate(zip(idx, tiles)):
        sheet.paste(im.resize((w, h)), (k * w, label_h))
        a = frames[i].alpha
        # The content:style ratio says more than α near 0 and 1 (α = 0.9999 is 10000:1).
        tag = ("style only" if a == 0 else "content only" if a == 1
               else f"alpha {a:.4g}, c:s = {a / (1 - a):.3g}")
        draw.text((k * w + 4, 4), tag, fill="black")
    rgb = torch.from_numpy(np.asarray(sheet).copy()).permute(2, 0, 1).float() / 255.0
    return save_image(rgb, path)


__all__ = ["BalanceFrame", "balance_alphas", "balance_grid", "balance_sweep", "check_animation_path", "write_animation"]
