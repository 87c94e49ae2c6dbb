"""Command-line front-end: ``impasto CONTENT STYLE [STYLE...] -o OUT [options]``.

Subcommands: ``impasto show-config IMAGE`` (the configuration an output was made with), ``presets``,
``balance`` and ``explain`` (see :mod:`impasto.presets`, :mod:`impasto.animate`, :mod:`impasto.explain`).
Flags map one-to-one onto :class:`impasto.config.Config` fields; a flag that is not given leaves the base
configuration (the defaults, or ``--config FILE``) untouched, so explicit flags always win.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from impasto import __version__
from impasto.cli.argtypes import nonneg_float, nonneg_int
from impasto.cli.artist_flags import add_artist_flags, resolve_region_styles
from impasto.config import CHOICES, Config
from impasto.errors import ImpastoError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif")
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


# -- value parsers: each raises ArgumentTypeError with a one-line message -------------------------


def _optional_float(s: str) -> float | None:
    return None if s.lower() == "none" else nonneg_float(s)


def _float_list(s: str) -> tuple[float, ...]:
    return tuple(nonneg_float(x) for x in s.split(",") if x.strip())


def _name_list(s: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in s.split(",") if x.strip())


def _size(s: str) -> int | None:
    if s.lower() in ("none", "0", "full"):
        return None
    return nonneg_int(s)


def _help(text: str, field: str) -> str:
    default = getattr(Config(), field)
    if isinstance(default, tuple):
        default = ",".join(str(x) for x in default)
    return f"{text} (default: {default})"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="impasto",
        description="Repaint a content photo in the style of one or more paintings (Gatys et al.).",
        epilog="Subcommands: 'impasto demo [-o OUT]' runs on the bundled inputs; "
        "'impasto show-config IMAGE' prints the configuration an output was made with; "
        "'impasto presets' lists the named configurations; 'impasto balance' animates the content/style "
        "balance; 'impasto explain' draws a contact sheet of what the network sees.",
    )
    S = argparse.SUPPRESS
    # Positionals and -o are checked in run() after --show-config, so `--preset NAME --show-config`
    # works without images.
    p.add_argument("content", nargs="?", help="content image (the photo)")
    p.add_argument("styles", nargs="*", help="style image(s) or folder(s) of style images")
    p.add_argument("-o", "--output", help="output image: .png .jpg .webp .tif")
    p.add_argument("--version", action="version", version=f"impasto {__version__}")
    p.add_argument("--config", metavar="FILE", help="start from a JSON configuration (as show-config prints)")
    p.add_argument("--show-config", action="store_true", help="print the resolved configuration and exit")
    p.add_argument("--preset", metavar="NAME",
                   help="start from a named configuration ('impasto presets' lists them); flags override it")
    p.add_argument("--allow-vgg19", action="store_true",
                   help="run a VGG16 preset (keras-white) on the bundled VGG19 when no --weights are given")

    g = p.add_argument_group("size and device")
    g.add_argument("--size", type=_size, default=S, help=_help("output long side in pixels; 'full' keeps it", "size"))
    g.add_argument("--style-scale", type=nonneg_float, default=S,
                   help=_help("style image long side relative to the output's (brush-stroke size)", "style_scale"))
    g.add_argument("--start-size", type=_size, default=S,
                   help=_help("coarse-to-fine: first scale's long side; 'none' for a single scale", "start_size"))
    g.add_argument("--scale-factor", type=nonneg_float, default=S, help=_help("growth per scale", "scale_factor"))
    g.add_argument("--device", choices=CHOICES["device"], default=S, help=_help("compute device", "device"))
    g.add_argument("--recompute-activations", choices=CHOICES["recompute_activations"], default=S,
                   help=_help("recompute the VGG's activations in the backward pass to save memory (auto: on "
                              "the CPU above 3 GiB of activations)", "recompute_activations"))
    g.add_argument("--seed", type=int, default=S, help=_help("random seed (CPU runs are reproducible)", "seed"))

    g = p.add_argument_group("network")
    g.add_argument("--weights", metavar="FILE", default=S,
                   help="VGG16/VGG19 weights (torchvision or Caffe .pth, .safetensors); default: bundled VGG19")
    g.add_argument("--weights-format", choices=CHOICES["weights_format"], default=S,
                   help=_help("how to read --weights", "weights_format"))
    g.add_argument("--pooling", choices=CHOICES["pooling"], default=S, help=_help("pooling", "pooling"))
    g.add_argument("--content-layers", type=_name_list, default=S,
                   help=_help("comma-separated (conv4_2, relu4_2, block4_conv2, conv_4)", "content_layers"))
    g.add_argument("--style-layers", type=_name_list, default=S, help=_help("comma-separated", "style_layers"))
    g.add_argument("--content-layer-weights", type=_float_list, default=S,
                   help="comma-separated, one per content layer (default: 1 each)")
    g.add_argument("--style-layer-weights", type=_float_list, default=S,
                   help="comma-separated, one per style layer (default: 1 each)")

    g = p.add_argument_group("losses")
    g.add_argument("--content-loss", choices=CHOICES["content_loss"], default=S,
                   help=_help("content loss form", "content_loss"))
    g.add_argument("--gram-norm", choices=CHOICES["gram_norm"], default=S,
                   help=_help("Gram matrix normalisation", "gram_norm"))
    g.add_argument("--style-loss", choices=CHOICES["style_loss"], default=S,
                   help=_help("per-layer style loss form (paper: 1/(4N²M²)·Σ(G−A)²)", "style_loss"))
    g.add_argument("--tv-loss", choices=CHOICES["tv_loss"], default=S, help=_help("total variation form", "tv_loss"))
    g.add_argument("--content-weight", type=nonneg_float, default=S, help=_help("content weight", "content_weight"))
    g.add_argument("--style-weight", type=nonneg_float, default=S, help=_help("style weight", "style_weight"))
    g.add_argument("--tv-weight", type=nonneg_float, default=S, help=_help("total-variation weight", "tv_weight"))
    g.add_argument("--alpha", type=nonneg_float, default=S,
                   help="balance form: L = alpha·Lc + (1-alpha)·Ls (times the weights above)")
    g.add_argument("--style-weights", dest="style_blend_weights", type=_float_list, default=S,
                   help="blend weights of several style images, e.g. 0.7,0.3 (default: equal)")

    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", choices=CHOICES["optimizer"], default=S, help=_help("optimiser", "optimizer"))
    g.add_argument("--steps", type=nonneg_int, default=S, help=_help("steps per scale", "steps"))
    g.add_argument("--lr", type=nonneg_float, default=S,
                   help="learning rate in pixel-scale units (default: 1 for L-BFGS, 0.02·pixel-scale for Adam)")
    g.add_argument("--adam-betas", type=_float_list, default=S, help=_help("Adam β1,β2", "adam_betas"))
    g.add_argument("--adam-eps", type=nonneg_float, default=S, help=_help("Adam ε", "adam_eps"))
    g.add_argument("--lbfgs-history", type=nonneg_int, default=S, help=_help("L-BFGS history", "lbfgs_history"))
    g.add_argument("--lbfgs-history-mib", type=_optional_float, default=S,
                   help=_help("memory budget of the L-BFGS history; fewer pairs at large sizes ('none': no "
                              "budget)", "lbfgs_history_mib"))
    g.add_argument("--lbfgs-max-step", type=_optional_float, default=S,
                   help=_help("trust region: largest RMS pixel change per L-BFGS step (0-1 units); 'none' "
                              "for torch's plain L-BFGS", "lbfgs_max_step"))
    g.add_argument("--restart-factor", type=_optional_float, default=S,
                   help=_help("divergence guard: restart from the best image when the loss exceeds this "
                              "multiple of the lowest so far; 'none' turns it off", "restart_factor"))
    g.add_argument("--line-search", dest="lbfgs_line_search", action="store_true", default=S,
                   help="L-BFGS with a strong-Wolfe line search")
    g.add_argument("--pixel-scale", type=nonneg_float, default=S,
                   help=_help("optimise pixels in 0..this (255 Caffe-like, 1 for 0-1 images)", "pixel_scale"))
    g.add_argument("--no-clamp", dest="clamp", action="store_false", default=S,
                   help="do not clip pixels to range after each step (only at the end)")

    g = p.add_argument_group("initialisation")
    g.add_argument("--init", default=S,
                   help=_help("content, noise, white, blend, or an image file", "init"))
    g.add_argument("--noise", choices=CHOICES["noise"], default=S, help=_help("noise kind", "noise"))
    g.add_argument("--noise-scale", type=nonneg_float, default=S,
                   help=_help("noise std (gaussian) or half-range (uniform), 0-1 pixel units", "noise_scale"))
    g.add_argument("--noise-mean", type=nonneg_float, default=S,
                   help="noise centre in 0-1 pixel units (default: the ImageNet mean colour)")
    g.add_argument("--noise-ratio", type=nonneg_float, default=S,
                   help=_help("blend init: ratio·noise + (1-ratio)·content", "noise_ratio"))

    add_artist_flags(p)  # impasto.cli_artist: colour, style statistics, masks, stability

    g = p.add_argument_group("output and progress")
    g.add_argument("--save-every", type=nonneg_int, default=None, metavar="N",
                   help="write every N-th step as a numbered image (default: 0, never; a preset may set it)")
    g.add_argument("--save-dir", metavar="DIR", help="folder for --save-every images (default: OUTPUT_steps/)")
    g.add_argument("--print-every", type=nonneg_int, default=None, metavar="N",
                   help="print a line with every loss term every N steps (default: 0, never; a preset may set it)")
    g.add_argument("--progress-gif", metavar="FILE",
                   help="also write the optimisation as an animation (.gif, or .mp4 with imageio-ffmpeg)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


CONFIG_FIELDS = {f for f in Config.__dataclass_fields__}


def config_from_args(args: argparse.Namespace, base: Config | None = None) -> Config:
    """The base configuration with every flag the user gave applied on top."""
    changes: dict[str, Any] = {k: v for k, v in vars(args).items() if k in CONFIG_FIELDS}
    if "init" in changes:
        init = str(changes["init"])
        if init not in CHOICES["init"] or init == "file":
            changes["init"], changes["init_file"] = "file", init
    if "adam_betas" in changes:
        betas = changes["adam_betas"]
        if len(betas) != 2:
            raise ImpastoError(f"--adam-betas needs two numbers, e.g. 0.9,0.999 (got {len(betas)})")
    cfg = base if base is not None else Config()
    return cfg.replace(**changes)


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


def output_metadata(cfg: Config, content: str, styles: Sequence[str], **extra: Any) -> dict[str, Any]:
    """What every output image carries: impasto version, inputs and the full configuration."""
    return {
        "impasto_version": __version__,
        "content": os.path.abspath(content),
        "styles": [os.path.abspath(s) for s in styles],
        "config": cfg.to_dict(),
        **extra,
    }


def run(argv: Sequence[str]) -> int:
    from impasto import presets
    from impasto.io import images as imageio

    parser = build_parser()
    args = parser.parse_args(list(argv))
    base = None
    preset = None
    if args.preset is not None:
        if args.config:
            raise ImpastoError("give --config or --preset, not both")
        preset = presets.get_preset(args.preset)
        base = presets.preset_config(args.preset, allow_vgg19=True)
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, json.JSONDecodeError) as e:
            raise ImpastoError(f"cannot read configuration {args.config}: {e}") from None
        base = Config.from_dict(data.get("config", data))
    cfg = config_from_args(args, base)
    if args.show_config:
        print(cfg.to_json())
        return 0
    if not args.content or not args.styles or not args.output:
        parser.error("the following arguments are required: content, styles, -o/--output")
    if preset is not None:
        presets.check_weights(cfg, allow_vgg19=args.allow_vgg19)
        cfg = presets.mark_vgg19_substitute(cfg)
    defaults = preset.cli_defaults if preset is not None else {}
    save_every = args.save_every if args.save_every is not None else defaults.get("save_every", 0)
    print_every = args.print_every if args.print_every is not None else defaults.get("print_every", 0)
    cfg, styles = resolve_region_styles(cfg, expand_styles(args.styles))
    inputs = [args.content, *styles] + ([cfg.init_file] if cfg.init_file else []) + (
        [cfg.mask] if cfg.mask else [])
    out = imageio.check_output_path(args.output, inputs)
    if args.progress_gif:
        from impasto.viz.animate import check_animation_path

        gif_path = check_animation_path(args.progress_gif, inputs)
    content = imageio.load_image(args.content)
    style_imgs = [imageio.load_image(s) for s in styles]
    save_dir: Path | None = None
    full = cfg.size if cfg.size is not None else max(int(content.rgb.shape[-2]), int(content.rgb.shape[-1]))
    planned = sum(cfg.scale_steps) if cfg.scale_steps is not None else cfg.steps * len(cfg.scale_sizes(full))
    if save_every and save_every <= planned:  # else no image would be saved
        save_dir = Path(args.save_dir) if args.save_dir else out.with_name(out.stem + "_steps")
        try:
            save_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ImpastoError(f"cannot create {save_dir}: {e.strerror}") from None

    from impasto.engine import StyleTransfer

    st = StyleTransfer(content, style_imgs, cfg)
    meta = output_metadata(cfg, args.content, styles)
    bar = ProgressBar(sys.stderr, not args.quiet)
    total = sum(st.steps)
    digits = len(str(total))
    # A progress animation takes about 60 frames, whatever the step count.
    gif_every = max(1, total // 60) if args.progress_gif else 0
    image_every = math.gcd(save_every, gif_every) if save_every and gif_every else (save_every or gif_every)
    gif_frames = [st.current_image()] if args.progress_gif else []
    history: list[list[float]] = []
    t0 = time.perf_counter()
    result = None
    try:
        for ev in st.run(image_every=image_every):
            if ev.done:
                result = ev
                break
            bar.update(ev.step, ev.total_steps, ev.elapsed, ev.loss, ev.content, ev.style, ev.tv)
            history.append([ev.step, *(float(f"{v:.6g}") for v in (ev.loss, ev.content, ev.style, ev.tv))])
            if gif_every and ev.image is not None and ev.step % gif_every == 0:
                gif_frames.append(ev.image)
            if print_every and ev.step % print_every == 0:
                bar.close() if bar.enabled else None
                terms = " ".join(f"{k}={v:.4g}" for k, v in ev.terms.items())
                print(f"step {ev.step:>{digits}}/{ev.total_steps} {ev.size[1]}x{ev.size[0]} "
                      f"t={ev.elapsed:.1f}s loss={ev.loss:.6g} content={ev.content:.6g} "
                      f"style={ev.style:.6g} tv={ev.tv:.6g} | {terms}", flush=True)
            if save_dir is not None and ev.image is not None and ev.step % save_every == 0:
                imageio.save_image(ev.image, save_dir / f"step_{ev.step:0{digits}d}.png",
                                   metadata={**meta, "step": ev.step}, inputs=inputs)
    except KeyboardInterrupt:
        bar.close()
        partial = out.with_name(f"{out.stem}.interrupted{out.suffix}")
        imageio.save_image(st.current_image(), partial, metadata={**meta, "interrupted": True}, inputs=inputs)
        print(f"impasto: interrupted; the current image is saved to {partial}", file=sys.stderr)
        return 130
    bar.close()
    assert result is not None and result.image is not None
    alpha = content.alpha
    imageio.save_image(result.image, out, alpha=alpha,
                       metadata={**meta, "steps": result.step, "seconds": round(result.elapsed, 2),
                                 "restarts": result.restarts,
                                 "loss_history": {"columns": ["step", "loss", "content", "style", "tv"],
                                                  "rows": history}},
                       inputs=inputs)
    if args.progress_gif:
        from impasto.viz.animate import write_animation

        write_animation([*gif_frames, result.image], gif_path)
        if not args.quiet:
            print(f"wrote {gif_path} ({len(gif_frames) + 1} frames)", file=sys.stderr)
    if not args.quiet:
        if result.stop_reason and result.stop_reason != "steps":
            print(f"stopped early ({result.stop_reason})", file=sys.stderr)
        if result.restarts:
            print(f"the loss diverged {result.restarts} time(s); each time the run went back to its best image "
                  "and restarted the optimiser (see --restart-factor)", file=sys.stderr)
        print(f"wrote {out} ({result.size[1]}x{result.size[0]}, {result.step} steps, "
              f"{time.perf_counter() - t0:.1f}s, loss {result.loss:.5g})", file=sys.stderr)
    return 0


def show_config(argv: Sequence[str]) -> int:
    from impasto.io import images as imageio

    p = _Parser(prog="impasto show-config", description="Print the configuration an output image carries.")
    p.add_argument("image")
    args = p.parse_args(list(argv))
    meta = imageio.read_metadata(args.image)
    if meta is None:
        raise ImpastoError(f"{args.image} carries no impasto configuration")
    print(json.dumps(meta, indent=2))
    return 0


def demo(argv: Sequence[str]) -> int:
    """``impasto demo [-o OUT] [flags]``: the bundled content photo in the bundled painting's style."""
    from impasto.io import images as imageio

    argv = list(argv)
    if not any(a in ("-o", "--output") or a.startswith("--output=") for a in argv):
        argv += ["-o", "impasto-demo.png"]
    return run([str(imageio.default_content_path()), str(imageio.default_style_path()), *argv])


def _presets_cmd(argv: Sequence[str]) -> int:
    from impasto.presets import cli_presets

    return cli_presets(argv)


def _balance_cmd(argv: Sequence[str]) -> int:
    from impasto.viz.animate import cli_balance

    return cli_balance(argv)


def _explain_cmd(argv: Sequence[str]) -> int:
    from impasto.viz.explain import cli_explain

    return cli_explain(argv)


def _frontend(module: str) -> Callable[[Sequence[str]], int]:
    """A front-end package's ``main(argv)``, imported only when its subcommand is used."""

    def command(argv: Sequence[str]) -> int:
        import importlib

        entry: Callable[[Sequence[str]], int] = importlib.import_module(module).main
        return entry(argv)

    return command


SUBCOMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "show-config": show_config, "demo": demo,
    "presets": _presets_cmd, "balance": _balance_cmd, "explain": _explain_cmd,
    "serve": _frontend("impasto.studio.cli"), "submit": _frontend("impasto.studio.client_cli"),
    "batch": _frontend("impasto.batch.cli"), "video": _frontend("impasto.video.cli"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = SUBCOMMANDS.get(argv[0]) if argv else None
    try:
        if command is not None:
            return command(argv[1:])
        return run(argv)
    except ImpastoError as e:
        print(f"impasto: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print("impasto: error: out of memory: try a smaller --size", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as e:
        if "out of memory" in str(e).lower():
            print("impasto: error: out of memory on the device: try a smaller --size", file=sys.stderr)
            return EXIT_USAGE
        raise


if __name__ == "__main__":
    sys.exit(main())
