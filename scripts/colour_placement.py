"""Print the colour-placement figure (impasto.bench.placement) of results against a reference; write JSON
and a look (rows of picture | palette map) per pair.

    PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/colour_placement.py \
        --pair starry ../shared/images/tubingen.jpg ../shared/images/starry_night.jpg \
               ../shared/reference/tubingen_starry.png \
        --result default out/q/tub_starry.png --starts \
        --json docs/perf/placement_512.json --looks docs/img

``--pair LABEL PHOTO PAINTING REFERENCE`` starts a pair; each ``--result LABEL IMAGE`` after it is judged
against that pair's reference; ``--starts`` adds the photo itself and the two palette starts
(``init`` palette and tones) at the reference's size, so the start's share of the placement shows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch.nn.functional as F

from impasto.bench.placement import PALETTE_SIZE, placement_agreement, placement_look
from impasto.inputs import palette_start
from impasto.io import load_image, save_image
from impasto.losses.color import match_tones


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pair", nargs=4, action="append", default=[], metavar=("LABEL", "PHOTO", "PAINTING", "REF"))
    ap.add_argument("--result", nargs=2, action="append", default=[], metavar=("LABEL", "IMAGE"))
    ap.add_argument("--starts", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--looks")
    # Results belong to the --pair before them: argparse loses the order, so read it from argv.
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    groups: list[dict[str, Any]] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--pair":
            groups.append({"pair": argv[i + 1:i + 5], "results": []})
            i += 5
        elif argv[i] == "--result":
            if not groups:
                ap.error("--result needs a --pair before it")
            groups[-1]["results"].append(argv[i + 1:i + 3])
            i += 3
        else:
            i += 1
    out: list[dict[str, Any]] = []
    for g in groups:
        label, photo_p, painting_p, ref_p = g["pair"]
        painting, ref = load_image(painting_p).rgb, load_image(ref_p).rgb
        pictures: list[tuple[str, Any]] = [("reference", ref)]
        if args.starts:
            photo = F.interpolate(load_image(photo_p).rgb[None], size=tuple(ref.shape[1:]), mode="area")[0]
            pictures += [("photo", photo), ("start_palette", palette_start(photo, [painting])),
                         ("start_tones", match_tones(photo, [painting]))]
        pictures += [(lab, load_image(p).rgb) for lab, p in g["results"]]
        rows = []
        for lab, img in pictures[1:]:
            pl = placement_agreement(img, ref, painting)
            rows.append({"label": lab, "agreement": pl.agreement, "chance": pl.chance, "kappa": pl.kappa})
            print(f"{label:<12} {lab:<16} agreement {pl.agreement:.3f} chance {pl.chance:.3f} kappa {pl.kappa:+.3f}")
        out.append({"pair": label, "photo": photo_p, "painting": painting_p, "reference": ref_p,
                    "results": [dict(r, image=p) for r, (_, p) in zip(rows[-len(g["results"]):], g["results"])]
                    if g["results"] else [], "all": rows})
        if args.looks:
            path = Path(args.looks) / f"placement_{label}.png"
            save_image(placement_look(painting, [img for _, img in pictures]), path)
            print(f"wrote {path} (rows: painting, {', '.join(lab for lab, _ in pictures)})")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "figure": "impasto.bench.placement", "palette_size": PALETTE_SIZE,
            "reads": "kappa 1 = the reference's colour placement, 0 = no more alike than chance",
            "command": "PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/colour_placement.py " + " ".join(argv),
            "pairs": out}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
