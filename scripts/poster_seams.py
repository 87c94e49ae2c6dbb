"""Seams in a finished print: the seam figure at every tile grid its last scale can have used, against
grids that can never have been tile borders, and 1:1 crops across the worst grid's borders.

    PYTHONPATH=src python scripts/poster_seams.py out/print/poster_6000.png ../shared/images/rocket.jpg \
        ../shared/images/starry_night.jpg --json docs/perf/poster_6000_seams.json \
        --crops docs/img/poster_6000_border_crops.png

A print too large for a whole-image run has nothing to compare with, and its tile borders moved every
evaluation (:class:`impasto.tiling.grid.TileSchedule`), so which grid came last is not recorded. The
staggered schedule's offsets repeat with period n = tile / unit, so its n grids are every grid the last
scale used: each is measured (:func:`impasto.tiling.seams.seam_figure`, band 2). The control is the same
grids moved by half an alignment unit, positions that are never a tile border (borders are multiples of
the unit): if tiling left a seam, the tile grids' figures stand above the control's. The run's
configuration (size, budget, layers, seed) is read from the print's metadata and validated as any config;
the photo and the painting are given on the command line, as the run was.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.errors import ImpastoError
from impasto.io import load_image, read_metadata, save_image
from impasto.tiling.grid import TileSchedule, alignment
from impasto.tiling.seams import EnergyProfiles, energy_profiles, seam_figure


def grid_borders(schedule: TileSchedule, k: int) -> tuple[list[int], list[int]]:
    """The interior row and column borders of evaluation ``k``'s tiles."""
    tiles = schedule.tiles(k)
    return sorted({t.core[0] for t in tiles} - {0}), sorted({t.core[2] for t in tiles} - {0})


def scan(profiles: EnergyProfiles, schedule: TileSchedule, band: int = 2) -> dict[str, Any]:
    """The seam figure at each of the schedule's distinct grids, and at each moved by half a unit."""
    n = max(1, schedule.tile // schedule.unit)
    half = schedule.unit // 2
    grids, control = [], []
    for k in range(n):
        rows, cols = grid_borders(schedule, k)
        grids.append(seam_figure(profiles, rows, cols, band).ratio)
        control.append(seam_figure(profiles, [r + half for r in rows], [c + half for c in cols], band).ratio)
    worst = max(range(n), key=grids.__getitem__)
    return {"grids": n, "band": band, "tile_ratios": grids, "control_ratios": control,
            "tile_median": statistics.median(grids), "tile_max": grids[worst],
            "control_median": statistics.median(control), "control_max": max(control), "worst_k": worst,
            "median_over_control_median": statistics.median(grids) / statistics.median(control)}


def crossings(rows: list[int], cols: list[int], count: int) -> list[tuple[int, int]]:
    """Up to ``count`` border crossings spread over the grid (first, middle, last interior corner)."""
    corners = [(r, c) for r in rows for c in cols]
    if not corners:
        return []
    picks = sorted({0, len(corners) // 2, len(corners) - 1})[:count]
    return [corners[i] for i in picks]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("poster", type=Path)
    ap.add_argument("content", type=Path)
    ap.add_argument("style", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--crops", type=Path, help="a PNG of 1:1 crops across the worst grid's border crossings")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--band", type=int, default=2)
    ap.add_argument("--max-memory", help="the run's budget, where its metadata says auto (free memory then)")
    a = ap.parse_args(argv)
    try:
        meta = read_metadata(a.poster)
        if not meta or "config" not in meta:
            raise ImpastoError(f"{a.poster} carries no impasto run configuration")
        cfg = Config.from_dict(meta["config"])
        if a.max_memory:
            cfg = cfg.replace(max_memory=a.max_memory)
        elif (cfg.max_memory or "").strip().lower() == "auto":
            raise ImpastoError(f"{a.poster} ran with --max-memory auto (the free memory of that moment): "
                               "give the budget it resolved to with --max-memory")
        image = load_image(a.poster).rgb
        st = StyleTransfer(str(a.content), [str(a.style)], cfg)
        h, w = st.sizes[-1]
        if tuple(image.shape[-2:]) != (h, w):
            raise ImpastoError(f"{a.poster} is {image.shape[-1]}x{image.shape[-2]}, but its configuration's "
                               f"last scale is {w}x{h}: not this run's photo?")
        plan = st.memory_plan((h, w))
        if plan is None or plan.tile is None:
            raise ImpastoError(f"the last scale of {a.poster} ran whole under its budget: it has no tile borders")
    except ImpastoError as e:
        print(f"poster_seams: {e}", file=sys.stderr)
        return 2
    schedule = TileSchedule(h, w, plan.tile, plan.halo, alignment(st.model), "staggered", cfg.seed or 0)
    result = scan(energy_profiles(image), schedule, a.band)
    out: dict[str, Any] = {
        "what": "seam figure (band energy along tile borders / elsewhere, 1 = no seam) of the print at every "
                "grid of its last scale's staggered schedule, and at the same grids moved by half an "
                "alignment unit (never borders)",
        "command": "PYTHONPATH=src python scripts/poster_seams.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "poster": str(a.poster), "size": [h, w], "tile": plan.tile, "halo": plan.halo, "unit": schedule.unit,
        **result,
    }
    print(f"{w}x{h}, tiles of {plan.tile} px (halo {plan.halo}, unit {schedule.unit}), {result['grids']} grids: "
          f"seam figure median {result['tile_median']:.4f}, max {result['tile_max']:.4f}; control (never "
          f"borders) median {result['control_median']:.4f}, max {result['control_max']:.4f}")
    if a.crops:
        import torch

        rows, cols = grid_borders(schedule, result["worst_k"])
        c, half, panels = a.crop, a.crop // 2, []
        for r, col in crossings(rows, cols, 3):
            r0, c0 = min(max(0, r - half), h - c), min(max(0, col - half), w - c)
            panels += [image[:, r0 : r0 + c, c0 : c0 + c], torch.ones(3, c, 8)]
        save_image(torch.cat(panels[:-1], dim=2), a.crops)
        out["crops"], out["crossings"] = str(a.crops), crossings(rows, cols, 3)
        print(f"wrote {a.crops}: 1:1 crops of {c} px centred on the worst grid's border crossings {out['crossings']}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
