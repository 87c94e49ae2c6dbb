"""CPU seconds per optimisation step of the default objective, for one or more source trees.

Usage: python scripts/step_time.py OUT.json LABEL=SRC_DIR [LABEL=SRC_DIR ...] [--size 256] [--steps 20]
       [--repeats 3]

Each repeat runs every tree once, interleaved (A B A B ...), in a fresh process, one scale at --size
(bundled inputs, L-BFGS, 2 warm-up steps not counted), and records every step's wall time from the
Progress events' clock. Prints min and median seconds per step per tree and writes them as JSON with the
load average, so a before/after comparison of the engine is one command.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
from impasto import Config, StyleTransfer
size, steps = int(sys.argv[1]), int(sys.argv[2])
root = sys.argv[3]
cfg = Config(size=size, start_size=None, steps=steps + 2, device="cpu")
st = StyleTransfer(f"{root}/src/impasto/data/content.jpg", [f"{root}/src/impasto/data/style.png"], cfg)
times, last = [], None
for ev in st.run():
    if ev.done:
        break
    if last is not None and ev.step > 2:
        times.append(ev.elapsed - last)
    last = ev.elapsed
print(json.dumps(times))
"""


def main(argv: list[str]) -> int:
    opts = {"--size": 256, "--steps": 20, "--repeats": 3}
    for k in list(opts):
        if k in argv:
            i = argv.index(k)
            opts[k] = int(argv[i + 1])
            del argv[i:i + 2]
    out, trees = Path(argv[0]), dict(a.split("=", 1) for a in argv[1:])
    per: dict[str, list[float]] = {k: [] for k in trees}
    for _ in range(opts["--repeats"]):
        for label, src in trees.items():
            done = subprocess.run([sys.executable, "-c", CHILD, str(opts["--size"]), str(opts["--steps"]), str(ROOT)],
                                  env=dict(os.environ, PYTHONPATH=src), capture_output=True, text=True, check=True)
            per[label] += json.loads(done.stdout)
    result = {
        "what": f"seconds per L-BFGS step, default objective, {opts['--size']} px, one scale, CPU",
        "loadavg_1m": os.getloadavg()[0],
        "trees": {k: {"min": min(v), "median": statistics.median(v), "n": len(v)} for k, v in per.items()},
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    for k, v in result["trees"].items():
        print(f"{k}: min {v['min']:.3f} s/step, median {v['median']:.3f} s/step ({v['n']} steps)")
    print(f"load average {result['loadavg_1m']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
