"""Print the copied-object figure (impasto.bench.copies) of results against their paintings; write JSON.

    PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/copied_objects.py \\
        --case ref_starry ../shared/images/starry_night.jpg ../shared/reference/tubingen_starry.png \\
        --case ref_shipwreck ../shared/images/shipwreck.jpg ../shared/reference/tubingen_shipwreck.png \\
        --case default_frida ../shared/images/frida_kahlo.jpg out/q/tub_frida.png \\
        --paste ../shared/images/tubingen.jpg ../shared/images/frida_kahlo.jpg \\
        --json docs/perf/copies_512.json --overlays out/copies

``--paste PHOTO PAINTING`` adds the synthetic check: the centre of the painting (resized to 512 px long
side) pasted into the photo (resized to 512 px long side) over 1/12 and 1/4 of its area; the figure should
be clearly above 0 and below the pasted fraction (it counts deep-feature positions, and those on the
paste's edge see the photo). ``--overlays DIR`` writes each result with its copied positions tinted red
(look at them: the figure is only as good as what it marks).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from impasto.bench.copies import COPY_LAYER, EXCLUDE, QUANTILE, CopyJudge, CopyScore
from impasto.io import load_image, resize_long_side, save_image


def overlay(result: torch.Tensor, score: CopyScore) -> torch.Tensor:
    h, w = int(result.shape[1]), int(result.shape[2])
    mask = torch.nn.functional.interpolate(score.copied.float()[None, None], size=(h, w), mode="nearest")[0]
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    return result * (1 - 0.45 * mask) + red * 0.45 * mask


def pasted(photo: torch.Tensor, painting: torch.Tensor, area: float) -> tuple[torch.Tensor, float]:
    """The photo with the centre of the painting pasted in: a rectangle of the photo's aspect covering
    ``area`` of it, placed about a third of the way in. Returns the image and the exact pasted fraction."""
    x = photo.clone()
    _, h, w = x.shape
    ph, pw = round(h * area**0.5), round(w * area**0.5)
    ph, pw = min(ph, painting.shape[1]), min(pw, painting.shape[2])
    sy, sx = (painting.shape[1] - ph) // 2, (painting.shape[2] - pw) // 2
    ty, tx = h // 3 - ph // 3, w // 3 - pw // 3
    x[:, ty : ty + ph, tx : tx + pw] = painting[:, sy : sy + ph, sx : sx + pw]
    return x, ph * pw / (h * w)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", nargs=3, action="append", default=[], metavar=("LABEL", "PAINTING", "RESULT"))
    p.add_argument("--paste", nargs=2, action="append", default=[], metavar=("PHOTO", "PAINTING"))
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--overlays", type=Path, default=None)
    args = p.parse_args(argv)
    rows = []
    judges: dict[str, CopyJudge] = {}

    def judge(painting: str) -> CopyJudge:
        if painting not in judges:
            judges[painting] = CopyJudge(load_image(painting).rgb)
        return judges[painting]

    items: list[tuple[str, str, str, torch.Tensor, float | None]] = []
    for label, painting, result in args.case:
        items.append((label, painting, result, load_image(result).rgb, None))
    for photo, painting in args.paste:
        ph = resize_long_side(load_image(photo).rgb, 512)
        pa = resize_long_side(load_image(painting).rgb, 512)
        for area in (1 / 12, 1 / 4):
            img, pasted_frac = pasted(ph, pa, area)
            label = f"paste_{Path(painting).stem}_{pasted_frac:.3f}"
            items.append((label, painting, f"{photo} + centre of {painting}", img, pasted_frac))
    print(f"{'case':34s} {'size':>9s} {'copied':>7s} {'tau':>6s} {'best':>6s} {'pasted':>7s} {'s':>5s}")
    for label, painting, result, img, frac in items:
        t0 = time.perf_counter()
        s = judge(painting)(img)
        secs = time.perf_counter() - t0
        size = f"{img.shape[2]}x{img.shape[1]}"
        pasted_s = f"{frac:.3f}" if frac is not None else "-"
        print(f"{label:34s} {size:>9s} {s.fraction:7.3f} {s.threshold:6.3f} {float(s.best.max()):6.3f} "
              f"{pasted_s:>7s} {secs:5.1f}", flush=True)
        rows.append({"label": label, "painting": painting, "result": result, "pasted_fraction": frac,
                     "seconds": round(secs, 2), **s.summary()})
        if args.overlays is not None:
            args.overlays.mkdir(parents=True, exist_ok=True)
            save_image(overlay(img, s), args.overlays / f"{label}.png")
    if args.json is not None:
        doc = {"figure": "impasto.bench.copies", "layer": COPY_LAYER, "quantile": QUANTILE, "exclude": EXCLUDE,
               "command": "python scripts/copied_objects.py " + " ".join(sys.argv[1:] if argv is None else argv),
               "results": rows}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
