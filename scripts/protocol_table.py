"""The quality protocol's verdict (docs/quality_protocol.md, "What decides") for judged pairs, as a
markdown table: reference against candidate on every figure, and which requirement each pair misses.

    PYTHONPATH=src python scripts/protocol_table.py docs/perf/test_set_512.json --reference standin \
        --candidate default --wall docs/perf/cli_wall_time_512_test_set.json

The figures come from ``scripts/judge_pairs.py``'s JSON; the time from process start from
``scripts/cli_wall_time.py``'s JSON (``--wall``; without it, time is not judged). The margins are the
protocol's, fixed before tuning. The look at the strips is the protocol's last requirement and no
figure: it is written beside the table by whoever looked.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TIME_LIMIT_S = 120.0


@dataclass(frozen=True)
class Verdict:
    """One pair: the requirements missed (empty when the pair passes on every figure)."""

    photo: str
    painting: str
    missed: tuple[str, ...]
    seconds: float | None


def misses(ref: dict[str, Any], cand: dict[str, Any], seconds: float | None) -> tuple[str, ...]:
    """The protocol's requirements, in its order, that ``cand`` misses against ``ref``."""
    out = []
    for key in ("texture", "cnn", "color"):  # 0 = the painting, 1 = the photo: lower is more stylised
        if cand[key] > ref[key] + 0.05:
            out.append(key)
    if cand["vgg_content"] > 1.05 * ref["vgg_content"]:
        out.append("content")
    if cand["structure"] < ref["structure"] - 0.05:
        out.append("structure")
    if cand["copied"] > max(ref["copied"], 0.005):
        out.append("copied")
    if seconds is not None and seconds > TIME_LIMIT_S:
        out.append("time")
    return tuple(out)


def _wall_seconds(doc: dict[str, Any]) -> dict[tuple[str, str], float]:
    return {(Path(r["content"]).stem, Path(r["style"]).stem): float(r["seconds"])
            for r in doc["runs"] if r.get("quality", "standard") == "standard"}


def table(judged: dict[str, Any], reference: str, candidate: str,
          wall: dict[tuple[str, str], float] | None) -> tuple[str, list[Verdict]]:
    rows: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in judged["rows"]:
        rows.setdefault((row["photo"], row["painting"]), {})[row["label"]] = row
    head = ("| pair | run | texture | cnn | colour | structure | VGG style | VGG deep | VGG content | copied "
            "| s from process start | misses |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    lines, verdicts = [head], []
    for (photo, painting), by_label in rows.items():
        if reference not in by_label or candidate not in by_label:
            continue
        ref, cand = by_label[reference], by_label[candidate]
        seconds = None if wall is None else wall.get((photo, painting))
        verdict = Verdict(photo, painting, misses(ref, cand, seconds), seconds)
        verdicts.append(verdict)
        for label, r, secs, missed in ((reference, ref, "", ""),
                                       (candidate, cand, "" if seconds is None else f"{seconds:.1f}",
                                        ", ".join(verdict.missed) or "none")):
            pair = f"{photo} × {painting}" if label == reference else ""
            lines.append(f"| {pair} | {label} | {r['texture']:.3f} "
                         f"| {r['cnn']:.3f} | {r['color']:.3f} | {r['structure']:.3f} | {r['vgg_style']:.3f} "
                         f"| {r['vgg_deep']:.3f} | {r['vgg_content']:.3f} | {r['copied']:.3f} | {secs} | {missed} |")
    return "\n".join(lines), verdicts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("judged", type=Path, help="JSON written by scripts/judge_pairs.py")
    ap.add_argument("--reference", required=True, help="the reference's label (e.g. standin)")
    ap.add_argument("--candidate", required=True, help="the candidate's label (e.g. default)")
    ap.add_argument("--wall", type=Path, help="JSON written by scripts/cli_wall_time.py")
    args = ap.parse_args(argv)
    wall = _wall_seconds(json.loads(args.wall.read_text())) if args.wall else None
    text, verdicts = table(json.loads(args.judged.read_text()), args.reference, args.candidate, wall)
    if not verdicts:
        raise SystemExit(f"protocol_table: no pair in {args.judged} has both {args.reference} and {args.candidate}")
    print(text)
    passed = [v for v in verdicts if not v.missed]
    print(f"\n{len(passed)} of {len(verdicts)} pairs pass every figure"
          + ("" if wall is not None else " (time not judged: no --wall)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
