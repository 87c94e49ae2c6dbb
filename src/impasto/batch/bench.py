"""Batch throughput: jobs per minute at 128 px for 1 and 2 single-threaded workers, local pool vs Ray.

    python -m impasto.batch.bench [--steps 100] [--size 128] [--out docs/perf/batch_128.json]

Runs the same batch -- 3 photos × 3 paintings of the shared images (``$IMPASTO_IMAGES``, default
``../shared/images`` from the current folder) with the bundled VGG19 -- on each backend and worker count,
each time into a fresh folder, through the same coordinator as ``impasto batch``. For each run it records
the wall time from the first call to the last written file (worker start-up included: torch import, VGG
load, for Ray also starting Ray), jobs per minute, the mean optimisation seconds per job, and the overhead
``wall - sum(job seconds) / workers``: what the batch machinery costs on top of the optimisation itself.
Numbers taken while other processes compete for the cores are wrong; the JSON records the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from impasto import __version__
from impasto.bench.perf import default_images_dir  # the one IMPASTO_IMAGES setting

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png")
PAINTINGS = ("starry_night.jpg", "the_wave.jpg", "composition_vii.jpg")


def run_once(backend_name: str, workers: int, contents: list[str], styles: list[str], flags: list[str],
             weights: str | None) -> dict[str, Any]:
    from impasto.batch.backends import make_backend
    from impasto.batch.cli import SharedConfig
    from impasto.batch.jobs import grid_requests, resolve_jobs
    from impasto.batch.runner import run_batch

    with tempfile.TemporaryDirectory(prefix="impasto-bench-batch-") as tmp:
        shared = SharedConfig.from_argv([*flags, *(["--weights", weights] if weights else [])])
        jobs = resolve_jobs(grid_requests(contents, styles), tmp, shared, checkpoint_every=0)
        backend = make_backend(backend_name, workers=workers, threads=1, jobs=len(jobs), max_retries=0)
        t0 = time.perf_counter()
        first_done = None
        compute: list[float] = []
        failed: list[str] = []
        for ev in run_batch(jobs, backend):
            if ev.kind == "done" and ev.result is not None and ev.result.output is not None:
                compute.append(ev.result.output.seconds)
                first_done = first_done or time.perf_counter() - t0
            elif ev.kind == "failed" and ev.result is not None:
                failed.append(f"{ev.job.name if ev.job else '?'}: {ev.result.error}")
        wall = time.perf_counter() - t0
    if failed:
        raise SystemExit(f"bench: {len(failed)} job(s) failed: {failed[0]}")
    n = len(compute)
    return {
        "backend": backend_name, "workers": workers, "threads": 1, "jobs": n,
        "wall_s": round(wall, 2), "jobs_per_min": round(n / wall * 60, 2),
        "first_result_s": round(first_done or 0.0, 2),
        "mean_job_compute_s": round(sum(compute) / n, 2),
        "overhead_s": round(wall - sum(compute) / workers, 2),
    }


def table(result: dict[str, Any]) -> str:
    """The README's markdown table of a benchmark JSON."""
    lines = ["| backend | workers × threads | wall s | jobs/min | first result s | compute s/job | overhead s |",
             "|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        lines.append(f"| {r['backend']} | {r['workers']} × {r['threads']} | {r['wall_s']:.1f} "
                     f"| {r['jobs_per_min']:.1f} | {r['first_result_s']:.1f} | {r['mean_job_compute_s']:.1f} "
                     f"| {r['overhead_s']:.1f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m impasto.batch.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=100, help="steps per job (default: the default config's 100)")
    p.add_argument("--workers", default="1,2", help="worker counts to measure (default: 1,2)")
    p.add_argument("--backends", default="local,ray", help="backends to measure (default: local,ray)")
    p.add_argument("--weights", help="VGG weights file (default: the bundled VGG19)")
    p.add_argument("--out", default="docs/perf/batch_128.json", help="JSON to write (default: %(default)s)")
    p.add_argument("--table", metavar="JSON", help="print the markdown table of an earlier run's JSON and exit")
    args = p.parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return 0
    root = default_images_dir()
    if root is None:
        print("bench: set IMPASTO_IMAGES to the folder of the shared images (e.g. ../shared/images)", file=sys.stderr)
        return 2
    contents = [str(root / n) for n in PHOTOS]
    styles = [str(root / n) for n in PAINTINGS]
    missing = [x for x in contents + styles if not os.path.isfile(x)]
    if missing:
        print(f"bench: missing images ({missing[0]}); set IMPASTO_IMAGES", file=sys.stderr)
        return 2
    flags = ["--size", str(args.size), "--steps", str(args.steps), "--device", "cpu"]
    load_before = os.getloadavg()
    runs = []
    for backend in args.backends.split(","):
        for w in (int(x) for x in args.workers.split(",")):
            r = run_once(backend, w, contents, styles, flags, args.weights)
            print(json.dumps(r), file=sys.stderr)
            runs.append(r)
    by = {(r["backend"], r["workers"]): r for r in runs}
    ray_vs_local = {
        str(w): {"extra_wall_s": round(by[("ray", w)]["wall_s"] - by[("local", w)]["wall_s"], 2),
                 "ratio": round(by[("ray", w)]["wall_s"] / by[("local", w)]["wall_s"], 3)}
        for (b, w) in by if b == "local" and ("ray", w) in by
    }
    result = {
        "what": f"{len(contents)} photos x {len(styles)} paintings at {args.size} px, {args.steps} steps/job, "
                + (f"weights {args.weights}" if args.weights else "bundled VGG19"),
        "command": "python -m impasto.batch.bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "impasto": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "runs": runs, "ray_vs_local": ray_vs_local,
        "note": "wall_s includes worker start-up (torch import, VGG load; for ray also ray.init); "
                "overhead_s = wall_s - sum(job compute) / workers",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
