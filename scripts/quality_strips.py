"""One strip per pair: content, style, reference, impasto default, with wall time and distances under each.

Reads the JSON that ``scripts/quality_table.py`` writes (images, wall times and judge scores) and
composes one PNG per pair into ``--out`` (default ``out/strips/``: the shared test photos may not be
redistributed, so their strips stay out of the repository). ``--with-before`` adds impasto's result
with the defaults before issue 10.

    PYTHONPATH=src python scripts/quality_strips.py docs/perf/quality_table_512.json --out out/strips
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont
from quality_table import ROOT, shared_dir  # the sibling script (scripts/ is on the path when run)

PANEL_H = 256
TEXT_H = 72


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def _panel(path: Path, title: str, lines: list[str]) -> Image.Image:
    with Image.open(path) as f:
        im = f.convert("RGB")
    w = max(1, round(im.width * PANEL_H / im.height))
    im = im.resize((w, PANEL_H), Image.Resampling.LANCZOS)
    w = max(w, 250)
    panel = Image.new("RGB", (w, PANEL_H + TEXT_H), "white")
    panel.paste(im, ((w - im.width) // 2, 0))
    d = ImageDraw.Draw(panel)
    bold, small = _font(13), _font(11)
    d.text((4, PANEL_H + 3), title, fill="black", font=bold)
    for i, line in enumerate(lines):
        d.text((4, PANEL_H + 20 + 13 * i), line, fill=(40, 40, 40), font=small)
    return panel


def _score_lines(r: dict[str, Any]) -> list[str]:
    s = r["scores"]
    secs = f"{r['seconds']:.0f} s" if "seconds" in r else "GPU, 1000 iterations"
    if "cost_final_steps" in r:  # rows assembled from lever runs on a shared machine: cost, idle estimate
        secs = f"{r['cost_final_steps']:.0f} final-size steps"
        if "predicted_seconds" in r:
            secs += f" (idle est. {r['predicted_seconds']:.0f} s)"
    return [secs, f"style {s['style']:.3f}  deep {s['deep']:.3f}",
            f"content {s['content']:.3f}  colour {s['color']:.1f}"]


def _where(rel: str, shared: Path) -> Path:
    """``repo:PATH`` is inside this repository, anything else under ../shared."""
    return ROOT / rel[5:] if rel.startswith("repo:") else shared / rel


def strip(row: dict[str, Any], shared: Path, size: int, with_before: bool) -> Image.Image:
    panels = [_panel(_where(row["content"], shared), "content", [row["content"].split("/")[-1]]),
              _panel(_where(row["style"], shared), "style", [row["style"].split("/")[-1]])]
    if "reference" in row:
        panels.append(_panel(shared / row["reference"]["image"], "reference (neural-style)",
                             _score_lines(row["reference"])))
    if with_before and "before" in row:
        panels.append(_panel(Path(row["before"]["image"]), f"impasto before issue 10, {size} px",
                             _score_lines(row["before"])))
    after = row["after"].get("variant")
    names = {"match100": "palette start", "match50": "palette start, 50 steps"}
    title = f"impasto {names.get(after, after)}, {size} px" if after else f"impasto default, {size} px"
    panels.append(_panel(Path(row["after"]["image"]), title, _score_lines(row["after"])))
    gap = 6
    out = Image.new("RGB", (sum(p.width for p in panels) + gap * (len(panels) - 1), PANEL_H + TEXT_H), "white")
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + gap
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("table", type=Path, help="JSON written by scripts/quality_table.py")
    p.add_argument("--shared", type=Path, default=None)
    p.add_argument("--out", type=Path, default=ROOT / "out" / "strips")
    p.add_argument("--with-before", action="store_true")
    a = p.parse_args()
    a.shared = a.shared or shared_dir()
    doc = json.loads(a.table.read_text())
    a.out.mkdir(parents=True, exist_ok=True)
    for name, row in doc["pairs"].items():
        if "after" not in row:
            continue
        path = a.out / f"{name}_{doc['size']}.png"
        strip(row, a.shared, doc["size"], a.with_before).save(path)
        print(path)


if __name__ == "__main__":
    main()
