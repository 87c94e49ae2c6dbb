"""Print size on a GPU (issue 21): the command line's run at a long side, with its peak GPU memory per scale.

    PYTHONPATH=src python3 scripts/gpu_print_size.py PHOTO PAINTING -o poster.png --size 8192 \
        [--max-memory 24GiB] [--style-max-zoom 1] --json docs/perf/print_size_gpu_8192.json

Runs ``impasto PHOTO PAINTING -o OUT --size N --print-every 1 -q [--max-memory B] [--style-max-zoom Z]``
in this process (:func:`impasto.cli.run.main`, so what a user runs), and records for each scale: its
size, the plan under the budget (whole, or the tile side; L-BFGS pairs; the modelled peak), its steps,
the median seconds per step (the first step of a scale, which includes its set-up and CUDA graph
capture, apart), and the largest ``torch.cuda.max_memory_allocated`` and ``max_memory_reserved``
between two progress events of that scale (the peak statistics are reset at every event, so the memory
of a scale's set-up counts towards its first step). The run's time is given twice: from this process's
start (``/proc/self/stat``) to the result written, and the optimisation alone (the last event's
``elapsed``).

Without CUDA it runs on the CPU and reports no GPU figures (for checking the script itself).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def _process_seconds() -> float:
    """Seconds since this process started (its start time in /proc/self/stat, in clock ticks after boot)."""
    start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def _save_png(image: Any, path: Path) -> None:
    from impasto.io.images import to_pil

    path.parent.mkdir(parents=True, exist_ok=True)
    to_pil(image).save(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("content")
    ap.add_argument("style")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--max-memory", help="the run's budget (default: impasto's, auto)")
    ap.add_argument("--style-max-zoom", help="impasto's --style-max-zoom (default: impasto's, none)")
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--save-image-at", nargs=2, metavar=("STEP", "PNG"),
                    help="also write the picture as it is after global step STEP (8-bit PNG): the start of a "
                    "later scale to run elsewhere (a checkpoint of a print is too large to move)")
    ap.add_argument("--no-cudnn", action="store_true",
                    help="run with torch.backends.cudnn disabled (to see what cuDNN's workspace adds to the peak)")
    args = sys.argv[1:] if argv is None else list(argv)
    # after --: more options for impasto itself (e.g. -- --start-size 4096 --steps 6)
    extra = args[args.index("--") + 1:] if "--" in args else []
    a = ap.parse_args(args[:args.index("--")] if "--" in args else args)
    save_step, save_png = (int(a.save_image_at[0]), Path(a.save_image_at[1])) if a.save_image_at else (-1, None)

    import torch

    from impasto.cli.run import main as impasto_main
    from impasto.engine import StyleTransfer

    cuda = torch.cuda.is_available()
    if a.no_cudnn:
        torch.backends.cudnn.enabled = False
    scales: dict[int, dict[str, Any]] = {}
    seen: dict[str, Any] = {"elapsed": 0.0, "budget": None, "device": None}
    original_run = StyleTransfer.run

    def measured_run(self: StyleTransfer, *args: Any, **kwargs: Any) -> Any:
        last = time.perf_counter()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        for ev in original_run(self, *args, **kwargs):
            now = time.perf_counter()
            if not ev.done:
                row = scales.get(ev.scale)
                if row is None:
                    plan = self.memory_plan(ev.size)
                    row = scales[ev.scale] = {
                        "height": ev.size[0], "width": ev.size[1],
                        "tile": None if plan is None else plan.tile,
                        "pairs": None if plan is None else plan.pairs,
                        "modelled_peak_bytes": None if plan is None else plan.peak,
                        "seconds": [], "tiles": [], "peak_allocated_bytes": 0, "peak_reserved_bytes": 0,
                    }
                row["seconds"].append(now - last)
                row["tiles"].append(ev.tiles)
                if cuda:
                    row["peak_allocated_bytes"] = max(row["peak_allocated_bytes"], torch.cuda.max_memory_allocated())
                    row["peak_reserved_bytes"] = max(row["peak_reserved_bytes"], torch.cuda.max_memory_reserved())
                    torch.cuda.reset_peak_memory_stats()
                seen["elapsed"] = ev.elapsed
                if ev.step == save_step and save_png is not None:
                    _save_png(self.current_image(), save_png)
                seen["budget"], seen["device"] = self.memory_budget(), str(self.device)
            yield ev
            last = time.perf_counter()

    StyleTransfer.run = measured_run  # type: ignore[method-assign]
    cli = [a.content, a.style, "-o", a.output, "--size", str(a.size), "--print-every", "1", "-q"]
    if a.max_memory:
        cli += ["--max-memory", a.max_memory]
    if a.style_max_zoom:
        cli += ["--style-max-zoom", a.style_max_zoom]
    cli += extra
    try:
        rc = impasto_main(cli)
    finally:  # a caller in the same process (a test) gets the engine back as it was
        StyleTransfer.run = original_run  # type: ignore[method-assign]
    wall = _process_seconds()

    rows = []
    for i in sorted(scales):
        r = scales[i]
        secs = r.pop("seconds")
        tiles = r.pop("tiles")
        rows.append({**r, "steps": len(secs), "first_step_seconds": round(secs[0], 3),
                     "seconds_per_step": round(statistics.median(secs[1:] or secs), 3),
                     "tiles_min": min(tiles), "tiles_max": max(tiles)})
    out = {
        "what": "impasto's command line at a print size on one GPU: per scale, the plan under the budget, "
                "seconds per step (median, the first step apart) and peak GPU memory "
                "(torch.cuda.max_memory_allocated, reserved)",
        "command": "PYTHONPATH=src python3 scripts/gpu_print_size.py "
                   + " ".join(sys.argv[1:] if argv is None else argv),
        "impasto_command": "impasto " + " ".join(cli),
        "exit_status": rc,
        "gpu": torch.cuda.get_device_name() if cuda else None,
        "torch": torch.__version__,
        "device": seen["device"],
        "max_memory": a.max_memory or "auto",
        "style_max_zoom": a.style_max_zoom,
        "cudnn": not a.no_cudnn,
        "budget_bytes": seen["budget"],
        "wall_seconds_from_process_start": round(wall, 1),
        "optimisation_seconds": round(seen["elapsed"], 1),
        "peak_allocated_bytes": max((r["peak_allocated_bytes"] for r in rows), default=0),
        "peak_reserved_bytes": max((r["peak_reserved_bytes"] for r in rows), default=0),
        "scales": rows,
    }
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(out, indent=1) + "\n")
    gib = 2**30
    for r in rows:
        how = "whole" if r["tile"] is None else f"tiles of {r['tile']} ({r['tiles_min']}-{r['tiles_max']})"
        model = "" if r["modelled_peak_bytes"] is None else f", modelled {r['modelled_peak_bytes'] / gib:.1f} GiB"
        print(f"{r['width']}x{r['height']} {how} pairs={r['pairs']}: {r['steps']} steps, "
              f"{r['seconds_per_step']:.3f} s/step (first {r['first_step_seconds']:.2f} s), peak allocated "
              f"{r['peak_allocated_bytes'] / gib:.1f} GiB, reserved {r['peak_reserved_bytes'] / gib:.1f} GiB{model}")
    print(f"{out['gpu'] or 'cpu'}: exit {rc}, {out['optimisation_seconds']} s optimising, "
          f"{out['wall_seconds_from_process_start']} s from process start; wrote {a.json}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
