"""Temporal consistency of ``impasto video``, measured on a real clip with reference optical flow.

Run from the repository root on an idle machine (it uses the real VGG19 and takes minutes on a CPU)::

    PYTHONPATH=src .venv/bin/python scripts/video_report.py --out docs/perf/video_cpu_256.json

The clip is ``../shared/video/marple8`` (five frames, 450x350, with DeepFlow flow and reliability masks
from Ruder et al.'s artistic-videos; measuring only, never shipped). It is stylised three ways at
``--size`` px: (a) every frame independently (the full configuration each), (b) warm start only
(frame t starts from stylised frame t-1 warped by impasto's own DIS flow; ``--frame-steps`` steps),
(c) warm start + the temporal loss (``--temporal-weight``). ``--sweep`` adds (c) rows for other weights.

Temporal error: stylised frame t-1 warped to frame t with the *reference* backward flow (resized to the
working size, vectors scaled), mean squared difference to stylised frame t over the reference's reliable
pixels (mask > 0.5), in 0-255 units, averaged over the four frame pairs. The same number for the content
frames themselves is the floor that the flow's own error sets.

Style distance: the project's judge (``impasto.bench.quality``): relative Gram distance ||G(x) − G(s)||_F /
||G(s)||_F at VGG19 conv1_2, conv2_2, conv3_3 and conv4_3 (post-ReLU: impasto's relu1_2 ... relu4_3,
layers the objective does not use), averaged over layers and frames; s is the painting at the result's
size. Its content and colour distances are recorded too. Frame 1 is the same in all
three runs, so it is computed once.
Seconds per frame are wall times of frames 2-5 (frame 1 separately) and depend on the machine's load:
the JSON records ``os.getloadavg()``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from impasto.config import Config
from impasto.io import load_image, read_metadata, resize_to, scaled_size
from impasto.jobs import CheckpointPolicy
from impasto.vgg import load_weights
from impasto.video.flow import read_flo, resize_flow, warp
from impasto.video.io import Clip, FrameStore, _to_u8
from impasto.video.stylize import VideoOptions, VideoStylizer

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the checkout (a git worktree may sit one level deeper).
SHARED = next((p / "shared" for p in ROOT.parents if (p / "shared" / "video").is_dir()), ROOT.parent / "shared")
CLIP = SHARED / "video" / "marple8"
STYLE = SHARED / "images" / "starry_night.jpg"


def load_clip(size: int) -> tuple[Clip, list[torch.Tensor], list[torch.Tensor]]:
    frames = [load_image(CLIP / f"marple8_{i:02d}.ppm").rgb for i in range(1, 6)]
    h, w = scaled_size(int(frames[0].shape[1]), int(frames[0].shape[2]), size)
    u8 = [_to_u8(resize_to(f, (h, w))) for f in frames]
    flows, masks = [], []
    for t in range(2, 6):
        flows.append(resize_flow(read_flo(str(CLIP / "deepflow" / f"backward_{t}_{t - 1}.flo")), (h, w)))
        m = load_image(CLIP / "deepflow" / f"reliable_{t}_{t - 1}.pgm").rgb[:1]
        masks.append(resize_to(m, (h, w))[0] > 0.5)
    clip = Clip(frames=u8, fps=25.0, has_audio=False, source=CLIP, kind="frames", identity=f"marple8@{size}")
    return clip, flows, masks


def temporal_error(frames: list[torch.Tensor], flows: list[torch.Tensor], masks: list[torch.Tensor]) -> float:
    """Mean over pairs of the masked MSE (0-255 units) between frame t and frame t-1 warped to t."""
    errs = []
    for t in range(1, len(frames)):
        d = (warp(frames[t - 1], flows[t - 1]) - frames[t]) * 255.0
        m = masks[t - 1]
        errs.append(float(d.pow(2).mean(0)[m].mean()))
    return sum(errs) / len(errs)


class Judge:
    """The project's independent judge (:mod:`impasto.bench.quality`), one per content frame: the style
    score is the relative Gram distance at relu1_2, relu2_2, relu3_3, relu4_3, layers the objective does
    not read; content and colour distances come along."""

    def __init__(self, content: list[torch.Tensor], style: torch.Tensor) -> None:
        from impasto.bench.quality import QualityJudge

        weights = load_weights(None)
        self.judges = [QualityJudge(c, style, weights=weights) for c in content]

    def __call__(self, frames: list[torch.Tensor]) -> dict[str, float]:
        scores = [j(f) for j, f in zip(self.judges, frames, strict=True)]
        return {k: round(sum(getattr(sc, k) for sc in scores) / len(scores), 4)
                for k in ("style", "deep", "content", "color")}


def run_method(clip: Clip, style: torch.Tensor, cfg: Config, opts: VideoOptions, work: Path,
               first_frame: Path | None) -> tuple[list[torch.Tensor], list[float], Path]:
    """Stylise the clip; reuse a finished frame 1 (identical in every method) when given."""
    store = FrameStore(work, len(clip.frames))
    job = VideoStylizer(clip, [style], cfg, store, opts, weights=load_weights(None))
    work.mkdir(parents=True, exist_ok=True)
    if first_frame is not None and first_frame.is_file() and not store.path(0).exists():
        work.mkdir(parents=True, exist_ok=True)
        (work / FrameStore.MANIFEST).write_text(json.dumps(job.manifest, sort_keys=True), encoding="utf-8")
        shutil.copy(first_frame, store.path(0))
    for ev in job.run():
        if ev.kind == "start" and ev.frame:
            print(f"  frames 1-{ev.frame} already in {work}", flush=True)
        if ev.kind == "frame":
            print(f"  frame {ev.frame + 1}/{ev.n_frames}: {ev.frame_seconds:.1f}s loss {ev.loss:.5g}", flush=True)
    # Seconds from each frame's metadata, so frames made by an earlier (interrupted) run count too.
    secs = [float((read_metadata(store.path(i)) or {}).get("seconds", 0.0)) for i in range(len(clip.frames))]
    return [store.load(i) for i in range(len(clip.frames))], secs, store.path(0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=200, help="steps of frame 1 and of every independent frame")
    p.add_argument("--frame-steps", type=int, default=100, help="steps of later frames with the warm start")
    p.add_argument("--temporal-weight", type=float, default=1e3)
    p.add_argument("--sweep", default="", help="extra temporal weights for (c), comma-separated")
    p.add_argument("--style", default=str(STYLE))
    p.add_argument("--out", default="docs/perf/video_cpu_256.json")
    p.add_argument("--work", default="out/video_report",
                   help="folder for the stylised frames: a re-run resumes there (delete it to start afresh)")
    p.add_argument("--checkpoint-every", type=int, default=20, help="checkpoint the frame in progress every N steps")
    p.add_argument("--only", default="", help="run only these methods (0-based indices, e.g. 0,1)")
    args = p.parse_args(argv)
    if not CLIP.is_dir():
        print(f"{CLIP} is missing", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, torch.get_num_threads()))
    clip, flows, masks = load_clip(args.size)
    style = load_image(args.style).rgb
    cfg = Config(size=args.size, start_size=None, steps=args.steps, device="cpu" if not torch.cuda.is_available()
                 else "cuda")
    content = [clip.frame(i) for i in range(len(clip.frames))]
    judge = Judge(content, style)
    ck = CheckpointPolicy.from_every(args.checkpoint_every)
    methods: list[tuple[str, VideoOptions]] = [
        ("independent", VideoOptions(warm_start=False, temporal_weight=0.0, checkpoint=ck)),
        ("warm start", VideoOptions(warm_start=True, temporal_weight=0.0, frame_steps=args.frame_steps,
                                    checkpoint=ck)),
        ("warm start + temporal loss", VideoOptions(temporal_weight=args.temporal_weight,
                                                    frame_steps=args.frame_steps, checkpoint=ck)),
    ]
    for wt in (float(x) for x in args.sweep.split(",") if x.strip()):
        methods.append((f"warm start + temporal loss (weight {wt:g})",
                        VideoOptions(temporal_weight=wt, frame_steps=args.frame_steps, checkpoint=ck)))
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    only = {int(x) for x in args.only.split(",") if x.strip()}
    work = Path(args.work) / f"{args.size}px_{args.steps}_{args.frame_steps}"
    first: Path | None = work / "m0" / "frame_00001.png"  # frame 1 is the same in every method
    for i, (name, opts) in enumerate(methods):
        if only and i not in only:
            continue
        print(f"{name}:", flush=True)
        t0 = time.perf_counter()
        frames, secs, _ = run_method(clip, style, cfg, opts, work / f"m{i}", first)
        rows.append({
            "method": name,
            "temporal_weight": opts.temporal_weight,
            "warm_start": opts.warm_start,
            "steps_first_frame": args.steps,
            "steps_later_frames": args.steps if not opts.warm_start else args.frame_steps,
            "temporal_error": round(temporal_error(frames, flows, masks), 3),
            **{f"judge_{k}": v for k, v in judge(frames).items()},
            "seconds_first_frame": round(secs[0], 2),
            "seconds_per_later_frame": round(sum(secs[1:]) / len(secs[1:]), 2),
            "wall_seconds_this_run": round(time.perf_counter() - t0, 1),
        })
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]
    for r in rows:
        r["temporal_error_vs_independent"] = round(r["temporal_error"] / base["temporal_error"], 4)
        r["style_distance_vs_independent"] = round(r["judge_style"] / base["judge_style"], 4)
    report = {
        "what": "temporal error (masked MSE, 0-255 units, reference DeepFlow flow) and style distance on marple8",
        "command": "PYTHONPATH=src .venv/bin/python scripts/video_report.py " + " ".join(sys.argv[1:]),
        "size": [int(clip.frames[0].shape[1]), int(clip.frames[0].shape[2])],
        "style": Path(args.style).name,
        "content_frames_temporal_error": round(temporal_error(content, flows, masks), 3),
        "style_distance": "impasto.bench.quality judge, style score (relative Gram distance at relu1_2, relu2_2, "
                          "relu3_3, relu4_3), mean over the five frames; judge_deep/content/color likewise",
        "rows": rows,
        "device": ("cuda: " + torch.cuda.get_device_name()) if torch.cuda.is_available() else (
            f"cpu ({platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()})"),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
    }
    print()
    print(f"{'method':<44} {'temporal error':>15} {'vs (a)':>8} {'style dist':>11} {'vs (a)':>8} {'s/frame':>8}")
    for r in rows:
        print(f"{r['method']:<44} {r['temporal_error']:>15.2f} {r['temporal_error_vs_independent']:>8.3f} "
              f"{r['judge_style']:>11.4f} {r['style_distance_vs_independent']:>8.3f} "
              f"{r['seconds_per_later_frame'] or 0:>8.2f}")
    print(f"(content frames themselves: {report['content_frames_temporal_error']:.2f}; "
          f"load {report['loadavg_before']})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
