"""Per-scale figures of a long print-size run, from its ``--print-every 1`` log.

    PYTHONPATH=src python scripts/poster_log.py out/print/poster_6000.log --json docs/perf/poster_6000_cpu.json

A poster takes hours here and is resumed across sessions (``impasto resume``), so its log holds several
processes. Each step line gives ``t=``, the engine's optimisation seconds, which a resumed run continues
from its checkpoint: the last ``t`` is the run's optimisation time whatever the interruptions (steps redone
after a kill are not counted twice). The engine's clock is wall time, so a run paused
(``kill -STOP``, to keep another job off the shared cores) counts the pause: ``--pauses FILE`` lists them,
a line ``EPOCH pause [why]`` then ``EPOCH resume``, and their sum is reported and taken off. Seconds per
step are the median of a scale's ``t`` differences, so a step that spans a pause or a resume does not
move them. Where the processes ran under ``/usr/bin/time -v``,
its peak RSS and wall clock are read too (a killed process writes none). ``--memwatch FILE`` reads a
``scripts/poster_memwatch.sh`` log for each scale's peak RSS (whose resets make /usr/bin/time's peak
that of the last scale only).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from dataclasses import asdict, dataclass, replace
from pathlib import Path

STEP = re.compile(r"^step\s+(\d+)/(\d+) (\d+)x(\d+)(?: tiles=(\d+))? t=([\d.]+)s")
RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
WATCH = re.compile(r"^\d+ pid=\d+ (?:step +\d+/\d+ (\d+)x(\d+)|SCALE_END prev=(\d+)x(\d+) \S+)"
                   r".*?VmHWM:=(\d+)")
WALL = re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)")


@dataclass(frozen=True)
class Scale:
    width: int
    height: int
    steps: int
    tiles_min: int
    tiles_max: int
    seconds_per_step: float | None  # None for a scale with one step logged
    peak_rss_bytes: int | None = None  # from a --memwatch log: this scale's steps and the next one's set-up


@dataclass(frozen=True)
class Summary:
    steps_logged: int
    steps_total: int
    finished: bool
    optimisation_seconds: float
    scales: list[Scale]
    peak_rss_bytes: int | None  # the largest of the processes that reported one
    wall_seconds_reported: list[float]  # /usr/bin/time's wall clock of each process that ended normally


def summarise(text: str) -> Summary:
    steps: dict[int, tuple[int, int, int, float]] = {}  # step -> (w, h, tiles, t); a redone step's last line wins
    total = 0
    rss: list[int] = []
    walls: list[float] = []
    for line in text.splitlines():
        if m := STEP.match(line):
            n = int(m[1])
            total = int(m[2])
            steps[n] = (int(m[3]), int(m[4]), int(m[5] or 0), float(m[6]))
        elif m := RSS.search(line):
            rss.append(int(m[1]) * 1024)
        elif m := WALL.search(line):
            walls.append(int(m[1] or 0) * 3600 + int(m[2]) * 60 + float(m[3]))
    if not steps:
        raise ValueError("no step lines: was the run started with --print-every 1?")
    order = sorted(steps)
    scales: list[Scale] = []
    group: list[int] = []
    for n in order + [-1]:
        if group and (n == -1 or steps[n][:2] != steps[group[0]][:2]):
            w, h = steps[group[0]][:2]
            tiles = [steps[k][2] for k in group]
            # a step's seconds are its t less the previous step's; only steps whose predecessor was logged
            deltas = [steps[k][3] - steps[k - 1][3] for k in group if k - 1 in steps]
            if group[0] - 1 in steps and steps[group[0] - 1][:2] != (w, h):
                deltas = deltas[1:]  # the scale's first step also resizes and builds targets
            scales.append(Scale(w, h, len(group), min(tiles), max(tiles),
                                round(statistics.median(deltas), 1) if deltas else None))
            group = []
        if n != -1:
            group.append(n)
    return Summary(steps_logged=len(order), steps_total=total, finished=order[-1] == total and len(order) == total,
                   optimisation_seconds=steps[order[-1]][3], scales=scales,
                   peak_rss_bytes=max(rss) if rss else None, wall_seconds_reported=walls)


def scale_peaks(text: str) -> dict[tuple[int, int], int]:
    """Peak RSS in bytes per scale (width, height) from a ``scripts/poster_memwatch.sh`` log: the largest
    VmHWM of the lines sampled during the scale and of its SCALE_END line (the peak is reset at each new
    scale, so a scale's figure also covers the next scale's set-up and first step)."""
    peaks: dict[tuple[int, int], int] = {}
    seen: tuple[int, int] | None = None
    for line in text.splitlines():
        if m := WATCH.match(line):
            if m[1] is not None:
                key = (int(m[1]), int(m[2]))
                first, seen = key != seen, key
                if first:  # sampled before the reset: the peak so far is the scale before's (its SCALE_END)
                    continue
            else:
                key = (int(m[3]), int(m[4]))
            peaks[key] = max(peaks.get(key, 0), int(m[5]) * 1024)
    return peaks


def paused_seconds(text: str) -> float:
    """The total of a pauses file's ``EPOCH pause`` .. ``EPOCH resume`` spans."""
    total, since = 0.0, None
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2 or parts[1] not in ("pause", "resume"):
            raise ValueError(f"line {n}: expected 'EPOCH pause|resume ...'")
        at = float(parts[0])
        if parts[1] == "pause":
            if since is not None:
                raise ValueError(f"line {n}: a pause inside a pause")
            since = at
        else:
            if since is None or at < since:
                raise ValueError(f"line {n}: a resume without its pause")
            total, since = total + at - since, None
    if since is not None:
        raise ValueError("the last pause has no resume")
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("log", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--pauses", type=Path, help="lines 'EPOCH pause [why]' and 'EPOCH resume'")
    ap.add_argument("--memwatch", type=Path, help="a scripts/poster_memwatch.sh log: peak RSS per scale")
    a = ap.parse_args(argv)
    try:
        s = summarise(a.log.read_text(errors="replace"))
    except (OSError, ValueError) as e:
        print(f"poster_log: {a.log}: {e}")
        return 2
    if a.memwatch is not None:
        try:
            peaks = scale_peaks(a.memwatch.read_text(errors="replace"))
        except OSError as e:
            print(f"poster_log: {a.memwatch}: {e}")
            return 2
        # The watcher's resets reach /usr/bin/time's figure too: the peak is the largest scale's.
        s = replace(s, scales=[replace(sc, peak_rss_bytes=peaks.get((sc.width, sc.height))) for sc in s.scales],
                    peak_rss_bytes=max(peaks.values(), default=None))
    try:
        paused = paused_seconds(a.pauses.read_text()) if a.pauses else 0.0
    except (OSError, ValueError) as e:
        print(f"poster_log: {a.pauses}: {e}")
        return 2
    print("| scale | steps | tiles per step | s/step (median) | peak RSS |\n|---|---:|---|---:|---:|")
    for sc in s.scales:
        tiles = "none" if sc.tiles_max == 0 else f"{sc.tiles_min} to {sc.tiles_max}"
        per = "" if sc.seconds_per_step is None else f"{sc.seconds_per_step:.1f}"
        peak = "" if sc.peak_rss_bytes is None else f"{sc.peak_rss_bytes / 2**30:.2f} GiB"
        print(f"| {sc.width} × {sc.height} | {sc.steps} | {tiles} | {per} | {peak} |")
    state = "finished" if s.finished else f"unfinished: {s.steps_logged} of {s.steps_total} steps"
    rss = "not reported" if s.peak_rss_bytes is None else f"{s.peak_rss_bytes / 2**30:.2f} GiB"
    net = s.optimisation_seconds - paused
    print(f"{state}; optimisation {net:.0f} s ({net / 3600:.2f} h; the engine's "
          f"clock {s.optimisation_seconds:.0f} s less {paused:.0f} s paused); peak RSS {rss}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"log": str(a.log), **asdict(s), "paused_seconds": paused,
                                        "optimisation_seconds_less_pauses": net}, indent=1) + "\n")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
