"""A regular lattice at print sizes: 1:1 crops of one place at every large scale, and how periodic they are.

    PYTHONPATH=src python3 scripts/print_lattice.py PHOTO PAINTING --size 8192 --max-memory 24GiB \
        --variant default --variant pooling=avg --variant style_scale=0.5 \
        --json docs/perf/print_lattice_gpu_8192.json --montage docs/img/print_lattice_8192.png
    PYTHONPATH=src python3 scripts/print_lattice.py --make-testbed out/testbed     # the CPU testbed (TESTBED)
    OMP_NUM_THREADS=2 PYTHONPATH=src python3 scripts/print_lattice.py out/testbed/testbed_content.png \
        out/testbed/testbed_style.png --size 1024 --max-memory 8GiB --base start_size=none --base init=content \
        --base steps=40 --variant default --variant pooling=avg --from-size 1024 --at 0.5 0.5 \
        --json docs/perf/print_lattice_cpu_testbed.json --montage docs/img/print_lattice_cpu_testbed.png

An 8192 px print of the default showed, at 1:1, a diagonal lattice of about 16 px period over the sky
where a painterly texture belongs. For each variant (``default``, or ``field=value`` overrides of the
default :class:`~impasto.config.Config`) this runs the schedule to ``--size`` under ``--max-memory`` and,
at the end of every scale whose long side is at least ``--from-size``, keeps a crop of the same place
(``--at``, fractions of height and width): ``--crop`` px at 1:1 for the montage (a row per variant, a
column per scale), and 512 px for the figure.

The figure, ``dots``: the grey crop, less its mean, under a Hann window; its power spectrum averaged over
rings of equal frequency k and multiplied by k² (flat for the 1/k² spectrum of natural pictures); the
largest value at periods of 6 to 32 px over its value at 48 px. Dots of one size stand out of that
spectrum as a bump at their period (a large figure; fine noise raises it too, white noise to about
45); brush texture has none, and a picture with natural 1/k amplitude statistics is about 1. On 512 px crops at
:data:`PLACES`: The Starry Night itself 2.5, 2.7 and 2.5; neural-style's published results 0.5 to 1.5.
An earlier figure, the largest spectral bin over the median one, was as large for a smooth picture as
for a lattice, and is gone.

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


def dots(grey: np.ndarray, shortest: float = 6.0, longest: float = 32.0, reference: float = 48.0) -> float:
    """The largest k²-weighted ring power at periods ``shortest`` to ``longest`` px over its value at
    ``reference`` px, for a square grey crop (see the module's docstring)."""
    side = grey.shape[0]
    g = (grey - grey.mean()) * np.outer(np.hanning(side), np.hanning(grey.shape[1]))
    power = np.abs(np.fft.fft2(g)) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(side) * side, np.fft.fftfreq(grey.shape[1]) * side, indexing="ij")
    ring = np.hypot(fy, fx).astype(int).ravel()
    weighted = np.bincount(ring, power.ravel()) / np.maximum(np.bincount(ring), 1) * np.arange(ring.max() + 1) ** 2
    lo, hi = round(side / longest), round(side / shortest)
    return float(weighted[lo : hi + 1].max() / weighted[round(side / reference)])


def variant_config(base: Config, spec: str) -> Config:
    """``default`` or ``field=value`` (the value converted to the field's default's type), several joined
    by ``+``."""
    if spec == "default":
        return base
    if "+" in spec:
        for part in spec.split("+"):
            base = variant_config(base, part)
        return base
    name, _, text = spec.partition("=")
    fields = {f.name: f for f in dataclasses.fields(Config)}
    if name not in fields or not text:
        raise SystemExit(f"print_lattice: {spec!r} is not default or FIELD=VALUE of Config")
    current = getattr(base, name)
    if text.lower() == "none":
        return base.replace(**{name: None})
    if isinstance(current, tuple):  # comma-separated, each item of the default's items' type
        kind = type(current[0]) if current else str
        return base.replace(**{name: tuple(kind(item) for item in text.split(","))})
    value: Any = (text.lower() in ("1", "true", "on") if isinstance(current, bool) else
                  type(current)(text) if isinstance(current, (int, float)) else text)
    if current is None:  # an optional field: none, a number, or text
        try:
            value = float(text)
        except ValueError:
            value = text
    return base.replace(**{name: value})


TESTBED = {"content": ("rocket.jpg", (104, 66, 254, 216)), "style": ("starry_night.jpg", (150, 60, 390, 300))}
"""The CPU testbed's crops (left, top, right, bottom) of ../shared/images: sky left of the rocket, 150 px,
and 240 px of The Starry Night's sky. Run single-scale at 1024 px from the content, the photo is 6.8 and
the painting 4.3 times its own size, as at the 4377 px scale of a 6000 px print from the full pictures:
the print's dot lattice appears in 40 steps on the 2-core CPU (about 6 minutes), where a print's scale
that large takes hours here."""


def make_testbed(images: Path, out: Path) -> None:
    missing = [name for name, _ in TESTBED.values() if not (images / name).is_file()]
    if missing:
        raise SystemExit(f"print_lattice: {', '.join(missing)} not in {images} (--images: ../shared/images)")
    out.mkdir(parents=True, exist_ok=True)
    for role, (name, box) in TESTBED.items():
        with Image.open(images / name) as im:
            im.convert("RGB").crop(box).save(out / f"testbed_{role}.png")
        print(f"wrote {out / f'testbed_{role}.png'}")


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
            c = min(FIGURE_CROP, h, w) // 2 * 2
            t = min(max(0, round(fy * h) - c // 2), h - c)
            left = min(max(0, round(fx * w) - c // 2), w - c)
            figs.append(round(dots(grey[t : t + c, left : left + c]), 2))
        rows.append({"image": str(path), "width": w, "height": h, "dots": figs})
        print(f"{path} ({w}x{h}): dots {figs} at {list(PLACES)}")
    out = {"what": "print_lattice's figure of finished pictures", "places": [list(p) for p in PLACES],
           "figure_crop": FIGURE_CROP, "command": "PYTHONPATH=src python3 scripts/print_lattice.py " + " ".join(argv),
           "images": rows}
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(out, indent=1) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--make-testbed"]:
        tp = argparse.ArgumentParser(description="the CPU testbed's two crops")
        tp.add_argument("--make-testbed", type=Path, required=True, metavar="OUT_DIR")
        tp.add_argument("--images", type=Path, default=Path("../shared/images"))
        t = tp.parse_args(args)
        make_testbed(t.images, t.make_testbed)
        return 0
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
    ap.add_argument("--base", action="append", default=[], metavar="FIELD=VALUE",
                    help="overrides of the default Config under every variant (the testbed: start_size=none, "
                         "init=content, steps=40)")
    ap.add_argument("--from-size", type=int, default=2048)
    ap.add_argument("--at", type=float, nargs=2, default=(0.33, 0.28), metavar=("Y", "X"))
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--montage", type=Path, required=True)
    a = ap.parse_args(argv)
    variants = a.variant or ["default"]
    content, style = load_image(a.content), load_image(a.style)
    base = Config(size=a.size, max_memory=a.max_memory)
    for spec in a.base:
        base = variant_config(base, spec)
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
                               "dots": round(dots(grey), 2)})
                small = crop_at(image, a.at, a.crop)
                row_tiles.append((small.permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8))
                print(f"{spec}: {ev.size[1]}x{ev.size[0]} dots {scales[-1]['dots']}", flush=True)
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
            draw.text((x + 2, y + 2), f"{r['variant']} {sc['width']}px {sc['dots']}", fill="black")
            sheet.paste(Image.fromarray(tile), (x, y + label))
    a.montage.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(a.montage)
    out = {"what": __doc__.split("\n")[0], "base": a.base, "command": "PYTHONPATH=src python3 scripts/print_lattice.py "
           + " ".join(sys.argv[1:] if argv is None else argv),
           "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
           "at": list(a.at), "figure_crop": FIGURE_CROP, "variants": rows}
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {a.json} and {a.montage}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
