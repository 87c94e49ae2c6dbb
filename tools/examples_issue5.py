"""Example images for the artist controls (docs/artist-controls.md), written to ``out/issue5/``.

Run from the repository root (needs /work/shared/images or ``--images DIR``)::

    PYTHONPATH=src .venv/bin/python tools/examples_issue5.py [--only blend,color,...] [--size 256]

Each example prints its wall time. ``hires`` compares a 2048 px coarse-to-fine run with a single-scale
2048 px run of the same total step budget (``--hires-steps``, split evenly over the pyramid); it is
slow on a CPU (about 50 s per 2048 px step on 2 cores), so its budget is small by default.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.imageio import load_image, resize_to, save_image, scaled_size, to_pil

EXAMPLES = ("blend", "color", "kinds", "mask", "scale", "stability", "hires")


def run(content: str, styles: list[str], cfg: Config, out: Path, label: str) -> tuple[torch.Tensor, float]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    st = StyleTransfer(load_image(content), [load_image(s) for s in styles], cfg)
    ev = None
    for e in st.run():
        ev = e
    assert ev is not None and ev.image is not None
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    peak = f" peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if torch.cuda.is_available() else ""
    save_image(ev.image, out, metadata={"example": label, "config": cfg.to_dict(), "seconds": wall})
    print(f"{label}: {out} {ev.size[1]}x{ev.size[0]} {ev.step} steps {wall:.1f}s "
          f"stop={ev.stop_reason} loss={ev.loss:.4g}{peak}", flush=True)
    return ev.image, wall


def side_by_side(images: list[torch.Tensor], labels: list[str], out: Path) -> None:
    """Images of equal height in a row with a caption under each."""
    pils = [to_pil(im) for im in images]
    h = max(p.height for p in pils)
    w = sum(p.width for p in pils)
    canvas = Image.new("RGB", (w, h + 18), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for p, label in zip(pils, labels):
        canvas.paste(p, (x, 0))
        draw.text((x + 4, h + 3), label, fill="black")
        x += p.width
    canvas.save(out)
    print(f"strip: {out}", flush=True)


def to_tensor_png(path: Path) -> torch.Tensor:
    return load_image(path).rgb


def two_region_mask(content: str, path: Path) -> None:
    """Sky/ground for Tübingen by a rough rule: a pixel is sky when it is bright and bluish, then the
    region is made solid per column (everything above the lowest sky pixel of the upper half)."""
    rgb = load_image(content).rgb
    r, g, b = rgb[0], rgb[1], rgb[2]
    sky = (b > 0.55) & (b >= r) & ((r + g + b) / 3 > 0.5)
    h, w = sky.shape
    mask = torch.zeros(h, w, dtype=torch.bool)
    for x in range(w):
        col = sky[: int(h * 0.6), x].nonzero()
        if len(col):
            mask[: int(col.max()) + 1, x] = True
    img = torch.stack([mask.float(), torch.zeros(h, w), (~mask).float()])  # red sky, blue ground
    to_pil(img).save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--images", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "images"))
    p.add_argument("--out", default="out/issue5")
    p.add_argument("--only", default=",".join(e for e in EXAMPLES if e != "hires"))
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=80)
    p.add_argument("--hires-size", type=int, default=2048)
    p.add_argument("--hires-steps", type=int, default=8)
    p.add_argument("--hires-schedule", default="", help="steps per scale, e.g. 4,2,1,1 (sets --hires-steps)")
    p.add_argument("--device", default="auto")
    p.add_argument("--lean", action="store_true",
                   help="only the runs the issue asks for (the Gram result doubles as the uncoloured and "
                   "single-style reference); for slow machines")
    args = p.parse_args(argv)
    images = Path(args.images)
    if not (images / "tubingen.jpg").exists():
        print(f"no test images in {images}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tub, starry, wreck = (str(images / n) for n in ("tubingen.jpg", "starry_night.jpg", "shipwreck.jpg"))
    base = Config(size=args.size, start_size=None, steps=args.steps, device=args.device)
    only = set(args.only.split(","))

    if "kinds" in only:
        kinds = [run(tub, [starry], base.replace(style_kind=k), out / f"kind_{k}.png", k)[0]
                 for k in ("gram", "w2", "hist")]
        side_by_side(kinds, ["gram", "w2 (mean+covariance)", "hist (gram + histogram)"],
                     out / "kinds_strip.png")
    if "blend" in only and args.lean:
        c, _ = run(tub, [starry, wreck], base.replace(style_blend_weights=(0.5, 0.5)),
                   out / "blend_50_50.png", "Starry Night + Shipwreck 50/50")
    if "color" in only and args.lean:
        b, _ = run(tub, [starry], base.replace(preserve_color="luminance"), out / "color_luminance.png",
                   "luminance")
        c, _ = run(tub, [starry], base.replace(preserve_color="match"), out / "color_match.png", "match")
        d = to_tensor_png(out / "color_luminance.png")
        gram = to_tensor_png(out / "kind_gram.png") if (out / "kind_gram.png").exists() else d
        side_by_side([gram, d, c], ["none", "--preserve-color luminance", "--preserve-color match"],
                     out / "color_strip.png")
    if "blend" in only and not args.lean:
        a, _ = run(tub, [starry], base, out / "starry.png", "Starry Night")
        b, _ = run(tub, [wreck], base, out / "shipwreck.png", "Shipwreck")
        c, _ = run(tub, [starry, wreck], base.replace(style_blend_weights=(0.5, 0.5)),
                   out / "blend_50_50.png", "Starry Night + Shipwreck 50/50")
        side_by_side([a, c, b], ["Starry Night", "50/50 blend", "Shipwreck"], out / "blend_strip.png")
    if "color" in only and not args.lean:
        a, _ = run(tub, [starry], base, out / "color_none.png", "no colour preservation")
        b, _ = run(tub, [starry], base.replace(preserve_color="luminance"), out / "color_luminance.png",
                   "luminance")
        c, _ = run(tub, [starry], base.replace(preserve_color="match"), out / "color_match.png", "match")
        d, _ = run(tub, [starry], base.replace(color_match_output=True), out / "color_match_output.png",
                   "colour-match output")
        side_by_side([a, b, c, d], ["none", "--preserve-color luminance", "--preserve-color match",
                                    "--color-match-output"], out / "color_strip.png")
    if "mask" in only:
        mask = out / "mask_sky_ground.png"
        two_region_mask(tub, mask)
        a, _ = run(tub, [starry, wreck], base.replace(mask=str(mask), regions=("red=1", "blue=2")),
                   out / "mask_two_styles.png", "sky: Starry Night, ground: Shipwreck")
        b, _ = run(tub, [starry], base.replace(mask=str(mask), regions=("red=1", "blue=content")),
                   out / "mask_sky_only.png", "sky stylised, ground keeps the photo")
        m = resize_to(load_image(mask).rgb, tuple(a.shape[1:]))  # type: ignore[arg-type]
        side_by_side([m, a, b], ["mask", "red=1 blue=2", "red=1 blue=content"], out / "mask_strip.png")
    if "scale" in only:
        ims = [run(tub, [starry], base.replace(style_scale=s), out / f"style_scale_{s}.png", f"scale {s}")[0]
               for s in (0.5, 1.0, 2.0)]
        side_by_side(ims, ["--style-scale 0.5", "1.0", "2.0"], out / "style_scale_strip.png")
    if "stability" in only:
        a, _ = run(tub, [starry], base.replace(optimizer="adam"), out / "adam.png", "adam")
        b, _ = run(tub, [starry], base.replace(optimizer="adam", ema=0.9), out / "adam_ema.png", "adam ema")
        c, _ = run(tub, [starry], base.replace(normalize_gradients=True),
                   out / "normgrad.png", "normalize gradients")
        d, _ = run(tub, [starry], base.replace(steps=400, tol=0.3), out / "tol.png", "tol")
        side_by_side([a, b, c, d], ["adam", "adam --ema 0.9", "--normalize-gradients", "--tol 0.3"],
                     out / "stability_strip.png")
    if "hires" in only:
        full = args.hires_size
        sizes = Config(start_size=256, scale_factor=2.0).scale_sizes(full)
        if args.hires_schedule:
            per = [int(x) for x in args.hires_schedule.split(",")]
            args.hires_steps = sum(per)
        else:
            per = [args.hires_steps // len(sizes)] * len(sizes)
            per[0] += args.hires_steps - sum(per)
        c2f = base.replace(size=full, start_size=256, scale_factor=2.0, scale_steps=tuple(per))
        single = base.replace(size=full, start_size=None, steps=args.hires_steps)
        a, ta = run(tub, [starry], c2f, out / f"hires_{full}_c2f.png", f"coarse-to-fine {sizes} {per}")
        b, tb = run(tub, [starry], single, out / f"hires_{full}_single.png", "single scale")
        with open(out / "hires_times.txt", "w") as fh:
            fh.write(f"{full}px, {args.hires_steps} steps in all, device {args.device}\n"
                     f"coarse-to-fine {sizes} steps {per}: {ta:.1f}s\nsingle-scale: {tb:.1f}s\n")
        hh, ww = scaled_size(int(a.shape[1]), int(a.shape[2]), 768)
        side_by_side([resize_to(a, (hh, ww)), resize_to(b, (hh, ww))],
                     [f"coarse-to-fine {ta:.0f}s", f"single scale {tb:.0f}s"], out / "hires_strip.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
