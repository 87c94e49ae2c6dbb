"""Time from process start to the first optimisation step of the CLI, for one or more source trees.

Usage: python scripts/cli_startup.py OUT.json LABEL=SRC_DIR [LABEL=SRC_DIR ...] [--repeats N]

Each repeat runs every tree once, interleaved (A B A B ...), in a fresh process
(`python -m impasto ... --print-every 1`), and records the seconds until the first step's line appears,
and the import time of pydantic for comparison (the Config could have been a pydantic model). Prints
the minimum and median per tree, with the load average, and writes them as JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def first_step_seconds(src: str) -> float:
    content = ROOT / "src" / "impasto" / "data" / "content.jpg"
    style = ROOT / "src" / "impasto" / "data" / "style.png"
    out = Path("/tmp") / f"impasto-startup-{os.getpid()}.png"
    env = dict(os.environ, PYTHONPATH=src)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "impasto", str(content), str(style), "-o", str(out), "--size", "64",
         "--start-size", "none", "--steps", "2", "--print-every", "1", "-q"],
        env=env, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    seconds = time.perf_counter() - t0
    proc.wait()
    out.unlink(missing_ok=True)
    return seconds


def import_seconds(module: str) -> float | None:
    code = f"import time; t=time.perf_counter(); import {module}; print(time.perf_counter()-t)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return float(done.stdout) if done.returncode == 0 else None


def main(argv: list[str]) -> int:
    repeats = 5
    if "--repeats" in argv:
        i = argv.index("--repeats")
        repeats = int(argv[i + 1])
        del argv[i:i + 2]
    out, trees = Path(argv[0]), dict(a.split("=", 1) for a in argv[1:])
    times: dict[str, list[float]] = {k: [] for k in trees}
    for _ in range(repeats):
        for label, src in trees.items():
            times[label].append(first_step_seconds(src))
    result = {
        "what": "seconds from process start to the first optimisation step (64 px, bundled inputs, CPU)",
        "loadavg_1m": os.getloadavg()[0],
        "trees": {k: {"min": min(v), "median": statistics.median(v), "all": v} for k, v in times.items()},
        "import_pydantic_s": import_seconds("pydantic"),
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    for k, v in result["trees"].items():
        print(f"{k}: min {v['min']:.2f} s, median {v['median']:.2f} s")
    print(f"import pydantic: {result['import_pydantic_s']}; load average {result['loadavg_1m']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
