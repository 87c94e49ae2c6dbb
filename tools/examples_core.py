"""Issue-2 example outputs: Tübingen in the style of Starry Night and of The Shipwreck, 512 px, defaults.

Usage: python tools/examples_core.py [OUT_DIR]   (needs ../shared/images; prints the wall time of each run)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from impasto.cli import main

# IMPASTO_IMAGES points elsewhere (e.g. a copy carried to a GPU machine).
SHARED = Path(os.environ.get("IMPASTO_IMAGES", Path(__file__).resolve().parents[1].parent / "shared" / "images"))


def run(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for style in ("starry_night", "shipwreck"):
        out = out_dir / f"tubingen_{style}_512.png"
        t0 = time.perf_counter()
        code = main([str(SHARED / "tubingen.jpg"), str(SHARED / f"{style}.jpg"), "-o", str(out), "-q"])
        print(f"{out}: exit {code}, {time.perf_counter() - t0:.0f} s wall", flush=True)


if __name__ == "__main__":
    run(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out/examples"))
