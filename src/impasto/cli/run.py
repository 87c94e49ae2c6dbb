"""Command-line front-end: ``impasto CONTENT STYLE [STYLE...] -o OUT [options]``, ``impasto resume``.

The configuration flags are generated from :class:`~impasto.config.Config` (:mod:`impasto.jobs.flags`)
and resolved by :func:`impasto.jobs.resolve`, as in batch and video. A run is a job of
:mod:`impasto.jobs`; this module owns only what a terminal needs: the progress bar, ``--print-every``
lines, numbered step images, the progress animation, and signals -- Ctrl-C, SIGTERM and SIGHUP stop
the run at the next step boundary, write ``OUT.interrupted.png`` and the checkpoint, and exit with one
line.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from impasto import __version__
from impasto.config import Config
from impasto.errors import ImpastoError, out_of_memory_message
from impasto.jobs.argtypes import Parser, int_at_least
from impasto.jobs.flags import add_base_flags, checkpoint_every, config_from_args

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="impasto",
        description="Repaint a content photo in the style of one or more paintings (Gatys et al.).",
        epilog="Subcommands: demo, resume CKPT, show-config IMAGE, presets, balance, explain, serve, submit, "
        "batch, video ('impasto SUBCOMMAND --help').",
    )
    # Positionals and -o are checked in run() after --show-config, so `--preset NAME --show-config` works
    # without images.
    p.add_argument("content", nargs="?", help="content image (the photo)")
    p.add_argument("styles", nargs="*", help="style image(s) or folder(s) of style images")
    p.add_argument("-o", "--output", help="output image: .png .jpg .webp .tif")
    p.add_argument("--version", action="version", version=f"impasto {__version__}")
    add_base_flags(p)
    g = p.add_argument_group("output, progress and checkpoints")
    g.add_argument("--save-every", type=int_at_least(0), default=None, metavar="N",
                   help="write every N-th step as a numbered image (default: 0, never; a preset may set it)")
    g.add_argument("--save-dir", metavar="DIR", help="folder for --save-every images (default: OUTPUT_steps/)")
    g.add_argument("--print-every", type=int_at_least(0), default=None, metavar="N",
                   help="print a line with every loss term every N steps (default: 0, never; a preset may set it)")
    g.add_argument("--progress-gif", metavar="FILE",
                   help="also write the optimisation as an animation (.gif, or .mp4 with imageio-ffmpeg)")
    g.add_argument("--checkpoint-every", type=checkpoint_every, default=None, metavar="N|auto",
                   help="write the run's state to OUTPUT.ckpt every N steps (auto: once a minute; 0: never); "
                   "removed when the run finishes; continue with 'impasto resume OUTPUT.ckpt' (default: auto)")
    g.add_argument("--restart", action="store_true",
                   help="discard an interrupted run's checkpoint (OUTPUT.ckpt) and start over")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g.add_argument("--show-cost", action="store_true",
                   help="print what the run would cost (each scale's modelled peak memory, whole and under "
                   "--max-memory, its tiles, and the time from a measured step rate) and exit without running")
    return p


class ProgressBar:
    """One status line on a terminal: bar, step, ETA and current losses."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled and stream.isatty()
        self.width = 24

    def update(self, step: int, total: int, elapsed: float, eta: float | None, loss: float, c: float, s: float,
               tv: float) -> None:
        if not self.enabled:
            return
        from impasto.jobs import fmt_time

        frac = step / total if total else 1.0
        filled = int(self.width * frac)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {step}/{total} "
            f"{fmt_time(elapsed)}<{fmt_time(eta)} loss {loss:.4g} (c {c:.3g} s {s:.3g} tv {tv:.3g})  "
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


@dataclass(frozen=True)
class FrontEnd:
    """The command line's own options of a run (recorded in the output's metadata and its checkpoint;
    a resume reads back only the numbers, never a path)."""

    save_every: int = 0
    save_dir: str | None = None
    print_every: int = 0
    progress_gif: str | None = None
    checkpoint_every: int | None = None
    quiet: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "quiet"}

    @staticmethod
    def numbers_from(stored: Any) -> dict[str, int | None]:
        """The numeric options of a checkpoint's record (anything else in it is ignored)."""
        out: dict[str, int | None] = {}
        if not isinstance(stored, dict):
            return out
        for k in ("save_every", "print_every", "checkpoint_every"):
            v = stored.get(k)
            if (type(v) is int and 0 <= v <= 10**9) or (v is None and k == "checkpoint_every"):
                out[k] = v
        return out


def run(argv: Sequence[str]) -> int:
    from impasto import presets
    from impasto.jobs import expand_styles, for_preset_run, resolve_region_styles

    parser = build_parser()
    args = parser.parse_args(list(argv))
    cfg = config_from_args(args)
    preset = presets.get_preset(args.preset_name) if args.preset_name is not None else None
    if args.show_config:
        _print_or_fail(cfg.to_json())
        return 0
    if not (args.content and args.styles and (args.output or args.show_cost)):
        parser.error("the following arguments are required: content, styles, -o/--output")
    cfg = for_preset_run(cfg, args.preset_name, allow_vgg19=args.allow_vgg19)
    if args.show_cost:
        if not args.content or not args.styles:
            parser.error("--show-cost needs the content and style images")
        from impasto.engine import StyleTransfer

        cfg, styles = resolve_region_styles(cfg, expand_styles(args.styles))
        _print_or_fail("\n".join(StyleTransfer(args.content, styles, cfg).cost(measure=True).lines()))
        return 0
    defaults = preset.cli_defaults if preset is not None else {}
    front = FrontEnd(
        save_every=args.save_every if args.save_every is not None else defaults.get("save_every", 0),
        save_dir=args.save_dir,
        print_every=args.print_every if args.print_every is not None else defaults.get("print_every", 0),
        progress_gif=args.progress_gif,
        checkpoint_every=args.checkpoint_every,
        quiet=args.quiet,
    )
    cfg, styles = resolve_region_styles(cfg, expand_styles(args.styles))
    return execute(cfg, args.content, styles, args.output, front, restart=args.restart)


def execute(cfg: Config, content_path: str, styles: list[str], output: str, front: FrontEnd,
            resume_from: str | None = None, *, restart: bool = False, force: bool = False) -> int:
    """Run (or continue, from checkpoint ``resume_from``) one stylisation to ``output``."""
    from impasto.io import check_output_path, save_image
    from impasto.io.atomic import check_derived_names, check_writable
    from impasto.jobs import CheckpointPolicy, JobRun, JobSpec, checkpoint_for, claim_output, interrupted_for
    from impasto.jobs.signals import StopSignals

    inputs = [content_path, *styles] + ([cfg.init_file] if cfg.init_file else []) + ([cfg.mask] if cfg.mask else [])
    check_derived_names(output, (".lock",))
    out = check_output_path(output, inputs)
    ckpt_path = check_writable(resume_from if resume_from is not None else checkpoint_for(out), inputs)
    partial = check_output_path(interrupted_for(out), inputs)
    check_writable(out.with_name(out.name + ".lock"), inputs)
    gif_path = None
    if front.progress_gif:
        from impasto.viz.animate import check_animation_path

        gif_path = check_animation_path(front.progress_gif, inputs)
    spec = JobSpec.create(content_path, styles, cfg, output=str(out), frontend=front.to_dict(),
                          checkpoint=CheckpointPolicy.from_every(front.checkpoint_every), key="cli")
    with claim_output(out, resuming=resume_from, restart=restart, force=force), StopSignals() as stop:
        job = JobRun(spec, control=stop.control, checkpoint=ckpt_path,
                     resume="required" if resume_from is not None else "never",
                     checkpoint_extra={"kind": "cli", "frontend": front.to_dict()},
                     image_every=_image_every(front, gif_path is not None, 0))
        if stop.received is not None:
            print(f"impasto: {stop.name} before the run started; nothing to save", file=sys.stderr)
            return EXIT_INTERRUPTED
        total = job.total_steps
        job.image_every = _image_every(front, gif_path is not None, total)
        save_dir: Path | None = None
        if front.save_every and front.save_every <= total:  # else no image would be saved
            save_dir = Path(front.save_dir) if front.save_dir else out.with_name(out.stem + "_steps")
            try:
                save_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ImpastoError(f"cannot create {save_dir}: {e.strerror}") from None
        bar = ProgressBar(sys.stderr, not front.quiet)
        digits = len(str(total))
        gif_every = max(1, total // 60) if gif_path else 0  # about 60 frames, whatever the step count
        gif_frames = [job.current_image()] if gif_path and resume_from is None else []
        t0 = time.perf_counter()
        result = None
        for ev in job:
            p = ev.progress
            if ev.kind == "step" and p is not None:
                bar.update(ev.step, total, p.elapsed, ev.eta, p.loss, p.content, p.style, p.tv)
                if gif_every and p.image is not None and ev.step % gif_every == 0:
                    gif_frames.append(p.image)
                if front.print_every and ev.step % front.print_every == 0:
                    bar.close()
                    terms = " ".join(f"{k}={v:.4g}" for k, v in p.terms.items())
                    tiles = f" tiles={p.tiles}" if p.tiles else ""
                    print(f"step {ev.step:>{digits}}/{total} {p.size[1]}x{p.size[0]}{tiles} "
                          f"t={p.elapsed:.1f}s loss={p.loss:.6g} content={p.content:.6g} "
                          f"style={p.style:.6g} tv={p.tv:.6g} | {terms}", flush=True)
                if save_dir is not None and p.image is not None and ev.step % front.save_every == 0:
                    save_image(p.image, save_dir / f"step_{ev.step:0{digits}d}.png",
                               metadata=_step_meta(spec, ev.step), inputs=inputs)
            elif ev.kind == "stopped":
                bar.close()
                save_image(job.current_image(), partial, inputs=inputs,
                           metadata={**_step_meta(spec, ev.step), "interrupted": True})
                print(f"impasto: {stop.name} at step {ev.step}/{total}: the current image is saved to {partial}; "
                      f"continue with: impasto resume {ckpt_path}", file=sys.stderr)
                return EXIT_INTERRUPTED
            elif ev.kind == "done":
                result = ev
        bar.close()
    assert result is not None and result.saved is not None and result.progress is not None
    if result.saved.rescued:
        print(f"impasto: error: {result.saved.message()}", file=sys.stderr)
        return EXIT_USAGE
    final = result.progress
    if gif_path is not None and result.image is not None:
        from impasto.viz.animate import write_animation

        write_animation([*gif_frames, result.image], gif_path)
        if not front.quiet:
            print(f"wrote {gif_path} ({len(gif_frames) + 1} frames)", file=sys.stderr)
    if not front.quiet:
        if final.stop_reason and final.stop_reason != "steps":
            print(f"stopped early ({final.stop_reason})", file=sys.stderr)
        if final.restarts:
            print(f"the loss diverged {final.restarts} time(s); each time the run went back to its best image "
                  "and restarted the optimiser (see --restart-factor)", file=sys.stderr)
        print(f"wrote {result.saved.path} ({final.size[1]}x{final.size[0]}, {final.step} steps, "
              f"{time.perf_counter() - t0:.1f}s, loss {final.loss:.5g})", file=sys.stderr)
    return 0


def _image_every(front: FrontEnd, gif: bool, total: int) -> int:
    """Steps between images attached to events: what --save-every and the animation need."""
    gif_every = max(1, total // 60) if gif else 0
    if front.save_every and gif_every:
        return math.gcd(front.save_every, gif_every)
    return front.save_every or gif_every


def _step_meta(spec: Any, step: int) -> dict[str, Any]:
    from impasto.jobs import result_metadata

    return result_metadata(spec, step=step)


def _print_or_fail(text: str) -> None:
    try:
        print(text)
        sys.stdout.flush()
    except OSError as e:
        raise ImpastoError(f"cannot write to standard output: {e.strerror}") from None


def resume_cmd(argv: Sequence[str]) -> int:
    """``impasto resume OUT.ckpt [-o OUT] [--force] [-q]``: continue an interrupted run where its
    checkpoint left it. The output is the checkpoint's own name without ``.ckpt`` (or ``-o``), never a
    path read from inside the file."""
    from impasto.checkpoint import load_checkpoint
    from impasto.jobs import output_for

    p = Parser(prog="impasto resume", description="Continue a run from its checkpoint (OUTPUT.ckpt).")
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", help="the output image (default: the checkpoint's name without .ckpt)")
    p.add_argument("--save-dir", metavar="DIR", help="folder for --save-every images (default: OUTPUT_steps/)")
    p.add_argument("--progress-gif", metavar="FILE", help="write the rest of the optimisation as an animation")
    p.add_argument("--force", action="store_true", help="replace an output written after the checkpoint")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(list(argv))
    ckpt = load_checkpoint(args.checkpoint)
    if ckpt.extra.get("kind") != "cli":
        raise ImpastoError(f"{args.checkpoint} is not the checkpoint of a single run (a studio, batch or video "
                           "job's checkpoint is resumed by that front-end: for a video, run the same command again)")
    output = args.output if args.output is not None else str(output_for(args.checkpoint))
    front = FrontEnd(**FrontEnd.numbers_from(ckpt.extra.get("frontend")), save_dir=args.save_dir,  # type: ignore[arg-type]
                     progress_gif=args.progress_gif, quiet=args.quiet)
    return execute(ckpt.config, ckpt.content, list(ckpt.styles), output, front, resume_from=args.checkpoint,
                   force=args.force)


def demo(argv: Sequence[str]) -> int:
    """``impasto demo [-o OUT] [flags]``: the bundled content photo in the bundled painting's style."""
    from impasto.io import default_content_path, default_style_path

    argv = list(argv)
    if not any(a in ("-o", "--output") or a.startswith("--output=") for a in argv):
        argv += ["-o", "impasto-demo.png"]
    return run([str(default_content_path()), str(default_style_path()), *argv])


def _frontend(module: str) -> Callable[[Sequence[str]], int]:
    """A front-end package's ``main(argv)``, imported only when its subcommand is used."""

    def command(argv: Sequence[str]) -> int:
        import importlib

        entry: Callable[[Sequence[str]], int] = importlib.import_module(module).main
        return entry(argv)

    return command


def _commands() -> dict[str, Callable[[Sequence[str]], int]]:
    from impasto.cli import commands

    return {
        "show-config": commands.show_config_cmd, "demo": demo, "resume": resume_cmd,
        "presets": commands.presets_cmd, "balance": commands.balance_cmd, "explain": commands.explain_cmd,
        "serve": _frontend("impasto.studio.cli"), "submit": _frontend("impasto.studio.client_cli"),
        "batch": _frontend("impasto.batch.cli"), "video": _frontend("impasto.video.cli"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        command = _commands().get(argv[0]) if argv else None
        if command is not None:
            return command(argv[1:])
        return run(argv)
    except ImpastoError as e:
        print(f"impasto: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("impasto: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (MemoryError, RuntimeError, OSError) as e:
        message = out_of_memory_message(e)
        if message is None:
            raise
        print(f"impasto: error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
