"""The README's print-size picture: a large result shown whole (scaled down) beside crops at full size.

    PYTHONPATH=src python scripts/poster_preview.py out/print/poster_6000.png docs/img/poster_6000.jpg [--crop 600]

The left panel is the whole picture scaled to the crops' height; each crop is ``--crop`` pixels square at
1:1 from the picture (centre, and a third of the way in from the top left), outlined in the whole view so
a reader sees where it sits. Prints the picture's size and the run's seconds and steps from its metadata.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw

from impasto.errors import ImpastoError
from impasto.io import read_metadata

Image.MAX_IMAGE_PIXELS = 80_000_000  # a 6000 x 4000 print is 24 Mpx: above Pillow's warning, well below this


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("poster", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--crop", type=int, default=600)
    a = ap.parse_args(argv)
    with Image.open(a.poster) as im:
        pic = im.convert("RGB")
    w, h, c = pic.width, pic.height, a.crop
    corners = [((w - c) // 2, (h - c) // 2), (w // 3 - c // 2, h // 3 - c // 2)]
    crops = [pic.crop((x, y, x + c, y + c)) for x, y in corners]
    scale = c / h
    whole = pic.resize((round(w * scale), c), Image.LANCZOS)
    draw = ImageDraw.Draw(whole)
    for x, y in corners:
        draw.rectangle([x * scale, y * scale, (x + c) * scale, (y + c) * scale], outline=(255, 255, 255), width=2)
    strip = Image.new("RGB", (whole.width + len(crops) * (c + 8), c), (255, 255, 255))
    strip.paste(whole, (0, 0))
    for i, cr in enumerate(crops):
        strip.paste(cr, (whole.width + 8 + i * (c + 8), 0))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    strip.save(a.out, **({"quality": 90} if a.out.suffix.lower() in (".jpg", ".jpeg") else {}))
    try:
        run = read_metadata(a.poster) or {}
    except (ImpastoError, OSError, ValueError):
        run = {}
    print(json.dumps({"poster": str(a.poster), "width": w, "height": h, "preview": str(a.out),
                      "seconds": run.get("seconds"), "steps": run.get("steps")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
