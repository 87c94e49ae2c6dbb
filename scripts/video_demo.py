"""The README's video picture: independent frames (flicker) next to ``impasto video`` (consistent).

Run from the repository root::

    PYTHONPATH=src .venv/bin/python scripts/video_demo.py --out docs/img/video.gif

The clip is made here, so the project may redistribute it: a synthetic camera move (a pan down with a
slow zoom in) over the bundled public-domain photo (``src/impasto/data/content.jpg``), stylised with the
bundled procedural painting (``style.png``). Both halves use the same configuration for frame 1; the
left half then stylises every frame from scratch, the right half warm-starts from the warped previous
result with the temporal loss. Work goes to ``out/video_demo/`` and resumes there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from impasto.config import Config
from impasto.io import default_content_path, default_style_path, load_image, resize_to, to_pil
from impasto.vgg import load_weights
from impasto.video.io import Clip, FrameStore, _to_u8, write_video
from impasto.video.stylize import VideoOptions, VideoStylizer


def camera_move(image: torch.Tensor, n: int, size: tuple[int, int], zoom: float = 0.18) -> list[torch.Tensor]:
    """``n`` frames ([3, H, W]) of a 4:3 window that pans down the image while zooming in by ``zoom``."""
    h_out, w_out = size
    _, H, W = image.shape
    # Pre-shrink (antialiased) to about 1.5x the window's scale so bilinear sampling does not alias.
    win_w0 = W * 0.9
    scale = min(1.0, 1.5 * w_out / win_w0)
    src = resize_to(image, (round(H * scale), round(W * scale))).unsqueeze(0)
    frames = []
    for k in range(n):
        t = k / max(n - 1, 1)
        ww = win_w0 * (1.0 - zoom * t)  # window width in original pixels
        wh = ww * h_out / w_out
        cx = W / 2
        cy = wh / 2 + 10 + t * (H * 0.55 - wh / 2)  # from the top towards the middle
        ys = torch.linspace(cy - wh / 2, cy + wh / 2, h_out)
        xs = torch.linspace(cx - ww / 2, cx + ww / 2, w_out)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([gx / (W - 1) * 2 - 1, gy / (H - 1) * 2 - 1], dim=-1).unsqueeze(0)
        frames.append(F.grid_sample(src, grid, mode="bicubic", padding_mode="border", align_corners=True)[0]
                      .clamp(0, 1))
    return frames


def stylise(clip: Clip, style: torch.Tensor, cfg: Config, opts: VideoOptions, work: Path) -> list[torch.Tensor]:
    work.mkdir(parents=True, exist_ok=True)
    store = FrameStore(work, len(clip.frames))
    for ev in VideoStylizer(clip, [style], cfg, store, opts, weights=load_weights(None)).run():
        if ev.kind == "frame":
            print(f"  {work.name} frame {ev.frame + 1}/{ev.n_frames}: {ev.frame_seconds:.1f}s", flush=True)
    return [store.load(i) for i in range(len(clip.frames))]


def side_by_side(left: torch.Tensor, right: torch.Tensor, labels: tuple[str, str]) -> torch.Tensor:
    a, b = to_pil(left), to_pil(right)
    gap, bar = 6, 16
    canvas = Image.new("RGB", (a.width + b.width + gap, a.height + bar), "white")
    canvas.paste(a, (0, bar))
    canvas.paste(b, (a.width + gap, bar))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), labels[0], fill="black")
    draw.text((a.width + gap + 4, 2), labels[1], fill="black")
    return torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1).float() / 255.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--width", type=int, default=192)
    p.add_argument("--steps", type=int, default=80, help="frame 1, and every frame of the independent half")
    p.add_argument("--frame-steps", type=int, default=40, help="later frames of the consistent half")
    p.add_argument("--fps", type=float, default=8.0)
    p.add_argument("--out", default="docs/img/video.gif")
    p.add_argument("--work", default="out/video_demo")
    args = p.parse_args(argv)
    size = (args.width * 3 // 4, args.width)
    frames = camera_move(load_image(default_content_path()).rgb, args.frames, size)
    clip = Clip(frames=[_to_u8(f) for f in frames], fps=args.fps, has_audio=False, source=default_content_path(),
                kind="frames", identity=f"camera move {args.frames}x{size}")
    style = load_image(default_style_path()).rgb
    cfg = Config(size=args.width, start_size=None, steps=args.steps)
    work = Path(args.work) / f"{args.width}px_{args.frames}_{args.steps}_{args.frame_steps}"
    work.mkdir(parents=True, exist_ok=True)
    write_video(frames, work / "input.gif", args.fps)  # the clip itself, to look at
    print("independent:", flush=True)
    indep = stylise(clip, style, cfg, VideoOptions(warm_start=False, temporal_weight=0.0), work / "independent")
    print("consistent:", flush=True)
    cons = stylise(clip, style, cfg, VideoOptions(frame_steps=args.frame_steps), work / "consistent")
    pairs = [side_by_side(a, b, ("independent frames", "impasto video")) for a, b in zip(indep, cons)]
    out = Path(args.out)
    write_video(pairs, out, args.fps)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
