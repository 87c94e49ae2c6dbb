"""Pictures for the README's artist-controls section: docs/img/*.jpg.

Content: the bundled Grace Hopper photo (public domain). Styles: public-domain paintings from
../shared/images (The Starry Night, The Great Wave, The Shipwreck), so every picture is made only of
public-domain inputs. 256 px, single scale, 80 L-BFGS steps per picture: about 5 minutes on 2 cores.
``--only`` picks parts: ``artist`` (several styles, style scale, colour, style kinds, masks),
``stability`` (Adam with and without --ema, --normalize-gradients, --tol; 256 px, about 3 minutes on 2
cores) and ``hires`` (2048 px coarse-to-fine against single scale with the same step budget: minutes on a
GPU, hours on 2 CPU cores).

Usage: python tools/readme_pictures.py [--images DIR] [--out docs/img] [--only artist,stability,hires]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from impasto import Config
from impasto.engine import Progress, StyleTransfer
from impasto.io.images import default_content_path, load_image, save_image, to_pil
from impasto.vgg.weights import load_weights

SHARED = Path(os.environ.get("IMPASTO_IMAGES", Path(__file__).resolve().parents[1].parent / "shared" / "images"))


def strip(images: list[tuple[str, torch.Tensor]], path: Path) -> None:
    """Label each image and put them side by side as one JPEG."""
    tiles = [to_pil(img) for _, img in images]
    h = max(t.height for t in tiles)
    out = Image.new("RGB", (sum(t.width for t in tiles), h + 18), "white")
    draw = ImageDraw.Draw(out)
    x = 0
    for (label, _), tile in zip(images, tiles):
        out.paste(tile, (x, 18))
        draw.text((x + 4, 3), label, fill="black")
        x += tile.width
    path.parent.mkdir(parents=True, exist_ok=True)
    out.save(path, quality=88)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=Path, default=SHARED)
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--only", default="artist,stability", help="comma-separated: artist, stability, hires")
    ap.add_argument("--hires-size", type=int, default=2048)
    ap.add_argument("--hires-steps", default="60,40,25,15", help="coarse-to-fine steps per scale (x2 from 256)")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    if parts - {"artist", "stability", "hires"}:
        print(f"unknown part(s) {sorted(parts - {'artist', 'stability', 'hires'})}", file=sys.stderr)
        return 2
    if not (args.images / "starry_night.jpg").is_file():
        print(f"needs starry_night.jpg, the_wave.jpg, shipwreck.jpg in {args.images}", file=sys.stderr)
        return 1
    w = load_weights(None)
    content = load_image(default_content_path())
    starry, wave, ship = (load_image(args.images / n) for n in ("starry_night.jpg", "the_wave.jpg", "shipwreck.jpg"))
    base = Config(size=256, start_size=None, steps=args.steps, device="cpu")
    c = content.rgb

    def run(styles: list, **kw: object) -> torch.Tensor:  # type: ignore[type-arg]
        return run_ev(styles, **kw)[0]

    def run_ev(styles: list, config: Config | None = None,  # type: ignore[type-arg]
               **kw: object) -> tuple[torch.Tensor, Progress, float]:
        """The image, the final progress event (stop reason, loss) and the wall time."""
        cfg = (config or base).replace(**kw)
        if cfg.device != "cpu" and torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        last = None
        for ev in StyleTransfer(content, styles, cfg, weights=w).run():
            last = ev
        assert last is not None and last.image is not None
        wall = time.perf_counter() - t0
        what = kw or (f"{cfg.size} px, scales {cfg.scale_sizes(cfg.size)}" if config else "defaults")
        line = f"{what}: {wall:.1f} s, {last.step} steps, loss {last.loss:.4g}, {last.stop_reason}"
        print(line, flush=True)
        return last.image, last, wall

    from impasto.io.images import resize_to

    photo = resize_to(c, (256, round(256 * c.shape[2] / c.shape[1])))
    if "stability" in parts:
        # Adam at a learning rate high enough to flicker, so the moving average has something to smooth.
        adam = {"optimizer": "adam", "lr": 8.0, "steps": 100}
        tol_img, tol_ev, _ = run_ev([starry], steps=400, tol=0.3)
        strip([("adam, lr 8", run([starry], **adam)), ("adam, lr 8, --ema 0.95", run([starry], **adam, ema=0.95)),
               ("--normalize-gradients", run([starry], normalize_gradients=True)),
               (f"--tol 0.3: stopped at step {tol_ev.step} of 400", tol_img)], args.out / "stability.jpg")
    if "hires" in parts:
        per = tuple(int(v) for v in args.hires_steps.split(","))
        big = base.replace(size=args.hires_size, start_size=256, scale_factor=2.0, scale_steps=per, device="auto")
        if len(big.scale_sizes(args.hires_size)) != len(per):
            print(f"--hires-steps needs one count per scale: {big.scale_sizes(args.hires_size)}", file=sys.stderr)
            return 2
        a, _, ta = run_ev([starry], big)
        b, _, tb = run_ev([starry], big.replace(start_size=None, steps=sum(per), scale_steps=None))
        # Whole pictures shrunk to 384 px high, and a 384 px crop at full resolution from each.
        hh = 384
        ww = round(hh * a.shape[2] / a.shape[1])
        top, left = a.shape[1] // 5, (a.shape[2] - hh) // 2
        strip([(f"coarse-to-fine {sum(per)} steps, {ta:.0f} s", resize_to(a, (hh, ww))),
               ("crop at full size", a[:, top:top + hh, left:left + hh]),
               (f"single scale {sum(per)} steps, {tb:.0f} s", resize_to(b, (hh, ww))),
               ("crop at full size", b[:, top:top + hh, left:left + hh])], args.out / "hires.jpg")
    if "artist" not in parts:
        return 0
    strip([("photo", photo), ("Starry Night", run([starry])), ("Great Wave", run([wave])),
           ("both, 50/50", run([starry, wave], style_blend_weights=(0.5, 0.5)))], args.out / "blend.jpg")
    strip([("style scale 0.5", run([starry], style_scale=0.5)), ("1 (default)", run([starry])),
           ("2", run([starry], style_scale=2.0))], args.out / "style_scale.jpg")
    strip([("no colour preservation", run([wave])),
           ("--preserve-color luminance", run([wave], preserve_color="luminance")),
           ("--preserve-color match", run([wave], preserve_color="match"))], args.out / "color.jpg")
    strip([("Gram", run([ship])), ("W2", run([ship], style_kind="w2")),
           ("Gram + histogram", run([ship], style_kind="hist"))], args.out / "style_kinds.jpg")
    with tempfile.TemporaryDirectory() as tmp:
        mask = torch.zeros(3, *c.shape[1:])
        mask[0, : c.shape[1] // 2] = 1.0  # top half red
        mask[2, c.shape[1] // 2 :] = 1.0  # bottom half blue
        mask_path = Path(tmp) / "mask.png"
        save_image(mask, mask_path)
        strip([("mask", resize_to(mask, photo.shape[1:])),
               ("red=Starry Night, blue=Great Wave",
                run([starry, wave], mask=str(mask_path), regions=("red=1", "blue=2"))),
               ("red=Starry Night, blue=content",
                run([starry], mask=str(mask_path), regions=("red=1", "blue=content")))],
              args.out / "mask.jpg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
