"""A regular lattice at print sizes: 1:1 crops of one place at every large scale, and how periodic they are.

    PYTHONPATH=src python3 scripts/print_lattice.py PHOTO PAINTING --size 8192 --max-memory 24GiB \
        --variant default --variant pooling=avg --variant style_scale=0.5 \
        --json docs/perf/print_lattice_gpu_8192.json --montage docs/img/print_lattice_8192.png

An 8192 px print of the default showed, at 1:1, a diagonal lattice of about 16 px period over the sky
where a painterly texture belongs. For each variant (``default``, or ``field=value`` overrides of the
default :class:`~impasto.config.Config`) this runs the schedule to ``--size`` under ``--max-memory`` and,
at the end of every scale whose long side is at least ``--from-size``, keeps a crop of the same place
(``--at``, fractions of height and width): ``--crop`` px at 1:1 for the montage (a row per variant, a
column per scale), and 512 px for the figure.

The figure, ``peak_over_median``: the grey crop, less its mean, under a Hann window; its power spectrum
over the annulus of periods 6 to 48 px; the largest bin over the annulus's median bin. A lattice puts its
energy in a few bins (a large figure); a painterly texture spreads it (a small one).

``--score IMAGE ...`` runs nothing: it gives the figure of finished pictures (a PNG or JPEG; JPEG's
8 px blocks add little at these periods) at :data:`PLACES`, 512 px grey crops from 8-bit pixels.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.io import load_image

FIGURE_CROP = 512
PLACES = ((0.33, 0.28), (0.2, 0.5), (0.6, 0.35))
"""Where ``--score`` looks (fractions of height and width): on the rocket, sky left of it, above it and
lower left between the towers."""


def peak_over_median(grey: np.ndarray, shortest: float = 6.0, longest: float = 48.0) -> float:
    """Largest power-spectrum bin over the median bin, over periods ``shortest`` to ``longest`` px."""
    h, w = grey.shape
    g = (grey - grey.mean()) * np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.fft2(g)) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    radius = np.hypot(fy, fx)
    ring = power[(radius >= 1.0 / longest) & (radius <= 1.0 / shortest)]
    return float(ring.max() / np.median(ring))


def variant_config(base: Config, spec: str) -> Config:
    """``default`` or ``field=value`` (the value converted to the field's default's type)."""
    if spec == "default":
        return base
    name, _, text = spec.partition("=")
    fields = {f.name: f for f in dataclasses.fields(Config)}
    if name not in fields or not text:
        raise SystemExit(f"print_lattice: {spec!r} is not default or FIELD=VALUE of Config")
    current = getattr(base, name)
    value: Any = (text.lower() in ("1", "true", "on") if isinstance(current, bool) else
                  type(current)(text) if isinstance(current, (int, float)) else text)
    return base.replace(**{name: value})


def crop_at(image: torch.Tensor, at: tuple[float, float], side: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    side = min(side, h, w)
    top = min(max(0, round(at[0] * h) - side // 2), h - side)
    left = min(max(0, round(at[1] * w) - side // 2), w - side)
    return image[:, top : top + side, left : left + side]


def score(paths: list[Path], json_path: Path, argv: list[str]) -> int:
    """The figure of finished pictures at :data:`PLACES`."""
    Image.MAX_IMAGE_PIXELS = 80_000_000  # an 8192 px print is 45 Mpx
    rows = []
    for path in paths:
        with Image.open(path) as im:
            grey = np.asarray(im.convert("L"), dtype=np.float64)
        h, w = grey.shape
        figs = []
        for fy, fx in PLACES:
            t = min(max(0, round(fy * h) - FIGURE_CROP // 2), h - FIGURE_CROP)
            left = min(max(0, round(fx * w) - FIGURE_CROP // 2), w - FIGURE_CROP)
            figs.append(round(peak_over_median(grey[t : t + FIGURE_CROP, left : left + FIGURE_CROP]), 1))
        rows.append({"image": str(path), "width": w, "height": h, "peak_over_median": figs})
        print(f"{path} ({w}x{h}): peak/median {figs} at {list(PLACES)}")
    out = {"what": "print_lattice's figure of finished pictures", "places": [list(p) for p in PLACES],
           "figure_crop": FIGURE_CROP, "command": "PYTHONPATH=src python3 scripts/print_lattice.py " + " ".join(argv),
           "images": rows}
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(out, indent=1) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--score"]:
        sp = argparse.ArgumentParser(description="print_lattice's figure of finished pictures")
        sp.add_argument("--score", type=Path, nargs="+", required=True)
        sp.add_argument("--json", type=Path, required=True)
        b = sp.parse_args(args)
        return score(b.score, b.json, args)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("content")
    ap.add_argument("style")
    ap.add_argument("--size", type=int, default=8192)
    ap.add_argument("--max-memory", default="24GiB")
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--from-size", type=int, default=2048)
    ap.add_argument("--at", type=float, nargs=2, default=(0.33, 0.28), metavar=("Y", "X"))
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--montage", type=Path, required=True)
    a = ap.parse_args(argv)
    variants = a.variant or ["default"]
    content, style = load_image(a.content), load_image(a.style)
    base = Config(size=a.size, max_memory=a.max_memory)
    rows: list[dict[str, Any]] = []
    tiles: list[list[np.ndarray]] = []
    for spec in variants:
        cfg = variant_config(base, spec)
        st = StyleTransfer(content, [style], cfg)
        t0 = time.perf_counter()
        scales: list[dict[str, Any]] = []
        row_tiles: list[np.ndarray] = []
        for ev in st.run():
            if ev.done:
                break
            if st._pos.done >= st.steps[ev.scale] and max(ev.size) >= a.from_size:
                image = st.current_image()
                fig = crop_at(image, a.at, FIGURE_CROP)
                grey = (0.299 * fig[0] + 0.587 * fig[1] + 0.114 * fig[2]).numpy()
                scales.append({"height": ev.size[0], "width": ev.size[1], "loss": ev.loss, "style": ev.style,
                               "peak_over_median": round(peak_over_median(grey), 1)})
                small = crop_at(image, a.at, a.crop)
                row_tiles.append((small.permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8))
                print(f"{spec}: {ev.size[1]}x{ev.size[0]} peak/median {scales[-1]['peak_over_median']}", flush=True)
        rows.append({"variant": spec, "seconds": round(time.perf_counter() - t0, 1), "scales": scales})
        tiles.append(row_tiles)
        del st
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    c, gap, label = a.crop, 6, 18
    cols = max(len(r) for r in tiles)
    sheet = Image.new("RGB", (cols * (c + gap) - gap, len(tiles) * (c + label + gap) - gap), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (row, r) in enumerate(zip(tiles, rows, strict=True)):
        y = i * (c + label + gap)
        for j, (tile, sc) in enumerate(zip(row, r["scales"], strict=True)):
            x = j * (c + gap)
            draw.text((x + 2, y + 2), f"{r['variant']} {sc['width']}px {sc['peak_over_median']}", fill="black")
            sheet.paste(Image.fromarray(tile), (x, y + label))
    a.montage.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(a.montage)
    out = {"what": __doc__.split("\n")[0], "command": "PYTHONPATH=src python3 scripts/print_lattice.py "
           + " ".join(sys.argv[1:] if argv is None else argv),
           "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
           "at": list(a.at), "figure_crop": FIGURE_CROP, "variants": rows}
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {a.json} and {a.montage}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
