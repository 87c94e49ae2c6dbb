"""The README's quality trade-off plot, from the before/after table of ``scripts/quality_table.py``.

One colour per pair; per run a hollow circle (impasto before issue 10), a filled one (today's default)
and a star (neural-style's reference picture, where there is one), with the wall time measured in that
run. Only numbers are plotted, so the plot may be published even for pairs whose pictures may not be.

    PYTHONPATH=src python scripts/quality_readme_plot.py docs/perf/quality_table_512.json \
        docs/img/quality_tradeoff_512.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from impasto.bench.quality import PlotPoint, Scores, plot_tradeoff

RUNS = {"before": "impasto before", "after": "impasto default", "reference": "neural-style"}


def scores(d: dict[str, Any]) -> Scores:
    return Scores(d["style"], d["deep"], d["content"], d["color"], tuple(d["size"]), d["per_layer"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("table", type=Path, help="docs/perf/quality_table_<size>.json")
    p.add_argument("out", type=Path)
    a = p.parse_args()
    doc = json.loads(a.table.read_text())
    points = []
    for pair, row in doc["pairs"].items():
        for which, label in RUNS.items():
            if which in row:
                r = row[which]
                points.append(PlotPoint(f"{pair}, {label}", scores(r["scores"]), r.get("seconds"),
                                        reference=which == "reference", group=pair, hollow=which == "before"))
    plot_tradeoff(points, a.out, f"{doc['size']} px, 2-core CPU: the judge's distances (wall seconds; the "
                  "reference ran 1000 iterations on a GPU)")


if __name__ == "__main__":
    main()
