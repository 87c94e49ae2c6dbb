"""Seconds of every step of one default run at one scale, in a fresh process: the first step (which
builds the scale's targets and makes the first evaluation) against the rest.

    PYTHONPATH=src OMP_NUM_THREADS=2 python scripts/step_seconds.py ../shared/images/astronaut.png \
        ../shared/images/the_wave.jpg --size 512 --steps 6 --json docs/perf/step_seconds_512.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from impasto import Config, StyleTransfer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("content", type=Path)
    p.add_argument("style", type=Path)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    load_start = os.getloadavg()
    st = StyleTransfer(a.content, [a.style], Config(size=a.size, start_size=None, steps=a.steps))
    seconds: list[float] = []
    last = time.perf_counter()
    for ev in st.run():
        if ev.done:
            break
        now = time.perf_counter()
        seconds.append(round(now - last, 3))
        last = now
    doc = {"content": a.content.name, "style": a.style.name, "size": list(st.sizes[-1]),
           "threads": torch.get_num_threads(),
           "seconds_per_step": seconds, "load_start": load_start, "load_end": os.getloadavg()}
    print(f"{a.content.name} x {a.style.name} {st.sizes[-1][1]}x{st.sizes[-1][0]}: first step {seconds[0]:.2f} s, "
          f"then {', '.join(f'{s:.2f}' for s in seconds[1:])} s (load {load_start[0]:.2f})")
    if a.json is not None:
        a.json.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
