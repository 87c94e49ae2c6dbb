"""Wall time of whole command-line runs, from process start to the written result (issue 10's "at most
3 minutes at 512 px on the CPU", and the draft the studio shows first).

    PYTHONPATH=src OMP_NUM_THREADS=2 python scripts/cli_wall_time.py docs/perf/cli_wall_time_512.json \
        --pair ../shared/images/astronaut.png ../shared/images/the_wave.jpg \
        --pair src/impasto/data/content.jpg src/impasto/data/style.png --quality draft standard

Each run is a fresh ``python -m impasto CONTENT STYLE -o OUT --quality Q`` with today's defaults
otherwise; the load average before and after each run is recorded (a second job on the machine makes
every figure wrong). Prints one line per run and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--pair", nargs=2, action="append", required=True, metavar=("CONTENT", "STYLE"))
    p.add_argument("--quality", nargs="+", default=["standard"])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--flags", default="", help="more impasto flags for every run, one string (e.g. the previous "
                   "default's: \"--style-layers relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 --style-weight 55\")")
    p.add_argument("--keep", type=Path, default=None, metavar="DIR",
                   help="keep the results in DIR (CONTENT_STYLE_QUALITY.png) to judge and look at")
    a = p.parse_args()
    runs: list[dict[str, Any]] = []
    doc = {"threads": os.environ.get("OMP_NUM_THREADS"), "python": sys.version.split()[0],
           "command": "python scripts/cli_wall_time.py " + " ".join(sys.argv[1:]), "runs": runs}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = a.keep if a.keep is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for content, style in a.pair:
            for quality in a.quality:
                result = folder / f"{Path(content).stem}_{Path(style).stem}_{quality}.png"
                if result.exists():
                    raise SystemExit(f"{result} exists: keep the results in a fresh folder")
                load_start = os.getloadavg()
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "impasto", content, style, "-o", str(result),
                                       "--size", str(a.size), "--quality", quality, "-q", *a.flags.split()],
                                      capture_output=True, text=True)
                seconds = time.perf_counter() - t0
                if proc.returncode != 0 or not result.is_file():
                    raise SystemExit(f"impasto failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
                run = {"content": content, "style": style, "quality": quality, "size": a.size, "flags": a.flags,
                       "seconds": round(seconds, 2), "load_start": load_start, "load_end": os.getloadavg()}
                runs.append(run)
                print(f"{Path(content).name} x {Path(style).name} {quality}: {seconds:.1f} s "
                      f"(load {load_start[0]:.2f} -> {run['load_end'][0]:.2f})", flush=True)
                a.out.write_text(json.dumps(doc, indent=1) + "\n")  # after every run: a long sweep keeps its rows


if __name__ == "__main__":
    main()
