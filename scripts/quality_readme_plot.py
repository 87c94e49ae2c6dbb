"""The README's quality trade-off plot, from lever runs on the bundled demo inputs (publishable).

    PYTHONPATH=src python scripts/quality_levers.py --size 128 --out out/levers_demo \
        --content src/impasto/data/content.jpg --style src/impasto/data/style.png \
        --variant 'before={"start_size": 256, "steps": 100}' \
        --variant 's32r06={"start_size": 32, "steps": 200, "step_ratio": 0.6}' \
        --variant 'match50={"steps": 50, "_init": "match"}' --variant 'match100={"_init": "match"}'
    PYTHONPATH=src python scripts/quality_readme_plot.py out/levers_demo/levers.json docs/img/quality_tradeoff_demo.png

Times: the runs were made on a CPU shared with other jobs, so the plot shows cost-based estimates:
FLOPs in final-size steps × ``--step-seconds`` (default 0.13 s: the idle 2-core time of one 256x192 step,
0.46 s from issue 10's 80 s for 175 of them, scaled to the demo's 109x128 pixels).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from impasto.bench.quality import PlotPoint, Scores, plot_tradeoff

LABELS = {
    "before": "default (from the photo, 100 steps)",
    "s32r06": "start 32 px, 200 steps, ratio 0.6",
    "match50": "palette start, 50 steps",
    "match100": "palette start, 100 steps",
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("levers", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--step-seconds", type=float, default=0.13)
    a = p.parse_args()
    doc = json.loads(a.levers.read_text())
    points = []
    for name, run in doc["runs"].items():
        f = run["final"]
        s = Scores(f["style"], f["deep"], f["content"], f["color"], tuple(f["size"]), f["per_layer"])
        points.append(PlotPoint(LABELS.get(name, name), s, run["cost_final_steps"] * a.step_seconds))
    plot_tradeoff(points, a.out, "bundled demo inputs, 128 px: judge's distances (est. idle 2-core seconds)")


if __name__ == "__main__":
    main()
