"""scripts/poster_log.py reads a resumed run's log: steps redone after a kill count once, a scale's seconds
per step skip its first step, and /usr/bin/time's peak RSS is read where a process ended normally."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "poster_log.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("poster_log", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["poster_log"] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def _step(n: int, size: str, t: float, tiles: int = 0) -> str:
    tile = f" tiles={tiles}" if tiles else ""
    return f"step {n:3d}/7 {size}{tile} t={t}s loss=1.0 content=0.5 style=0.4 tv=0.1 | content/relu4_2=0.5"


# Two processes: the first is killed after step 5 with its checkpoint at step 4 (t=9.0); the resumed one
# redoes step 5 from t=9.0 and ends normally under /usr/bin/time -v.
LOG = "\n".join([
    _step(1, "20x10", 1.0), _step(2, "20x10", 2.0), _step(3, "20x10", 3.0),
    _step(4, "40x20", 9.0, 2), _step(5, "40x20", 13.0, 3),
    "\tCommand being timed: \"python -m impasto resume x.ckpt\"",
    _step(5, "40x20", 14.0, 3), _step(6, "40x20", 18.5, 4), _step(7, "40x20", 23.0, 4),
    "\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03.5",
    "\tMaximum resident set size (kbytes): 2097152",
])


def test_summary_of_a_resumed_log() -> None:
    s = _script().summarise(LOG)
    assert (s.steps_logged, s.steps_total, s.finished, s.processes) == (7, 7, True, 2)
    assert s.optimisation_seconds == 23.0
    small, big = s.scales
    assert (small.width, small.height, small.steps, small.tiles_max, small.seconds_per_step) == (20, 10, 3, 0, 1.0)
    # deltas of steps 5, 6, 7 after the scale's first (step 4): 14-9, 18.5-14, 23-18.5 -> median 4.5
    assert (big.steps, big.tiles_min, big.tiles_max, big.seconds_per_step) == (4, 2, 4, 4.5)
    assert s.peak_rss_bytes == 2 * 2**30
    assert s.wall_seconds_reported == [3723.5]


def test_unfinished_log_and_json(tmp_path: Path) -> None:
    log = tmp_path / "poster.log"
    log.write_text("\n".join(LOG.splitlines()[:5]) + "\n")
    out = tmp_path / "perf" / "poster.json"
    r = subprocess.run([sys.executable, str(SCRIPT), str(log), "--json", str(out)],
                       capture_output=True, text=True, check=True)
    assert "unfinished: 5 of 7 steps; 1 process(es); optimisation 13 s" in r.stdout
    assert "peak RSS not reported" in r.stdout
    data = json.loads(out.read_text())
    assert data["finished"] is False and data["peak_rss_bytes"] is None
    assert [sc["seconds_per_step"] for sc in data["scales"]] == [1.0, 4.0]


def test_a_log_without_step_lines_is_one_line_and_exit_2(tmp_path: Path) -> None:
    log = tmp_path / "empty.log"
    log.write_text("Traceback? no: nothing here\n")
    r = subprocess.run([sys.executable, str(SCRIPT), str(log)], capture_output=True, text=True)
    assert r.returncode == 2
    want = f"poster_log: {log}: no step lines: was the run started with --print-every 1?"
    assert r.stdout.strip().splitlines() == [want]
