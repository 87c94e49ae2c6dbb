"""Peak RSS of each phase of a print-size run against the memory model's peak of its scale.

    OMP_NUM_THREADS=2 PYTHONPATH=src python scripts/memory_phases.py --allocator glibc \
        --json docs/perf/memory_phases_cpu_glibc.json

The defaults are the committed runs' (1800 px from 1273 px, 2 steps a scale, 1.1 GiB: the last scale in
184 px tiles with one L-BFGS pair). Runs that schedule under ``--budget`` on the bundled inputs, writing
a checkpoint after every step as the CLI does, and reads the process's peak RSS (``VmHWM``) over each
phase, resetting it between phases (``/proc/self/clear_refs`` 5, Linux):

- ``set-up``: building a scale's objective (its targets), the previous scale still alive;
- ``evaluate``: one loss and gradient (the tile passes on a tiled scale), backward included;
- ``lbfgs``: the rest of an L-BFGS step (history update, new direction);
- ``trust``: the trust region shrinking the step;
- ``checkpoint``: writing the run's state;
- ``other``: the rest of a step (outside every phase above).

Each phase's peak is reported per scale with the scale's modelled peak (``ScalePlan.peak``), in bytes
and in pixel vectors of the scale (3·H·W float32), so an excess reads as a count of unmodelled
picture-sized tensors, and each step's seconds (the first of a scale includes its set-up).
``--allocator glibc`` runs every scale with the C allocator's defaults instead of
:func:`impasto.tiling.allocator.bound_allocator`, for the comparison. Linux only (reads VmHWM, and resets it
through the process's own ``clear_refs``, which any user may).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import impasto.engine
import impasto.tiling.allocator
from impasto.checkpoint import save_checkpoint
from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.io.images import load_image
from impasto.optim import TrustRegion
from impasto.optim.evaluator import LossEvaluator
from impasto.optim.lbfgs import CompactLBFGS, TwoLoopLBFGS
from impasto.units import format_bytes, parse_memory

DATA = Path(__file__).resolve().parents[1] / "src" / "impasto" / "data"


def _hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")


class PhasePeaks:
    """Peak RSS per (scale, phase). Nested phases count towards the innermost one only: the peak
    reached before a phase starts is the enclosing phase's, the peak inside it is its own."""

    def __init__(self) -> None:
        self.scale = -1
        self.stack: list[str] = ["other"]
        self.peaks: dict[tuple[int, str], int] = {}

    def _charge(self) -> None:
        key = (self.scale, self.stack[-1])
        self.peaks[key] = max(self.peaks.get(key, 0), _hwm())
        _reset()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._charge()
        self.stack.append(name)
        try:
            yield
        finally:
            self._charge()
            self.stack.pop()

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        fn: Callable[..., Any] = getattr(owner, attr)

        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self.phase(name):
                return fn(*args, **kwargs)

        setattr(owner, attr, wrapped)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1800)
    ap.add_argument("--budget", default="1.1GiB")
    ap.add_argument("--steps", type=int, default=2, help="steps at every scale")
    ap.add_argument("--start-size", type=int, default=1273)
    ap.add_argument("--allocator", choices=("bound", "glibc"), default="bound",
                    help="bound: as impasto runs (see impasto.engine.BOUND_FRACTION); glibc: the C "
                         "allocator's defaults throughout")
    ap.add_argument("--threshold", help="bound: the mmap threshold to fix (default: impasto's)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.threshold is not None:
        impasto.tiling.allocator.TILED_MMAP_THRESHOLD = parse_memory(args.threshold)
    if args.allocator != "bound":
        impasto.engine.bound_allocator = lambda: False  # type: ignore[attr-defined]

    peaks = PhasePeaks()
    peaks.wrap(LossEvaluator, "__call__", "evaluate")
    peaks.wrap(CompactLBFGS, "step", "lbfgs")
    peaks.wrap(TwoLoopLBFGS, "step", "lbfgs")
    peaks.wrap(TrustRegion, "apply", "trust")
    peaks.wrap(StyleTransfer, "tiled_objective", "set-up")
    peaks.wrap(StyleTransfer, "objective", "set-up")

    content, style = DATA / "content.jpg", DATA / "style.png"
    cfg = Config(size=args.size, start_size=args.start_size, scale_steps=None, steps=args.steps,
                 min_scale_steps=args.steps, step_ratio=1.0, max_memory=args.budget, device="cpu")
    st = StyleTransfer(load_image(content), [load_image(style)], cfg)
    plans = {size: st.memory_plan(size) for size in st.sizes}
    seconds: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "run.png.ckpt"
        resumed = time.perf_counter()  # each step's time, without the checkpoint after it
        for ev in st.run():
            if ev.done:
                break
            seconds.setdefault(ev.scale, []).append(time.perf_counter() - resumed)
            peaks.scale = ev.scale
            with peaks.phase("checkpoint"):
                save_checkpoint(ckpt, st, content=content, styles=[style])
            # The next step's set-up of a new scale is charged to that scale.
            if st._pos.done >= st.steps[ev.scale] and ev.scale + 1 < len(st.sizes):
                peaks._charge()
                peaks.scale = ev.scale + 1
            resumed = time.perf_counter()

    rows = []
    for si, size in enumerate(st.sizes):
        plan = plans[size]
        assert plan is not None
        vector = 3 * size[0] * size[1] * 4
        phases = {name: peak for (s, name), peak in peaks.peaks.items() if s == si}
        worst = max(phases.values())
        rows.append({
            "height": size[0], "width": size[1], "tiles": plan.tile is not None, "tile": plan.tile,
            "pairs": plan.pairs, "modelled_peak_bytes": plan.peak, "measured_peak_bytes": worst,
            "excess_vectors": round((worst - plan.peak) / vector, 2),
            "seconds_per_step": [round(t, 2) for t in seconds.get(si, [])],
            "phases": {name: {"peak_bytes": p, "over_model_vectors": round((p - plan.peak) / vector, 2)}
                       for name, p in sorted(phases.items())},
        })
        top = ", ".join(f"{n} {format_bytes(p)}" for n, p in sorted(phases.items(), key=lambda kv: -kv[1]))
        print(f"{size[1]}x{size[0]} {'tiles of ' + str(plan.tile) if plan.tile else 'whole'} pairs={plan.pairs}: "
              f"model {format_bytes(plan.peak)}, measured {format_bytes(worst)} "
              f"({(worst - plan.peak) / vector:+.1f} pixel vectors), s/step "
              f"{' '.join(f'{t:.1f}' for t in seconds.get(si, []))} | {top}", flush=True)
    flags = " ".join(sys.argv[1:] if argv is None else argv)
    out = {"command": f"OMP_NUM_THREADS=2 PYTHONPATH=src python scripts/memory_phases.py {flags}",
           "allocator": args.allocator, "size": args.size, "budget_bytes": parse_memory(args.budget),
           "steps_per_scale": args.steps,
           "scales": rows}
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
