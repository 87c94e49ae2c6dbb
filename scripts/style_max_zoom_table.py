"""The style_max_zoom choice at 6000 px (docs/perf/style_max_zoom_protocol.md): each run's dots figure
at two places, from the 1:1 crops the device brought back, and its run record.

    PYTHONPATH=src python3 scripts/style_max_zoom_table.py --json docs/perf/style_max_zoom_6000_gpu.json

The crop sheets (docs/img/style_max_zoom_6000/) hold two 512 px crops per picture, 520 px apart, centred
at (0.33, 0.28) and (0.6, 0.35) of the height and width: two of the three places of
``print_lattice.py --score`` with the same crop, so the figures are the ones it gives there. The runs'
records are ``scripts/gpu_print_size.py`` JSONs (docs/perf/style_max_zoom_6000_gpu/).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from print_lattice import dots  # noqa: E402

IMG = Path("docs/img/style_max_zoom_6000")
RUNS = Path("docs/perf/style_max_zoom_6000_gpu")
SHEETS = (  # sheet, the pictures on it left to right, and each one's pair, option and run record
    ("crops_rocket_none.png", (("rocket", "none", "run_poster_none.json"),)),
    ("crops_rocket_z1_z2.png", (("rocket", "1", "run_poster_z1.json"), ("rocket", "2", "run_rocket_z2.json"))),
    ("crops_tub_none.png", (("tubingen", "none", "run_tub_none.json"),)),
    ("crops_tub_z1_z2.png", (("tubingen", "1", "run_tub_z1.json"), ("tubingen", "2", "run_tub_z2.json"))),
    ("crops_cof_none_z1_z2.png", (("coffee", "none", "run_cof_none.json"), ("coffee", "1", "run_cof_z1.json"),
                                  ("coffee", "2", "run_cof_z2.json"))),
)
PAIRS = {"rocket": "rocket x The Starry Night (dev)", "tubingen": "Tubingen x The Wave (test)",
         "coffee": "coffee x Composition VII (test)"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, required=True)
    a = ap.parse_args(argv)
    rows = []
    for sheet, pictures in SHEETS:
        grey = np.asarray(Image.open(IMG / sheet).convert("L"), dtype=np.float64)
        for i, (pair, zoom, run) in enumerate(pictures):
            figs = [round(dots(grey[:, j * 520 : j * 520 + 512]), 2) for j in (2 * i, 2 * i + 1)]
            rec = json.loads((RUNS / run).read_text())
            rows.append({"pair": PAIRS[pair], "style_max_zoom": zoom, "dots": figs, "sheet": str(IMG / sheet),
                         "run": str(RUNS / run), "exit_status": rec["exit_status"], "max_memory": rec["max_memory"],
                         "optimisation_seconds": rec["optimisation_seconds"]})
    print(f"{'pair':34} {'zoom':>5} {'dots (0.33,0.28)':>17} {'dots (0.6,0.35)':>16}")
    for r in rows:
        print(f"{r['pair']:34} {r['style_max_zoom']:>5} {r['dots'][0]:17.2f} {r['dots'][1]:16.2f}")
    out = {"what": "print_lattice's dots figure of 6000 px results on one H200, default schedule, by "
                   "--style-max-zoom (none: today's default), from 512 px crops at 1:1",
           "places": [[0.33, 0.28], [0.6, 0.35]], "protocol": "docs/perf/style_max_zoom_protocol.md",
           "command": "PYTHONPATH=src python3 scripts/style_max_zoom_table.py " + " ".join(
               sys.argv[1:] if argv is None else argv), "rows": rows}
    a.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
