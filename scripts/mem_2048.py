"""Peak memory of a single-scale 2048 px run on the CPU (issue 4's memory target: under 8 GiB).

    PYTHONPATH=src python tools/mem_2048.py [STEPS] [--images DIR] [--size PX]

Defaults otherwise (recompute_activations auto, lbfgs_history_mib 1024). Prints the resident and peak
RSS after every step; run enough steps to fill the L-BFGS history (11 at 2048 px) to see the true peak.
About 100 s per step on 2 cores. Linux only (reads /proc/self/statm).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from impasto.bench.perf import prepare_inputs
from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.io.images import load_image

SHARED = Path(os.environ.get("IMPASTO_IMAGES", Path(__file__).resolve().parents[1].parent / "shared" / "images"))


def rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("steps", type=int, nargs="?", default=13)
    ap.add_argument("--images", type=Path, default=SHARED)
    ap.add_argument("--size", type=int, default=2048)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        content, style = prepare_inputs(args.size, Path(tmp), args.images)
        cfg = Config(size=args.size, start_size=None, steps=args.steps, device="cpu")
        print(f"L-BFGS pairs kept at {args.size} px: {cfg.history_for(args.size, args.size)}", flush=True)
        st = StyleTransfer(load_image(content), [load_image(style)], cfg)
    print(f"after setup: rss {rss_mib():.0f} MiB peak {peak_mib():.0f} MiB", flush=True)
    t0 = time.perf_counter()
    for ev in st.run():
        print(f"step {ev.step} done={ev.done} t={time.perf_counter() - t0:.1f}s loss {ev.loss:.4g} "
              f"rss {rss_mib():.0f} MiB peak {peak_mib():.0f} MiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
