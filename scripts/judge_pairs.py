"""Every figure of docs/quality_protocol.md for results of photo x painting pairs, one JSON row each.

    PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/judge_pairs.py --json docs/perf/dev_levers_512.json \
        --image default tubingen starry_night out/q/tub_starry.png \
        --image reference tubingen starry_night ../shared/reference/tubingen_starry.png

``--image LABEL PHOTO PAINTING IMAGE``: PHOTO and PAINTING are names in ``--images`` (default
../shared/images; the file's extension is found). Per image: the VGG judge (style, deep, content), the
independent figures (texture, cnn, color, structure; 0 = the painting, 1 = the photo), the copied-object
fraction (impasto.bench.copies), the colour-placement kappa against ``--reference-label``'s image of the
same pair where there is one (impasto.bench.placement), and the wall time from the image's metadata.
Rows are merged into an existing JSON by (label, photo, painting). Nothing is re-run; images are judged
at their own size.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from impasto.bench.copies import CopyJudge
from impasto.bench.independent import IndependentJudge
from impasto.bench.placement import placement_agreement
from impasto.bench.quality import QualityJudge, seconds_of
from impasto.io import load_image

ROOT = Path(__file__).resolve().parents[1]


def _find(folder: Path, name: str) -> Path:
    hits = sorted(folder.glob(name + ".*"))
    if not hits:
        raise SystemExit(f"judge_pairs: no image named {name} in {folder}")
    return hits[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image", nargs=4, action="append", required=True,
                    metavar=("LABEL", "PHOTO", "PAINTING", "IMAGE"))
    ap.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "images")
    ap.add_argument("--reference-label", default="reference")
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args(argv)
    old = json.loads(args.json.read_text()) if args.json.exists() else {"rows": []}
    commands = [*old.get("commands", []), "PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/judge_pairs.py "
                + " ".join(sys.argv[1:] if argv is None else argv)]
    rows = {(r["label"], r["photo"], r["painting"]): r for r in old["rows"]}
    refs = {(ph, pa): img for lab, ph, pa, img in args.image if lab == args.reference_label}
    refs.update({(r["photo"], r["painting"]): r["image"] for r in old["rows"] if r["label"] == args.reference_label
                 and (r["photo"], r["painting"]) not in refs})
    judges: dict[tuple[str, str], tuple[Any, Any, Any, Any]] = {}
    for label, photo, painting, image in args.image:
        key = (photo, painting)
        if key not in judges:
            c, s = load_image(_find(args.images, photo)).rgb, load_image(_find(args.images, painting)).rgb
            judges[key] = (QualityJudge(c, s), IndependentJudge(c, s), CopyJudge(s), s)
        vgg, ind, copies, style = judges[key]
        x = load_image(image).rgb
        v, i, cp = vgg(x), ind(x), copies(x)
        row: dict[str, Any] = {
            "label": label, "photo": photo, "painting": painting, "image": image, "seconds": seconds_of(image),
            "size": list(v.size), "vgg_style": v.style, "vgg_deep": v.deep, "vgg_content": v.content,
            "texture": i.texture, "cnn": i.cnn, "color": i.color, "structure": i.structure,
            "copied": cp.fraction,
        }
        if key in refs and label != args.reference_label:
            row["placement_kappa"] = placement_agreement(x, load_image(refs[key]).rgb, style).kappa
        rows[(label, photo, painting)] = row
        print(" ".join(f"{k}={row[k]:.3f}" if isinstance(row[k], float) else f"{k}={row[k]}"
                       for k in ("label", "photo", "painting", "texture", "cnn", "color", "structure", "vgg_content",
                                 "vgg_style", "copied", "placement_kappa", "seconds") if k in row), flush=True)
    args.json.write_text(json.dumps({
        "what": "figures of docs/quality_protocol.md per result (scripts/judge_pairs.py)", "commands": commands,
        "rows": sorted(rows.values(), key=lambda r: (r["photo"], r["painting"], r["label"]))}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
