"""What is alive at a GPU run's peak: scripts/gpu_print_size.py under PyTorch's allocator history.

    PYTHONPATH=src python3 scripts/gpu_memory_peak.py --peak-json peak.json GPU_PRINT_SIZE_ARGS...

Records every CUDA allocation and free (``torch.cuda.memory._record_memory_history``, Python stacks)
while ``gpu_print_size.py`` runs with the given arguments, then replays the trace: the moment the
allocated bytes were largest, and the blocks alive then, grouped by the innermost impasto frame that
allocated them (and by the innermost frame of any file), largest first. Made to find what the memory
model of a tiled scale leaves out on a GPU (issue 21: 5 to 9 % over the budget at large crops).
"""

from __future__ import annotations

import collections
import json
import runpy
import sys
from pathlib import Path
from typing import Any


def _where(frames: list[dict[str, Any]], only_impasto: bool) -> str:
    for f in frames:
        name = str(f.get("filename", ""))
        if not only_impasto or "/impasto/" in name:
            return f"{'/'.join(name.rsplit('/', 2)[-2:])}:{f.get('line')} {f.get('name')}"
    return "?"


def peak_blocks(trace: list[dict[str, Any]]) -> tuple[int, int, dict[int, tuple[int, list[dict[str, Any]]]]]:
    """(peak bytes, index of the event that reached it, blocks alive then: addr -> (size, frames))."""
    cur = peak = 0
    at = -1
    for i, ev in enumerate(trace):
        if ev["action"] == "alloc":
            cur += ev["size"]
            if cur > peak:
                peak, at = cur, i
        elif ev["action"] == "free_completed":
            cur -= ev["size"]
    alive: dict[int, tuple[int, list[dict[str, Any]]]] = {}
    for ev in trace[: at + 1]:
        if ev["action"] == "alloc":
            alive[ev["addr"]] = (ev["size"], ev.get("frames", []))
        elif ev["action"] == "free_completed":
            alive.pop(ev["addr"], None)
    return peak, at, alive


def main() -> int:
    argv = sys.argv[1:]
    i = argv.index("--peak-json")
    out, rest = Path(argv[i + 1]), argv[:i] + argv[i + 2 :]
    import torch

    torch.cuda.memory._record_memory_history(enabled="all", context="all", stacks="python", max_entries=3_000_000)
    sys.argv = ["gpu_print_size.py", *rest]
    try:
        runpy.run_path(str(Path(__file__).with_name("gpu_print_size.py")), run_name="__main__")
    except SystemExit:
        pass
    snap = torch.cuda.memory._snapshot()
    torch.cuda.memory._record_memory_history(enabled=None)
    trace = snap["device_traces"][0]
    peak, at, alive = peak_blocks(trace)
    gib = 2**30
    rows = {}
    for only in (True, False):
        by: collections.Counter[str] = collections.Counter()
        count: collections.Counter[str] = collections.Counter()
        for size, frames in alive.values():
            key = _where(frames, only)
            by[key] += size
            count[key] += 1
        rows["impasto_frame" if only else "any_frame"] = [
            {"where": k, "gib": round(v / gib, 3), "blocks": count[k]} for k, v in by.most_common(25)]
    result = {"what": "blocks alive at the largest allocated total of the recorded trace",
              "args": rest, "trace_events": len(trace), "peak_event_index": at,
              "peak_allocated_gib": round(peak / gib, 3), "alive_blocks": len(alive),
              "max_memory_allocated_gib_at_end": round(torch.cuda.max_memory_allocated() / gib, 3), **rows}
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"peak {peak / gib:.2f} GiB at event {at} of {len(trace)}, {len(alive)} blocks alive:")
    for r in rows["impasto_frame"][:15]:
        print(f"  {r['gib']:8.3f} GiB  {r['blocks']:5d}  {r['where']}")
    print("by any frame:")
    for r in rows["any_frame"][:12]:
        print(f"  {r['gib']:8.3f} GiB  {r['blocks']:5d}  {r['where']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
