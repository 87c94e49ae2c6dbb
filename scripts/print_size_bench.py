"""Print-size figures (issue 21): peak memory of the default under a 4 GiB budget, and tiled against whole.

    OMP_NUM_THREADS=2 PYTHONPATH=src python scripts/print_size_bench.py memory [--sizes 1024 2048 4096]
    OMP_NUM_THREADS=2 PYTHONPATH=src python scripts/print_size_bench.py compare [--size 1024 --steps 4]

A benchmark, not a test; both use the bundled inputs (src/impasto/data: content.jpg, public domain, and
style.png) and the real VGG19 weights, on the CPU.

``memory``: for each long side, a fresh subprocess runs the default configuration *single-scale*
(``start_size`` none, 2 steps: a scale's peak is reached in its first steps; the coarse scales of the
default schedule are smaller, so their peaks are lower) with ``max_memory`` 4GiB, and reports its
``VmHWM`` (peak RSS from /proc/self/status), the plan (tiles, L-BFGS pairs, modelled peak) and seconds per
step. With 2 steps the L-BFGS history holds one pair, not the plan's full count: the figure's history
part is short by (pairs - 1) pair sizes, which the JSON states. JSON: docs/perf/print_size_memory_cpu.json.

``compare``: at a size where the whole image fits, the same run (default objective, single scale, seed 0)
whole and in tiles (a budget that forces tiles; the whole run keeps the tiled plan's L-BFGS pairs, so
only the evaluation differs): wall-time ratio, largest pixel difference, the seam figure
(:mod:`impasto.tiling.seams`) of both results at the first evaluation's tile borders, and a strip of
crops across a border corner (tiled | whole | 8x difference) in docs/img/print_size_border_crops.png.
JSON: docs/perf/print_size_compare_cpu_<size>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PERF = ROOT / "docs" / "perf"


def _hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _inputs() -> tuple[Path, Path]:
    from impasto.io import default_content_path, default_style_path

    return Path(default_content_path()), Path(default_style_path())


def child(size: int, steps: int, budget: str, allocator: str = "bound") -> dict[str, Any]:
    """One single-scale run in this (fresh) process; its peak RSS. ``allocator`` glibc: without
    :func:`impasto.tiling.allocator.bound_allocator`, for the comparison."""
    import impasto.engine
    from impasto.config import Config
    from impasto.engine import StyleTransfer

    if allocator == "glibc":
        impasto.engine.bound_allocator = lambda: False  # type: ignore[attr-defined]

    content, style = _inputs()
    cfg = Config(size=size, start_size=None, steps=steps, device="cpu", max_memory=budget)
    st = StyleTransfer(content, [style], cfg)
    plan = st.memory_plan(st.sizes[-1])
    assert plan is not None
    floor = _floor(st)
    hwm_setup = _hwm()
    t0 = time.perf_counter()
    times, tiles = [], []
    last = t0
    for ev in st.run():
        if not ev.done:
            now = time.perf_counter()
            times.append(now - last)
            last = now
            tiles.append(ev.tiles)
    return {
        "size": list(st.sizes[-1]), "steps": steps, "budget": budget, "budget_bytes": plan.budget,
        "allocator": allocator,
        "peak_rss_bytes": _hwm(), "peak_rss_after_setup_bytes": hwm_setup,
        "style_layers": list(st.style_layers),
        "tile": plan.tile, "halo": plan.halo, "pairs_planned": plan.pairs, "pairs_filled": max(0, steps - 1),
        "modelled_peak_bytes": plan.peak, "modelled_whole_bytes": plan.whole.total + plan.overhead,
        "pair_bytes": 2 * 3 * st.sizes[-1][0] * st.sizes[-1][1] * 4,
        "floor_bytes": floor["floor"], "network_and_pixel_vectors_bytes": floor["network_and_pixels"],
        "tiles_per_step": tiles, "seconds_per_step": [round(t, 2) for t in times],
        "wall_seconds": round(time.perf_counter() - t0, 1), "threads": int(os.environ.get("OMP_NUM_THREADS", "0")),
    }


def _floor(st: Any) -> dict[str, int]:
    """The least budget this size accepts (pixel vectors, content targets, one L-BFGS pair, the smallest
    tile, the runtime and input images: what no tiling reduces) and the network plus the pixel vectors."""
    from impasto.tiling.grid import alignment, required_halo
    from impasto.tiling.memory import estimate_tiled, pair_bytes

    h, w = st.sizes[-1]
    least = estimate_tiled(st.model, st.content_layers, st.style_layers, h, w, 0, alignment(st.model),
                           required_halo(st.model))
    return {"floor": least.total + pair_bytes(h, w) + st.process_overhead(),
            "network_and_pixels": least.network + least.pixels}


def memory(sizes: list[str], steps: int, budget: str, allocator: str = "bound") -> None:
    """``sizes``: long sides, each optionally ``SIZE:BUDGET`` (a size whose floor is above ``budget``).
    Rows are merged into the JSON by (size, budget), so sizes can be measured in separate invocations."""
    path = PERF / "print_size_memory_cpu.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    rows = [{"loadavg_at_end": old["loadavg_at_end"], **r} if "loadavg_at_end" in old else r
            for r in old.get("rows", [])]
    command = (f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} PYTHONPATH=src python "
               f"scripts/print_size_bench.py memory --sizes {' '.join(sizes)} --budget {budget} --steps {steps}"
               + (" --allocator glibc" if allocator == "glibc" else ""))
    for spec in sizes:
        size_s, _, own = spec.partition(":")
        size, size_budget = int(size_s), own or budget
        out = subprocess.run([sys.executable, __file__, "child", str(size), str(steps), size_budget, allocator],
                             capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        with open("/proc/loadavg") as f:
            row["loadavg_at_end"] = f.read().split()[:3]
        row["command"] = command
        rows = [r for r in rows if (max(r["size"]), r["budget"], r.get("allocator", "bound"))
                != (size, size_budget, allocator)] + [row]
        print(f"{size:>5} px {row['size'][1]}x{row['size'][0]}: peak RSS {row['peak_rss_bytes'] / 2**30:.2f} GiB "
              f"(modelled {row['modelled_peak_bytes'] / 2**30:.2f}, whole {row['modelled_whole_bytes'] / 2**30:.2f}) "
              f"tile {row['tile']} pairs {row['pairs_planned']} tiles/step {row['tiles_per_step']} "
              f"s/step {row['seconds_per_step']}", flush=True)
        # Written after every size: a size takes up to an hour here, and a later one may be interrupted.
        _write_memory(path, rows)
    print(f"wrote {path}")


def _write_memory(path: Path, rows: list[dict[str, Any]]) -> None:
    PERF.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "what": "peak RSS (VmHWM) of a fresh process, default Config single-scale (start_size none), "
                "each row's steps and max_memory, bundled inputs, real VGG19, CPU; floor_bytes: the least "
                "budget the size accepts; command: what measured the row",
        "rows": sorted(rows, key=lambda r: (max(r["size"]), r["budget_bytes"]))},
        indent=1) + "\n")


def _judge(content: Path, style: Path, images: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The VGG judge's and the independent figures of each image (impasto.bench)."""
    from impasto.bench.independent import IndependentJudge
    from impasto.bench.quality import QualityJudge
    from impasto.io import load_image

    c, s = load_image(content).rgb, load_image(style).rgb
    vgg, ind = QualityJudge(c, s), IndependentJudge(c, s)
    out = {}
    for name, img in images.items():
        v, i = vgg(img), ind(img)
        out[name] = {"vgg_style": v.style, "vgg_deep": v.deep, "vgg_content": v.content, "texture": i.texture,
                     "cnn": i.cnn, "color": i.color, "structure": i.structure}
    return out


def compare(size: int, steps: int, init_image: str | None = None) -> None:
    import torch

    from impasto.config import Config
    from impasto.engine import StyleTransfer
    from impasto.io import save_image
    from impasto.tiling.grid import TileSchedule, alignment
    from impasto.tiling.seams import seam_figure

    content, style = _inputs()
    base = Config(size=size, start_size=None, steps=steps, device="cpu", seed=0)
    start = None
    if init_image is not None:
        from impasto.io import load_image

        start = load_image(init_image).rgb  # resized to the scale by the engine

    probe = StyleTransfer(content, [style], base.replace(max_memory="1TiB"))
    whole_est = probe.memory_plan(probe.sizes[-1])
    assert whole_est is not None
    budget = f"{int((whole_est.whole.total + whole_est.overhead) * 0.6)}B"  # forces tiles
    tiled_st = StyleTransfer(content, [style], base.replace(max_memory=budget), init_image=start)
    plan = tiled_st.memory_plan(tiled_st.sizes[-1])
    assert plan is not None and plan.tile is not None
    results = {}
    for name, st in (("tiled", tiled_st),
                     ("whole", StyleTransfer(content, [style], base.replace(max_memory=None,
                                                                            lbfgs_history=plan.pairs),
                                            init_image=start))):
        t0 = time.perf_counter()
        events = list(st.run())
        results[name] = (time.perf_counter() - t0, events)
        print(f"{name}: {results[name][0]:.1f} s, loss {events[-1].loss:.6g}", flush=True)
    h, w = tiled_st.sizes[-1]
    tiles = TileSchedule(h, w, plan.tile, plan.halo, alignment(tiled_st.model), "staggered", 0).tiles(0)
    rows = sorted({t.core[0] for t in tiles} - {0})
    cols = sorted({t.core[2] for t in tiles} - {0})
    a, b = results["tiled"][1][-1].image, results["whole"][1][-1].image
    seams = {k: seam_figure(img, rows, cols, band=2).__dict__ for k, img in (("tiled", a), ("whole", b))}
    # Crops across the first border corner: tiled | whole | 8x |difference| (+0.5 grey).
    r, c, half = rows[0], cols[0], 64
    box = (slice(max(0, r - half), r + half), slice(max(0, c - half), c + half))
    ca, cb = a[:, box[0], box[1]], b[:, box[0], box[1]]
    strip = torch.cat([ca, torch.ones(3, ca.shape[1], 4), cb, torch.ones(3, ca.shape[1], 4),
                       ((ca - cb) * 8 + 0.5).clamp(0, 1)], dim=2)
    img_path = ROOT / "docs" / "img" / f"print_size_border_crops_{size}.png"
    save_image(strip, img_path)
    judged = _judge(content, style, {"tiled": a, "whole": b})
    rel = {k: abs(judged["tiled"][k] - judged["whole"][k]) / max(abs(judged["whole"][k]), 1e-12)
           for k in judged["whole"]}
    out = {
        "what": f"the default objective single-scale at {size} px, {steps} steps, seed 0: tiled (max_memory "
                f"{budget}) against whole with the same L-BFGS pairs; seam figure band 2 at the first "
                "evaluation's tile borders (tile borders move every evaluation)",
        "command": f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} PYTHONPATH=src python "
                   f"scripts/print_size_bench.py compare --size {size} --steps {steps}"
                   + (f" --init-image {init_image}" if init_image else ""),
        "init_image": init_image,
        "judge": judged, "judge_relative_difference": rel,
        "size": [h, w], "tile": plan.tile, "halo": plan.halo, "pairs": plan.pairs,
        "tiles_per_step": [e.tiles for e in results["tiled"][1][:-1]],
        "wall_seconds": {k: round(v[0], 1) for k, v in results.items()},
        "wall_ratio_tiled_over_whole": round(results["tiled"][0] / results["whole"][0], 3),
        "loss": {k: v[1][-1].loss for k, v in results.items()},
        "max_abs_pixel_difference": float((a - b).abs().max()),
        "mean_abs_pixel_difference": float((a - b).abs().mean()),
        "seam_figure": seams,
        "seam_ratio_tiled_over_whole": seams["tiled"]["ratio"] / seams["whole"]["ratio"],
        "crops": str(img_path.relative_to(ROOT)), "crop_corner": [r, c],
    }
    path = PERF / f"print_size_compare_cpu_{size}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out[k] for k in ("wall_seconds", "wall_ratio_tiled_over_whole", "max_abs_pixel_difference",
                                          "seam_ratio_tiled_over_whole", "judge_relative_difference")}))
    print(f"wrote {path} and {img_path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("memory")
    m.add_argument("--sizes", nargs="+", default=["1024", "2048", "4096"],
                   help="long sides, each optionally SIZE:BUDGET (e.g. 6000:7GiB)")
    m.add_argument("--steps", type=int, default=2)
    m.add_argument("--budget", default="4GiB")
    m.add_argument("--allocator", choices=("bound", "glibc"), default="bound",
                   help="glibc: without impasto's allocator bound (impasto.tiling.allocator), for the comparison")
    c = sub.add_parser("compare")
    c.add_argument("--size", type=int, default=1024)
    c.add_argument("--steps", type=int, default=4)
    c.add_argument("--init-image", help="start both runs from this image (e.g. a smaller default result)")
    k = sub.add_parser("child")
    k.add_argument("size", type=int)
    k.add_argument("steps", type=int)
    k.add_argument("budget")
    k.add_argument("allocator", nargs="?", default="bound")
    args = ap.parse_args()
    if args.cmd == "child":
        print(json.dumps(child(args.size, args.steps, args.budget, args.allocator)))
    elif args.cmd == "memory":
        memory(args.sizes, args.steps, args.budget, args.allocator)
    else:
        compare(args.size, args.steps, args.init_image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
