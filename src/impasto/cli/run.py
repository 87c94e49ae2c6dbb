"""Command-line front-end: ``impasto CONTENT STYLE [STYLE...] -o OUT [options]``, ``impasto resume``.

The configuration flags are generated from :class:`~impasto.config.Config` (:mod:`impasto.cli.flags`); a
flag that is not given leaves the base configuration (the defaults, a preset or ``--config FILE``)
untouched. This module owns everything a terminal needs: the progress bar, the periodic checkpoint,
and signals — Ctrl-C, SIGTERM and SIGHUP stop the run at the next step boundary, write
``OUT.interrupted.png`` and the checkpoint, and exit with one line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from impasto import __version__
from impasto.cli.argtypes import Parser, int_at_least
from impasto.cli.flags import add_config_flags, changes_from_args
from impasto.config import Config
from impasto.errors import ImpastoError, out_of_memory_message
from impasto.regions import CONTENT_REGION

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif")
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
MAX_HISTORY_ROWS = 300
"""Loss-history rows kept in an output's metadata (about 12 KB)."""
AUTO_CHECKPOINT_SECONDS = 60.0
"""``--checkpoint-every auto``: a checkpoint once a minute, so a run shorter than that never writes one."""


def _checkpoint_every(s: str) -> int | None:
    """``auto`` (None: by time), ``0`` (never) or a number of steps."""
    return None if s.strip().lower() == "auto" else int_at_least(0)(s)


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
    p.add_argument("--config", metavar="FILE", help="start from a JSON configuration (as show-config prints)")
    p.add_argument("--show-config", action="store_true", help="print the resolved configuration and exit")
    p.add_argument("--preset", dest="preset_name", metavar="NAME",
                   help="start from a named configuration ('impasto presets' lists them); flags override it")
    p.add_argument("--allow-vgg19", action="store_true",
                   help="run a VGG16 preset (keras-white) on the bundled VGG19 when no --weights are given")
    add_config_flags(p)
    g = p.add_argument_group("output, progress and checkpoints")
    g.add_argument("--save-every", type=int_at_least(0), default=None, metavar="N",
                   help="write every N-th step as a numbered image (default: 0, never; a preset may set it)")
    g.add_argument("--save-dir", metavar="DIR", help="folder for --save-every images (default: OUTPUT_steps/)")
    g.add_argument("--print-every", type=int_at_least(0), default=None, metavar="N",
                   help="print a line with every loss term every N steps (default: 0, never; a preset may set it)")
    g.add_argument("--progress-gif", metavar="FILE",
                   help="also write the optimisation as an animation (.gif, or .mp4 with imageio-ffmpeg)")
    g.add_argument("--checkpoint-every", type=_checkpoint_every, default=None, metavar="N|auto",
                   help="write the run's state to OUTPUT.ckpt every N steps (auto: once a minute; 0: never); "
                   "removed when the run finishes; continue with 'impasto resume OUTPUT.ckpt' (default: auto)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def expand_styles(items: Sequence[str]) -> list[str]:
    """Style arguments with folders expanded to the images inside them (sorted by name)."""
    out: list[str] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ImpastoError(f"style folder {item} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            out += found
        else:
            out.append(item)
    return out


def resolve_region_styles(cfg: Config, styles: Sequence[str]) -> tuple[Config, list[str]]:
    """Regions may name a style by path: ``--region red=starry.jpg`` becomes ``red=N`` (its number among
    the styles); a path not among them is added to the style list."""
    out = list(styles)
    if not cfg.regions:
        return cfg, out
    resolved: list[str] = []
    for spec in cfg.regions:
        color, value = spec.rsplit("=", 1)
        value = value.strip()
        if value.lower() == CONTENT_REGION or (value.isascii() and value.isdigit()):
            resolved.append(spec)
            continue
        if not os.path.exists(value):
            raise ImpastoError(f"region {spec!r}: {value} is neither a style number, 'content' nor a file")
        idx = next((i for i, s in enumerate(out) if os.path.exists(s) and os.path.samefile(s, value)), None)
        if idx is None:
            out.append(value)
            idx = len(out) - 1
        resolved.append(f"{color}={idx + 1}")
    return cfg.replace(regions=tuple(resolved)), out


class ProgressBar:
    """One status line on a terminal: bar, step, ETA and current losses."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled and stream.isatty()
        self.width = 24

    def update(self, step: int, total: int, elapsed: float, loss: float, c: float, s: float, tv: float) -> None:
        if not self.enabled:
            return
        frac = step / total if total else 1.0
        filled = int(self.width * frac)
        eta = elapsed / step * (total - step) if step else 0.0
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {step}/{total} "
            f"{_fmt_time(elapsed)}<{_fmt_time(eta)} loss {loss:.4g} (c {c:.3g} s {s:.3g} tv {tv:.3g})  "
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _fmt_time(s: float) -> str:
    s = int(round(s))
    return f"{s // 60:d}:{s % 60:02d}"


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP set a flag the run loop checks between steps; a second signal while
    the run is saving is ignored, so the save is never cut short."""

    SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum

    def __enter__(self) -> StopSignals:
        for s in self.SIGNALS:
            try:
                self._old[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread: leave the process's handlers alone
                break
        return self

    def __exit__(self, *exc: object) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""


@dataclass(frozen=True)
class FrontEnd:
    """The CLI's own options of a run: recorded in the output's metadata and in its checkpoint."""

    save_every: int = 0
    save_dir: str | None = None
    print_every: int = 0
    progress_gif: str | None = None
    checkpoint_every: int | None = None
    quiet: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "quiet"}


def output_metadata(cfg: Config, content: str, styles: Sequence[str], **extra: Any) -> dict[str, Any]:
    """What every output image carries: impasto version, inputs and the full configuration."""
    return {
        "impasto_version": __version__,
        "content": os.path.abspath(content),
        "styles": [os.path.abspath(s) for s in styles],
        "config": cfg.to_dict(),
        **extra,
    }


def load_config_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise ImpastoError(f"configuration file {path} does not exist") from None
    except IsADirectoryError:
        raise ImpastoError(f"configuration {path} is a folder, not a JSON file") from None
    except OSError as e:
        raise ImpastoError(f"cannot read configuration {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ImpastoError(f"configuration {path} is not UTF-8 text (is it an image?)") from None
    except (json.JSONDecodeError, RecursionError) as e:
        raise ImpastoError(f"configuration {path} is not valid JSON: {str(e)[:100]}") from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]  # the whole metadata of an output, as show-config prints it
    if not isinstance(data, dict):
        raise ImpastoError(f"configuration {path} must be a JSON object of fields (got {type(data).__name__})")
    return data


def resolve_config(args: argparse.Namespace) -> Config:
    """The run's Config from parsed flags: the defaults, a preset (``--preset``, dest ``preset_name``) or
    ``--config FILE``, then every configuration flag given. Shared by the single run, batch and video."""
    from impasto import presets

    base = None
    if args.preset_name is not None:
        if args.config:
            raise ImpastoError("give --config or --preset, not both")
        base = presets.preset_config(args.preset_name, allow_vgg19=True)
    if args.config:
        base = Config.from_dict(load_config_file(args.config))
    changes = changes_from_args(args)
    if "lbfgs_max_step" in changes and changes["lbfgs_max_step"] is not None and (
        changes.get("lbfgs_line_search") or changes.get("lbfgs_max_iter", 1) > 1
    ):
        raise ImpastoError("--lbfgs-max-step (the trust region) works only with single-iteration L-BFGS without "
                           "a line search; drop it, or drop --line-search / --lbfgs-max-iter")
    return (base if base is not None else Config()).replace(**changes)


def run(argv: Sequence[str]) -> int:
    from impasto import presets

    parser = build_parser()
    args = parser.parse_args(list(argv))
    cfg = resolve_config(args)
    preset = presets.get_preset(args.preset_name) if args.preset_name is not None else None
    if args.show_config:
        _print_or_fail(cfg.to_json())
        return 0
    if not args.content or not args.styles or not args.output:
        parser.error("the following arguments are required: content, styles, -o/--output")
    if preset is not None:
        presets.check_weights(cfg, allow_vgg19=args.allow_vgg19)
        cfg = presets.mark_vgg19_substitute(cfg)
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
    return execute(cfg, args.content, styles, args.output, front)


def execute(cfg: Config, content_path: str, styles: list[str], output: str, front: FrontEnd,
            resume_from: str | None = None) -> int:
    """Run (or continue) one stylisation to ``output``, with progress, checkpoints and signals."""
    from impasto.checkpoint import file_sha256, resume, save_checkpoint
    from impasto.engine import StyleTransfer
    from impasto.io import check_output_path, load_image, save_image, save_result
    from impasto.io.atomic import check_writable

    inputs = [content_path, *styles] + ([cfg.init_file] if cfg.init_file else []) + ([cfg.mask] if cfg.mask else [])
    out = check_output_path(output, inputs)
    ckpt_path = check_writable(out.with_name(out.name + ".ckpt"), inputs)
    partial = check_output_path(out.with_name(f"{out.stem}.interrupted{out.suffix}"), inputs)
    gif_path = None
    if front.progress_gif:
        from impasto.viz.animate import check_animation_path

        gif_path = check_animation_path(front.progress_gif, inputs)
    with StopSignals() as stop:
        content = load_image(content_path)
        if resume_from is not None:
            st, ckpt = resume(resume_from)
            done_before = ckpt.step
        else:
            st = StyleTransfer(content, [load_image(s) for s in styles], cfg)
            done_before = 0
        if stop.received is not None:
            print(f"impasto: {stop.name} before the run started; nothing to save", file=sys.stderr)
            return EXIT_INTERRUPTED
        total = sum(st.steps)
        save_dir: Path | None = None
        if front.save_every and front.save_every <= total:  # else no image would be saved
            save_dir = Path(front.save_dir) if front.save_dir else out.with_name(out.stem + "_steps")
            try:
                save_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ImpastoError(f"cannot create {save_dir}: {e.strerror}") from None
        hashes = {os.fspath(p): file_sha256(p) for p in (content_path, *styles)}
        meta = output_metadata(cfg, content_path, styles, frontend=front.to_dict())
        bar = ProgressBar(sys.stderr, not front.quiet)
        digits = len(str(total))
        # A progress animation takes about 60 frames, whatever the step count.
        gif_every = max(1, total // 60) if gif_path else 0
        image_every = math.gcd(front.save_every, gif_every) if front.save_every and gif_every else (
            front.save_every or gif_every)
        gif_frames = [st.current_image()] if gif_path and resume_from is None else []
        t0 = time.perf_counter()
        last_ckpt = time.monotonic()
        wrote_ckpt = False

        def checkpoint() -> None:
            nonlocal last_ckpt, wrote_ckpt
            save_checkpoint(ckpt_path, st, content=content_path, styles=styles, hashes=hashes,
                            extra={"output": str(out), "frontend": front.to_dict()})
            last_ckpt, wrote_ckpt = time.monotonic(), True

        result = None
        history: list[list[float]] = []
        for ev in st.run(image_every=image_every):
            if ev.done:
                result = ev
                break
            history.append([ev.step, *(float(f"{v:.4g}") for v in (ev.loss, ev.content, ev.style, ev.tv))])
            bar.update(ev.step, ev.total_steps, ev.elapsed, ev.loss, ev.content, ev.style, ev.tv)
            if gif_every and ev.image is not None and ev.step % gif_every == 0:
                gif_frames.append(ev.image)
            if front.print_every and ev.step % front.print_every == 0:
                bar.close()
                terms = " ".join(f"{k}={v:.4g}" for k, v in ev.terms.items())
                print(f"step {ev.step:>{digits}}/{ev.total_steps} {ev.size[1]}x{ev.size[0]} "
                      f"t={ev.elapsed:.1f}s loss={ev.loss:.6g} content={ev.content:.6g} "
                      f"style={ev.style:.6g} tv={ev.tv:.6g} | {terms}", flush=True)
            if save_dir is not None and ev.image is not None and ev.step % front.save_every == 0:
                save_image(ev.image, save_dir / f"step_{ev.step:0{digits}d}.png",
                           metadata={**meta, "step": ev.step}, inputs=inputs)
            every = front.checkpoint_every
            if (every and ev.step % every == 0) or (
                every is None and time.monotonic() - last_ckpt >= AUTO_CHECKPOINT_SECONDS
            ):
                checkpoint()
            if stop.received is not None:
                bar.close()
                checkpoint()
                save_image(st.current_image(), partial, metadata={**meta, "interrupted": True, "step": ev.step},
                           inputs=inputs)
                print(f"impasto: {stop.name} at step {ev.step}/{total}: the current image is saved to {partial}; "
                      f"continue with: impasto resume {ckpt_path}", file=sys.stderr)
                return EXIT_INTERRUPTED
        bar.close()
        assert result is not None and result.image is not None
        final_meta = {**meta, "steps": result.step, "seconds": round(result.elapsed, 2), "restarts": result.restarts,
                      "resumed_from_step": done_before or None,
                      "loss_history": {"columns": ["step", "loss", "content", "style", "tv"],
                                       "rows": thin_history(history, MAX_HISTORY_ROWS)}}
        saved = save_result(result.image, out, alpha=content.alpha, metadata=final_meta, inputs=inputs)
        written = saved.path
        if wrote_ckpt or resume_from is not None:
            # The result is safely on disk: the checkpoint has done its job.
            ckpt_path.unlink(missing_ok=True)
    if saved.rescued:
        print(f"impasto: error: {saved.message()}", file=sys.stderr)
        return EXIT_USAGE
    if gif_path is not None:
        from impasto.viz.animate import write_animation

        write_animation([*gif_frames, result.image], gif_path)
        if not front.quiet:
            print(f"wrote {gif_path} ({len(gif_frames) + 1} frames)", file=sys.stderr)
    if not front.quiet:
        if result.stop_reason and result.stop_reason != "steps":
            print(f"stopped early ({result.stop_reason})", file=sys.stderr)
        if result.restarts:
            print(f"the loss diverged {result.restarts} time(s); each time the run went back to its best image "
                  "and restarted the optimiser (see --restart-factor)", file=sys.stderr)
        print(f"wrote {written} ({result.size[1]}x{result.size[0]}, {result.step} steps, "
              f"{time.perf_counter() - t0:.1f}s, loss {result.loss:.5g})", file=sys.stderr)
    return 0


def thin_history(rows: list[list[float]], limit: int) -> list[list[float]]:
    """At most ``limit`` rows, evenly spaced and always with the last: the metadata stays a few KB
    however long the run (a JPEG comment holds 64 KB), and the loss curve keeps its shape."""
    if len(rows) <= limit:
        return rows
    stride = math.ceil(len(rows) / limit)
    kept = rows[::stride]
    return kept if kept[-1] is rows[-1] else [*kept[: limit - 1], rows[-1]]


def _print_or_fail(text: str) -> None:
    try:
        print(text)
        sys.stdout.flush()
    except OSError as e:
        raise ImpastoError(f"cannot write to standard output: {e.strerror}") from None


def resume_cmd(argv: Sequence[str]) -> int:
    """``impasto resume OUT.ckpt [-q]``: continue an interrupted run where its checkpoint left it."""
    from impasto.checkpoint import load_checkpoint

    p = Parser(prog="impasto resume", description="Continue a run from its checkpoint (OUTPUT.ckpt).")
    p.add_argument("checkpoint")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(list(argv))
    ckpt = load_checkpoint(args.checkpoint)
    output = ckpt.extra.get("output")
    if not isinstance(output, str):
        raise ImpastoError(f"checkpoint {args.checkpoint} does not name its output image")
    fe = ckpt.extra.get("frontend") or {}
    front = FrontEnd(**{k: fe[k] for k in ("save_every", "save_dir", "print_every", "progress_gif",
                                            "checkpoint_every") if k in fe}, quiet=args.quiet)
    return execute(ckpt.config, ckpt.content, list(ckpt.styles), output, front, resume_from=args.checkpoint)


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
