"""One strip per photo x painting pair from a ``scripts/judge_pairs.py`` JSON: photo, painting, then each
label's result with its protocol figures under it.

    PYTHONPATH=src python scripts/pair_strips.py docs/perf/test_set_512.json --labels standin default \
        --out out/test/strips

Strips go to ``--out`` (they show photos the project may not redistribute, so they stay out of the
repository): ``PHOTO_PAINTING.png`` per pair and ``all.png``, every strip stacked, for one look.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from PIL import Image
from quality_strips import PANEL_H, TEXT_H, _panel  # the sibling script (scripts/ is on the path when run)

ROOT = Path(__file__).resolve().parents[1]
GAP = 6


def _find(folder: Path, name: str) -> Path:
    hits = sorted(folder.glob(name + ".*"))
    if not hits:
        raise SystemExit(f"pair_strips: no image named {name} in {folder}")
    return hits[0]


def figure_lines(row: dict[str, Any]) -> list[str]:
    """The protocol's deciding figures, three short lines (the panel has room for three)."""
    secs = f"{row['seconds']:.0f} s run" if row.get("seconds") is not None else "time not recorded"
    return [f"texture {row['texture']:.3f}  cnn {row['cnn']:.3f}",
            f"colour {row['color']:.3f}  structure {row['structure']:.3f}",
            f"content {row['vgg_content']:.3f}  copied {row['copied']:.3f}  {secs}"]


def strips(doc: dict[str, Any], labels: list[str], images: Path) -> dict[str, Image.Image]:
    by_pair: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in doc["rows"]:
        by_pair.setdefault((row["photo"], row["painting"]), {})[row["label"]] = row
    out: dict[str, Image.Image] = {}
    for (photo, painting), rows in by_pair.items():
        if not all(label in rows for label in labels):
            continue
        panels = [_panel(_find(images, photo), "photo", [photo]),
                  _panel(_find(images, painting), "painting", [painting])]
        panels += [_panel(ROOT / rows[label]["image"], label, figure_lines(rows[label])) for label in labels]
        strip = Image.new("RGB", (sum(p.width for p in panels) + GAP * (len(panels) - 1), PANEL_H + TEXT_H),
                          "white")
        x = 0
        for panel in panels:
            strip.paste(panel, (x, 0))
            x += panel.width + GAP
        out[f"{photo}_{painting}"] = strip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("json", type=Path, help="JSON written by scripts/judge_pairs.py")
    ap.add_argument("--labels", nargs="+", required=True, help="row labels, one panel each, in this order")
    ap.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "images")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    made = strips(json.loads(args.json.read_text()), args.labels, args.images)
    if not made:
        raise SystemExit(f"pair_strips: no pair in {args.json} has every label of {args.labels}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, im in made.items():
        im.save(args.out / f"{name}.png")
        print(args.out / f"{name}.png")
    width = max(im.width for im in made.values())
    stacked = Image.new("RGB", (width, sum(im.height + GAP for im in made.values())), "white")
    y = 0
    for im in made.values():
        stacked.paste(im, (0, y))
        y += im.height + GAP
    stacked.save(args.out / "all.png")
    print(args.out / "all.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
