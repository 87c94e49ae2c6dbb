"""The small subcommands: ``presets``, ``show-config``, ``balance`` and ``explain``.

The libraries behind them (:mod:`impasto.presets`, :mod:`impasto.viz`) never print; this module does.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from impasto.config import Config
from impasto.errors import ImpastoError
from impasto.jobs.argtypes import Parser, float_in, int_at_least


def _print(text: str = "") -> None:
    """``print`` to standard output, where a full disk or a closed device is one clear error (a closed
    pipe, BrokenPipeError, ends the program quietly in :func:`impasto.cli.main`)."""
    try:
        print(text)
    except BrokenPipeError:
        raise
    except OSError as e:
        from impasto.cli import silence_stdout

        silence_stdout()  # what is still buffered must not fail again at exit
        raise ImpastoError(f"cannot write to standard output: {e.strerror or e}") from None


def presets_cmd(argv: Sequence[str]) -> int:
    """``impasto presets [-v]``: one line per preset; ``-v`` adds each preset's notes."""
    from impasto.presets import COMMON_NOTES, DEFAULT_CHOICE, PRESETS

    p = Parser(prog="impasto presets", description="List the named configurations.")
    p.add_argument("-v", "--verbose", action="store_true", help="also list where each departs from its source")
    args = p.parse_args(list(argv))
    width = max(len(n) for n in PRESETS)
    for preset in PRESETS.values():
        _print(f"{preset.name:<{width}}  {preset.summary}")
        if args.verbose:
            for note in (*preset.notes, *COMMON_NOTES):
                _print(f"{'':<{width}}    - {note}")
    if args.verbose:
        _print(f"\n{DEFAULT_CHOICE}")
    else:
        _print("\nuse: impasto CONTENT STYLE -o OUT --preset NAME; 'impasto --preset NAME --show-config' prints one")
    return 0


def show_config_cmd(argv: Sequence[str]) -> int:
    """``impasto show-config IMAGE``: the metadata an output carries (configuration, inputs, timings)."""
    from impasto.io import read_metadata

    p = Parser(prog="impasto show-config", description="Print the configuration an output image carries.")
    p.add_argument("image")
    args = p.parse_args(list(argv))
    meta = read_metadata(args.image)
    if meta is None:
        raise ImpastoError(f"{args.image} carries no impasto configuration")
    _print(json.dumps(meta, indent=2))
    return 0


def balance_cmd(argv: Sequence[str]) -> int:
    """``impasto balance CONTENT STYLE -o sweep.gif|.mp4 [--frames N] [--steps N] [--size PX] [--grid PNG]``."""
    from impasto import presets
    from impasto.io import check_output_path, load_image
    from impasto.viz.animate import balance_alphas, balance_grid, balance_sweep, check_animation_path, write_animation

    p = Parser(
        prog="impasto balance",
        description="Animate L = α·content + (1−α)·style from style only (α=0) to content only (α=1); "
        "each frame warm-starts from the previous one.",
    )
    p.add_argument("content")
    p.add_argument("style")
    p.add_argument("-o", "--output", required=True, help="sweep.gif or sweep.mp4")
    p.add_argument("--frames", type=int_at_least(2), default=12, help="number of α values (default: 12)")
    p.add_argument("--spacing", choices=("log", "linear"), default="log",
                   help="α spacing: log spaces the ratio α/(1−α) from 1/span to span (default), linear "
                        "spaces α evenly")
    p.add_argument("--span", type=float_in(1.0, 1e12, lo_open=True), default=1e4,
                   help="log spacing's largest ratio (default: 1e4)")
    p.add_argument("--steps", type=int_at_least(1), default=20, help="optimiser steps per frame (default: 20)")
    p.add_argument("--first-steps", type=int_at_least(1), default=None,
                   help="steps for the first frame (default: 3 × steps)")
    p.add_argument("--size", type=int_at_least(16), default=192, help="long side in pixels (default: 192)")
    p.add_argument("--fps", type=float_in(0.1, 100.0), default=6.0, help="frames per second (default: 6)")
    p.add_argument("--grid", metavar="PNG", help="grid of 5 selected α values (default: OUTPUT_grid.png)")
    p.add_argument("--preset", metavar="NAME", help="base configuration (default: impasto's own)")
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(list(argv))
    inputs = [args.content, args.style]
    out = check_animation_path(args.output, inputs)
    grid = check_output_path(Path(args.grid) if args.grid else out.with_name(out.stem + "_grid.png"), inputs)
    base = presets.preset_config(args.preset, allow_vgg19=True) if args.preset else Config()
    cfg = base.replace(size=args.size, start_size=None, steps=args.steps, seed=args.seed)
    alphas = balance_alphas(args.frames, args.spacing, args.span)
    frames = []
    for fr in balance_sweep(load_image(args.content), load_image(args.style), cfg, alphas,
                            first_steps=args.first_steps):
        frames.append(fr)
        if not args.quiet:
            print(f"frame {len(frames)}/{len(alphas)} alpha={fr.alpha:.3f} content={fr.content:.4g} "
                  f"style={fr.style:.4g}", file=sys.stderr, flush=True)
    write_animation([f.image for f in frames], out, fps=args.fps)
    balance_grid(frames, grid)
    if not args.quiet:
        print(f"wrote {out} ({len(frames)} frames) and {grid}", file=sys.stderr)
    return 0


def explain_cmd(argv: Sequence[str]) -> int:
    """``impasto explain CONTENT STYLE [RESULT] -o sheet.png [--layer L] [--gram-layer L]``."""
    from impasto import presets
    from impasto.io import check_output_path, load_image, read_metadata
    from impasto.viz.explain import LossHistory, contact_sheet

    p = Parser(prog="impasto explain",
               description="A contact sheet: images, feature maps, Gram matrices, edges, losses.")
    p.add_argument("content")
    p.add_argument("style")
    p.add_argument("result", nargs="?", help="a stylised image (its stored loss history is plotted)")
    p.add_argument("-o", "--output", required=True, help="sheet.png")
    p.add_argument("--layer", default="relu2_1", help="layer whose feature maps are shown (default: relu2_1)")
    p.add_argument("--gram-layer", default="relu3_1", help="layer whose Gram matrices are shown (default: relu3_1)")
    p.add_argument("--channels", type=int_at_least(1), default=4,
                   help="feature channels shown per image (1-16, default: 4)")
    p.add_argument("--size", type=int_at_least(32), default=256,
                   help="long side for the sheet and a short run (default: 256)")
    p.add_argument("--steps", type=int_at_least(1), default=60,
                   help="steps of the short run made when needed (default: 60)")
    p.add_argument("--preset", metavar="NAME", help="configuration of the short run (default: impasto's own)")
    args = p.parse_args(list(argv))
    if args.channels > 16 or args.size > 2048:
        raise ImpastoError("--channels must be at most 16 and --size at most 2048 for a contact sheet")
    inputs = [args.content, args.style] + ([args.result] if args.result else [])
    out = check_output_path(args.output, inputs)
    if out.suffix.lower() != ".png":
        raise ImpastoError(f"the contact sheet is a PNG; give a .png name (got {out.name})")
    history = LossHistory.from_metadata(read_metadata(args.result)) if args.result else None
    base = presets.preset_config(args.preset, allow_vgg19=True) if args.preset else Config()
    cfg = base.replace(size=args.size, start_size=None, steps=args.steps)
    contact_sheet(load_image(args.content), load_image(args.style),
                  load_image(args.result) if args.result else None, out,
                  feature_layer=args.layer, gram_layer=args.gram_layer, channels=args.channels,
                  history=history, config=cfg, size=args.size)
    print(f"wrote {out}", file=sys.stderr)
    return 0
