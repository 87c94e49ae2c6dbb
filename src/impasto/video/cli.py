"""``impasto video IN STYLE... -o OUT``: stylise a clip with temporal consistency (Ruder et al. 2016).

IN is a video file (.mp4 .mov .webm .mkv .avi .m4v .gif) or a folder / glob / printf pattern of
frames; OUT is a video file (same frame rate, the input's audio copied) or a folder of numbered PNGs.
Every style flag of ``impasto CONTENT STYLE`` applies (presets, weights, colour preservation, several
styles). Finished frames are written one by one (into OUT itself for a folder, into ``OUT.frames/`` for
a video, removed once the video is written unless ``--keep-frames``), so re-running the same command
after an interruption resumes at the first missing frame, and the in-progress frame from its checkpoint.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from impasto import __version__
from impasto.errors import ImpastoError
from impasto.jobs.argtypes import Parser, float_in, int_at_least
from impasto.jobs.flags import add_base_flags, checkpoint_every, config_from_args

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _frames_list(s: str) -> tuple[int, ...]:
    parse = int_at_least(1)
    items = tuple(parse(x.strip()) for x in s.split(",") if x.strip())
    if not items:
        raise argparse.ArgumentTypeError("expected frame offsets such as 1 or 1,2,4")
    return items


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="impasto video",
        description="Stylise a video (or a folder of frames) with temporal consistency: each frame starts "
        "from the previous result warped by optical flow and is kept close to it where the flow "
        "is reliable (Ruder, Dosovitskiy and Brox 2016).",
        epilog="IN: a video file or a folder/pattern of frames (frames/, 'frames/*.png', frames/f_%%04d.png). "
        "OUT: a video file (.mp4 .webm .mov .mkv .gif) or a folder for PNG frames. Re-run the same "
        "command to resume an interrupted run.",
    )
    # Positionals and -o are checked in run() after --show-config, as for a still image.
    p.add_argument("content", nargs="?", metavar="IN", help="input video file or frames folder/pattern")
    p.add_argument("styles", nargs="*", metavar="STYLE", help="style image(s) or folder(s) of style images")
    p.add_argument("-o", "--output", help="output video (.mp4 .webm .mov .mkv .gif) or folder of frames")
    p.add_argument("--version", action="version", version=f"impasto {__version__}")
    add_base_flags(p)
    g = p.add_argument_group("video")
    g.add_argument("--temporal-weight", type=float_in(0.0), default=1e3,
                   help="weight of the temporal loss, in the paper's units: mean squared 0-255 pixel difference "
                        "to the warped previous result over reliable pixels, next to content 5 / style 100 "
                        "(default: 1000, the paper's; 0 turns it off)")
    g.add_argument("--temporal-frames", type=_frames_list, default=(1,),
                   help="previous frames the temporal loss compares with, e.g. 1,2,4 for the paper's "
                        "long-term consistency (default: 1)")
    g.add_argument("--frame-steps", type=int_at_least(1), default=None,
                   help="steps for each frame after the first, at the output size (default: 25, or --steps if "
                        "fewer; more steps let frames drift from their warm start: see README, Video)")
    g.add_argument("--no-warm-start", dest="warm_start", action="store_false",
                   help="start every frame from the content frame instead of the warped previous result")
    g.add_argument("--independent", action="store_true",
                   help="stylise every frame on its own (no warm start, no temporal loss): the flickering baseline")
    g.add_argument("--flow", choices=("dis", "farneback"), default="dis", help="optical flow method (default: dis)")
    g.add_argument("--fps", type=float_in(0.0, lo_open=True), default=None,
                   help="frame rate of a frames input (default 25), or to override a video's")
    g.add_argument("--max-frames", type=int_at_least(1), default=None, help="stylise only the first N frames")
    g.add_argument("--keep-frames", action="store_true", help="video output: keep the OUT.frames/ folder")
    g.add_argument("--restart", action="store_true",
                   help="discard frames left by an earlier run with other settings instead of refusing")
    g.add_argument("--checkpoint-every", type=checkpoint_every, default=None, metavar="N|auto",
                   help="checkpoint the frame in progress every N steps (auto: once a minute; 0: never); "
                   "re-running the same command continues it (default: auto)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return p


def _output_kind(out: str, inputs: Sequence[str]) -> tuple[Path, str]:
    from impasto.video.io import VIDEO_SUFFIXES

    p = Path(out).expanduser()
    for inp in inputs:
        if os.path.exists(inp) and os.path.exists(p) and os.path.samefile(p, inp):
            raise ImpastoError(f"output {p} is the same as input {inp}; refusing to overwrite an input")
    if p.suffix.lower() in VIDEO_SUFFIXES:
        if p.is_dir():
            raise ImpastoError(f"output {p} is a folder; give a video file name such as {p / 'out.mp4'}")
        kind = "video"
    elif p.suffix == "" or p.is_dir():
        if p.exists() and not p.is_dir():
            raise ImpastoError(f"output {p} exists and is not a folder")
        kind = "frames"
    else:
        raise ImpastoError(f"output {p} must be a video ({', '.join(VIDEO_SUFFIXES)}) or a folder for frames")
    resolved = Path(os.path.realpath(p))
    if not resolved.parent.is_dir():
        raise ImpastoError(f"output folder {resolved.parent} does not exist; create it first")
    if not os.access(resolved.parent, os.W_OK | os.X_OK):
        raise ImpastoError(f"output folder {resolved.parent} is not writable")
    return resolved, kind


def run(argv: Sequence[str]) -> int:
    from impasto.jobs import CheckpointPolicy, JobControl, fmt_time
    from impasto.jobs.resolve import expand_styles, for_preset_run, resolve_region_styles
    from impasto.jobs.signals import StopSignals

    parser = build_parser()
    args = parser.parse_args(list(argv))
    cfg = config_from_args(args)
    if args.show_config:
        print(cfg.to_json())
        return 0
    if not args.content or not args.styles or not args.output:
        parser.error("the following arguments are required: IN, STYLE, -o/--output")
    cfg = for_preset_run(cfg, args.preset_name, allow_vgg19=args.allow_vgg19)
    cfg, styles = resolve_region_styles(cfg, expand_styles(args.styles))
    out, kind = _output_kind(args.output, [args.content, *styles])

    from impasto.io import file_sha256, load_image
    from impasto.video.io import FrameStore, encoded_size, input_files, read_clip, write_video
    from impasto.video.stylize import VideoOptions, VideoStylizer

    options = VideoOptions(
        temporal_weight=0.0 if args.independent else args.temporal_weight,
        temporal_frames=args.temporal_frames,
        warm_start=args.warm_start and not args.independent,
        frame_steps=args.frame_steps,
        flow=args.flow,
        checkpoint=CheckpointPolicy.from_every(args.checkpoint_every),
    )
    options.validate()
    style_imgs = [load_image(s) for s in styles]
    clip = read_clip(args.content, cfg.size, fps=args.fps, max_frames=args.max_frames)
    folder = out if kind == "frames" else out.with_name(out.name + ".frames")
    store = FrameStore(folder, len(clip.frames))
    # Whatever form the input takes (a folder, a glob, a %05d pattern, a video), no file this run may
    # write or delete (--restart) is one of its inputs: compared as files, not as spellings of paths.
    store.refuse_inputs([*input_files(args.content), *styles], also=[out] if kind == "video" else [])
    if kind == "video":
        h, w = (int(x) for x in clip.frames[0].shape[1:])
        eh, ew = encoded_size(h, w, out.suffix)
        if (eh, ew) != (h, w):  # said even with -q: the output is not the size of its frames
            codec = "VP9" if out.suffix.lower() == ".webm" else "H.264"
            print(f"impasto video: note: {w}x{h} frames are cropped to {ew}x{eh} in {out.name} (the {codec} encoder "
                  "needs even sides); --keep-frames keeps the uncropped frames", file=sys.stderr)
    # The folder's lock is held until the video is written (or the run stops), released however it ends.
    with store:
        manifest = {"input": clip.identity, "styles": [file_sha256(s) for s in styles], "fps": clip.fps}
        control = JobControl()
        job = VideoStylizer(clip, style_imgs, cfg, store, options, manifest=manifest, restart=args.restart,
                            control=control)

        n = len(clip.frames)
        h, w = (int(x) for x in clip.frames[0].shape[1:])
        err = sys.stderr
        tty = err.isatty() and not args.quiet
        if not args.quiet:
            print(f"{args.content}: {n} frames, {w}x{h}, {clip.fps:g} fps{', with audio' if clip.has_audio else ''}; "
                  f"{options.mode} (temporal weight {options.temporal_weight:g}, frames "
                  f"{','.join(map(str, options.temporal_frames))})", file=err)
        t0 = time.perf_counter()
        # Ctrl-C, SIGTERM and SIGHUP only ask the job to stop; the frame's job stops at the next step, where
        # the engine's state is whole, checkpoints the frame in progress, and the run exits 130.
        with StopSignals(control) as stop:
            for ev in job.run():
                if ev.kind == "stopped":
                    if tty:
                        err.write("\n")
                    print(f"impasto: {stop.name or 'stop'}: stopped; finished frames are in {folder}"
                          f"{' and the frame in progress is checkpointed' if ev.path else ''}: run the same "
                          "command to resume", file=err)
                    return EXIT_INTERRUPTED
                if args.quiet:
                    continue
                if ev.kind == "start" and ev.frame > 0:
                    print(f"resuming: frames 1-{ev.frame} are already in {folder}", file=err)
                elif ev.kind == "step" and tty and ev.progress is not None:
                    p = ev.progress
                    err.write(f"\rframe {ev.frame + 1}/{n} step {p.step}/{p.total_steps} loss {p.loss:.4g} "
                              f"ETA {fmt_time(ev.eta)}   ")
                    err.flush()
                elif ev.kind == "frame":
                    terms = ev.terms or {}
                    temporal = terms.get("extra/temporal")
                    extra = f" temporal {temporal:.4g}" if temporal is not None else ""
                    resumed = f" (resumed at step {ev.resumed_step})" if ev.resumed_step else ""
                    print(f"{chr(13) if tty else ''}frame {ev.frame + 1}/{n} done in {ev.frame_seconds or 0:.1f}s, "
                          f"loss {ev.loss or 0:.5g}{extra}{resumed}; elapsed {fmt_time(ev.elapsed)}, "
                          f"ETA {fmt_time(ev.eta)}", file=err)
        if kind == "video":
            frames = [store.load(i) for i in range(n)]
            write_video(frames, out, clip.fps, audio_from=clip.source if clip.has_audio else None)
            if not args.keep_frames:
                store.remove()
            if not args.quiet:
                print(f"wrote {out} ({n} frames, {clip.fps:g} fps{', audio copied' if clip.has_audio else ''}, "
                      f"{time.perf_counter() - t0:.1f}s)", file=err)
        elif not args.quiet:
            store.clear_checkpoint()
            print(f"wrote {n} frames to {out} ({time.perf_counter() - t0:.1f}s)", file=err)
        return 0


def main(argv: Sequence[str]) -> int:
    """Entry point of ``impasto video`` (``impasto.cli`` turns ImpastoError into one line and exit 2)."""
    return run(argv)
