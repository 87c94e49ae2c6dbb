"""Animations: the content/style balance sweep and the optimisation as a GIF/MP4.

The balance sweep optimises L = α·Lc + (1−α)·Ls (times the configuration's content and style weights,
:attr:`Config.alpha`) for α from 0 (style only) to 1 (content only). Each frame starts from the previous
frame's pixels, so consecutive frames differ only by what the changed balance moves: the animation is
smooth instead of flickering between independent optimisations.

GIFs are written with Pillow; MP4 with imageio + imageio-ffmpeg (imported only when asked for).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from impasto.config import Config
from impasto.engine import ImageLike, StyleTransfer, as_rgb
from impasto.errors import ImpastoError
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
    p = Path(path).expanduser()
    if p.suffix.lower() not in ANIMATION_SUFFIXES:
        raise ImpastoError(f"animation {p} must end in {' or '.join(ANIMATION_SUFFIXES)}")
    if p.is_dir():
        raise ImpastoError(f"animation output {p} is a folder; give a file name such as {p / 'sweep.gif'}")
    for inp in inputs:
        if os.path.exists(inp) and p.exists() and os.path.samefile(p, inp):
            raise ImpastoError(f"animation output {p} is the same file as input {inp}; refusing to overwrite it")
    parent = Path(os.path.realpath(p)).parent
    if not parent.is_dir():
        raise ImpastoError(f"output folder {parent} does not exist; create it first")
    if p.suffix.lower() == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise ImpastoError("MP4 output needs imageio-ffmpeg (pip install impasto[viz]); or write a .gif") from None
    return Path(os.path.realpath(p))


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
    fd, tmp = tempfile.mkstemp(prefix=".impasto-", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    try:
        if mp4:
            import imageio.v2 as iio

            writer = iio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                    quality=8, pixelformat="yuv420p", macro_block_size=1)
            try:
                for im in images:
                    writer.append_data(np.asarray(im))
            finally:
                writer.close()
        else:
            # One adaptive palette per frame: paintings need more than a shared 256-colour palette.
            pal = [im.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
                   for im in images]
            pal[0].save(tmp, format="GIF", save_all=True, append_images=pal[1:],
                        duration=round(1000.0 / fps), loop=0, optimize=False, disposal=1)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; an animation is an ordinary output file
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
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


def cli_balance(argv: Sequence[str]) -> int:
    """``impasto balance CONTENT STYLE -o sweep.gif|.mp4 [--frames N] [--steps N] [--size PX] [--grid PNG]``."""
    from impasto import presets
    from impasto.io.images import check_output_path, load_image

    p = argparse.ArgumentParser(
        prog="impasto balance",
        description="Animate L = α·content + (1−α)·style from style only (α=0) to content only (α=1); "
        "each frame warm-starts from the previous one.",
    )
    p.add_argument("content")
    p.add_argument("style")
    p.add_argument("-o", "--output", required=True, help="sweep.gif or sweep.mp4")
    p.add_argument("--frames", type=int, default=12, help="number of α values (default: 12)")
    p.add_argument("--spacing", choices=("log", "linear"), default="log",
                   help="α spacing: log spaces the ratio α/(1−α) from 1/span to span (default), linear "
                        "spaces α evenly")
    p.add_argument("--span", type=float, default=1e4, help="log spacing's largest ratio (default: 1e4)")
    p.add_argument("--steps", type=int, default=20, help="optimiser steps per frame (default: 20)")
    p.add_argument("--first-steps", type=int, default=None, help="steps for the first frame (default: 3 × steps)")
    p.add_argument("--size", type=int, default=192, help="long side in pixels (default: 192)")
    p.add_argument("--fps", type=float, default=6.0, help="frames per second (default: 6)")
    p.add_argument("--grid", metavar="PNG", help="grid of 5 selected α values (default: OUTPUT_grid.png)")
    p.add_argument("--preset", metavar="NAME", help="base configuration (default: impasto's own)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(list(argv))
    if args.steps < 1 or args.size < 16:
        raise ImpastoError("--steps must be >= 1 and --size >= 16")
    inputs = [args.content, args.style]
    out = check_animation_path(args.output, inputs)
    grid = Path(args.grid) if args.grid else out.with_name(out.stem + "_grid.png")
    grid = check_output_path(grid, inputs)
    base = presets.preset_config(args.preset, allow_vgg19=True) if args.preset else Config()
    cfg = base.replace(size=args.size, start_size=None, steps=args.steps, seed=args.seed)
    alphas = balance_alphas(args.frames, args.spacing, args.span)
    frames: list[BalanceFrame] = []
    for fr in balance_sweep(load_image(args.content), load_image(args.style), cfg, alphas,
                            first_steps=args.first_steps):
        frames.append(fr)
        if not args.quiet:
            print(f"frame {len(frames)}/{len(alphas)} alpha={fr.alpha:.3f} content={fr.content:.4g} "
                  f"style={fr.style:.4g}", file=sys.stderr, flush=True)
    write_animation([f.image for f in frames], out, fps=args.fps)
    balance_grid(frames, grid)
    if not args.quiet:
        print(f"wrote {out} ({len(frames)} frames) and {grid}", file=sys.stderr)
    return 0


__all__ = ["BalanceFrame", "balance_alphas", "balance_grid", "balance_sweep", "check_animation_path",
           "cli_balance", "write_animation"]
