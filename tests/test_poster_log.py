"""scripts/poster_log.py reads a resumed run's log: steps redone after a kill count once, a scale's seconds
per step skip its first step, and /usr/bin/time's peak RSS is read where a process ended normally."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from impasto_test_support import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "poster_log.py"


def _script() -> ModuleType:
    return load_script("poster_log")


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
    assert (s.steps_logged, s.steps_total, s.finished) == (7, 7, True)
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
    assert "unfinished: 5 of 7 steps; optimisation 13 s (0.00 h; the engine's clock 13 s less 0 s paused)" in r.stdout
    assert "peak RSS not reported" in r.stdout
    data = json.loads(out.read_text())
    assert data["finished"] is False and data["peak_rss_bytes"] is None
    assert [sc["seconds_per_step"] for sc in data["scales"]] == [1.0, 4.0]


def test_pauses_are_taken_off_and_a_bad_pauses_file_is_refused(tmp_path: Path) -> None:
    mod = _script()
    assert mod.paused_seconds("100 pause CI\n160 resume\n\n200 pause tests\n230.5 resume\n") == 90.5
    log, pauses = tmp_path / "poster.log", tmp_path / "pauses.log"
    log.write_text(LOG + "\n")
    pauses.write_text("1000 pause CI\n1010 resume\n")
    out = tmp_path / "p.json"
    r = subprocess.run([sys.executable, str(SCRIPT), str(log), "--pauses", str(pauses), "--json", str(out)],
                       capture_output=True, text=True, check=True)
    said = "finished; optimisation 13 s (0.00 h; the engine's clock 23 s less 10 s paused); peak RSS 2.00 GiB"
    assert said in r.stdout
    assert json.loads(out.read_text())["optimisation_seconds_less_pauses"] == 13.0
    for bad in ("1000 pause\n", "1000 resume\n", "1000 pause\n1001 pause\n1002 resume\n", "1000 stop\n"):
        pauses.write_text(bad)
        r = subprocess.run([sys.executable, str(SCRIPT), str(log), "--pauses", str(pauses)],
                           capture_output=True, text=True)
        assert r.returncode == 2 and len(r.stdout.strip().splitlines()) == 1, (bad, r.stdout)


def test_a_log_without_step_lines_is_one_line_and_exit_2(tmp_path: Path) -> None:
    log = tmp_path / "empty.log"
    log.write_text("Traceback? no: nothing here\n")
    r = subprocess.run([sys.executable, str(SCRIPT), str(log)], capture_output=True, text=True)
    assert r.returncode == 2
    want = f"poster_log: {log}: no step lines: was the run started with --print-every 1?"
    assert r.stdout.strip().splitlines() == [want]


# scripts/poster_memwatch.sh's lines (kB): samples, and at each new scale the peak so far (then reset).
MEMWATCH = "\n".join([
    "100 pid=7 step   1/7 20x10 VmHWM:=1048576 VmRSS:=900000 ",
    "100 pid=7 SCALE_END prev= next=20x10 VmHWM:=1048576 VmRSS:=900000 ",
    "105 pid=7 step   3/7 20x10 VmHWM:=2097152 VmRSS:=900000 ",
    "110 pid=7 step   4/7 40x20 tiles=2 VmHWM:=3145728 VmRSS:=3000000 ",
    "110 pid=7 SCALE_END prev=20x10 next=40x20 tiles=2 VmHWM:=3145728 VmRSS:=3000000 ",
    "115 pid=8 step   6/7 40x20 tiles=4 VmHWM:=2621440 VmRSS:=2600000 ",
    "120 pid=8",  # between processes: no step line yet
])


def test_memwatch_peaks_per_scale(tmp_path: Path) -> None:
    # The 20x10 scale's peak (3 GiB) is its SCALE_END line's: its end, the next scale's set-up and first
    # step. The 40x20 scale's is the largest of its own samples after that (2.5 GiB): the sample that
    # first shows it was read before the reset, so it holds the scale before's peak.
    assert _script().scale_peaks(MEMWATCH) == {(20, 10): 3 * 2**30, (40, 20): int(2.5 * 2**30)}
    log, watch = tmp_path / "poster.log", tmp_path / "mem.log"
    log.write_text(LOG + "\n")
    watch.write_text(MEMWATCH + "\n")
    r = subprocess.run([sys.executable, str(SCRIPT), str(log), "--memwatch", str(watch)],
                       capture_output=True, text=True, check=True)
    assert "| 20 × 10 | 3 | none | 1.0 | 3.00 GiB |" in r.stdout
    assert "| 40 × 20 | 4 | 2 to 4 | 4.5 | 2.50 GiB |" in r.stdout
    assert r.stdout.rstrip().endswith("peak RSS 3.00 GiB")  # not /usr/bin/time's 2 GiB, which the resets cut
