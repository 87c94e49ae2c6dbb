"""Pictures for the README's artist-controls section: docs/img/*.jpg.

Content: the bundled Grace Hopper photo (public domain). Styles: public-domain paintings from
../shared/images (The Starry Night, The Great Wave, The Shipwreck), so every picture is made only of
public-domain inputs. 256 px, single scale, 80 L-BFGS steps per picture: about 5 minutes on 2 cores.

Usage: python tools/readme_pictures.py [--images DIR] [--out docs/img]
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

from impasto import Config, stylize
from impasto.imageio import default_content_path, load_image, save_image, to_pil
from impasto.weights import load_weights

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
    args = ap.parse_args()
    if not (args.images / "starry_night.jpg").is_file():
        print(f"needs starry_night.jpg, the_wave.jpg, shipwreck.jpg in {args.images}", file=sys.stderr)
        return 1
    w = load_weights(None)
    content = load_image(default_content_path())
    starry, wave, ship = (load_image(args.images / n) for n in ("starry_night.jpg", "the_wave.jpg", "shipwreck.jpg"))
    base = Config(size=256, start_size=None, steps=args.steps, device="cpu")
    c = content.rgb

    def run(styles: list, **kw: object) -> torch.Tensor:  # type: ignore[type-arg]
        t0 = time.perf_counter()
        img = stylize(content, styles, base.replace(**kw), weights=w)
        print(f"{kw or 'defaults'}: {time.perf_counter() - t0:.0f} s", flush=True)
        return img

    from impasto.imageio import resize_to

    photo = resize_to(c, (256, round(256 * c.shape[2] / c.shape[1])))
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
