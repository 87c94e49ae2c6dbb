"""Command-line flags generated from :class:`~impasto.config.Config`'s field metadata.

Each field with ``cli=True`` becomes ``--field-name`` (or its metadata's ``flag``) in a group named
after its section, with the field's help text, its default, its choices and a parser derived from its
type; a flag that is not given leaves the base configuration untouched (argparse.SUPPRESS), so a preset
or ``--config FILE`` under explicit flags works. Adding a field to Config adds its flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable
from typing import Any

from impasto.config import CHOICES, FIELD_TYPES, MAX_SCALES, MAX_SIZE, MAX_STEPS, SECTIONS, Config, field_kind
from impasto.jobs.argtypes import float_in, int_at_least, nonneg_float

_SECTION_TITLES = {
    "network": "network", "losses": "losses and weights", "optimiser": "optimisation", "pyramid": "size and scales",
    "start": "initialisation", "controls": "artist controls (colour, style statistics, regions, stability)",
    "device": "device and memory", "provenance": "provenance",
}

# Bounds checked while parsing, so a bad number is one line naming the flag (Config checks them again).
_BOUNDS: dict[str, Callable[[str], Any]] = {
    "size": int_at_least(16), "start_size": int_at_least(16), "steps": int_at_least(0),
    "seed": int_at_least(0), "lbfgs_history": int_at_least(1), "lbfgs_max_iter": int_at_least(1),
    "tol_window": int_at_least(1), "lr": float_in(0.0, 1e6, lo_open=True),
    "pixel_scale": float_in(0.0, 1e6, lo_open=True),
    "scale_factor": float_in(1.01, 16.0), "style_scale": float_in(0.05, 8.0),
    "style_max_zoom": float_in(0.25, 64.0), "alpha": float_in(0.0, 1.0),
    "noise_ratio": float_in(0.0, 1.0), "noise_mean": float_in(0.0, 1.0),
    "ema": float_in(0.0, 1.0, lo_open=True, hi_open=True),
    "tol": float_in(0.0, lo_open=True), "restart_factor": float_in(1.0, lo_open=True),
}
_LIMITS = {"size": MAX_SIZE, "start_size": MAX_SIZE, "steps": MAX_STEPS, "seed": 2**63 - 1}


def flag_name(field: dataclasses.Field[Any]) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def _capped(parse: Callable[[str], Any], high: int, name: str) -> Callable[[str], Any]:
    def run(s: str) -> Any:
        v = parse(s)
        if v > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {v}")
        return v

    run.__name__ = name
    return run


def _none_or(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def run(s: str) -> Any:
        return None if s.strip().lower() in ("none", "off", "full") else parse(s)

    return run


def _list_of(parse: Callable[[str], Any], count: int | None) -> Callable[[str], tuple[Any, ...]]:
    def run(s: str) -> tuple[Any, ...]:
        items = tuple(parse(x.strip()) for x in s.split(",") if x.strip())
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        if count is not None and len(items) != count:
            raise argparse.ArgumentTypeError(f"expected {count} comma-separated values, got {len(items)}")
        return items

    return run


def _at_most_items(parse: Callable[[str], tuple[Any, ...]], n: int) -> Callable[[str], tuple[Any, ...]]:
    def run(s: str) -> tuple[Any, ...]:
        v = parse(s)
        if len(v) > n:
            raise argparse.ArgumentTypeError(f"at most {n} values, got {len(v)}")
        return v

    return run


def _parser_for(name: str) -> Callable[[str], Any]:
    inner, optional = field_kind(FIELD_TYPES[name])
    if typing.get_origin(inner) is tuple:
        args = typing.get_args(inner)
        items: dict[Any, Callable[[str], Any]] = {int: int_at_least(0), float: nonneg_float, str: str}
        item = items[args[0]]
        if name == "scale_steps":
            item = _capped(int_at_least(0), MAX_STEPS, "steps")
        parse: Callable[[str], Any] = _list_of(item, None if args[-1] is Ellipsis else len(args))
        if name == "scale_steps":
            parse = _at_most_items(parse, MAX_SCALES)
    elif name in _BOUNDS:
        parse = _BOUNDS[name]
        if name in _LIMITS:
            parse = _capped(parse, _LIMITS[name], name)
    elif inner is int:
        parse = int_at_least(0)
    elif inner is float:
        parse = nonneg_float
    else:
        parse = str
    return _none_or(parse) if optional else parse


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per CLI-visible Config field, grouped by section."""
    default = Config()
    groups = {s: p.add_argument_group(_SECTION_TITLES[s]) for s in SECTIONS}
    S = argparse.SUPPRESS
    for f in dataclasses.fields(Config):
        meta = f.metadata
        if not meta.get("cli", True):
            continue
        g = groups[meta["section"]]
        flag = flag_name(f)
        value = getattr(default, f.name)
        shown = ",".join(str(x) for x in value) if isinstance(value, tuple) else value
        if isinstance(value, bool):
            # A flag that turns the default off (--no-clamp) stores False; the others store True.
            negative = flag.startswith("--no-")
            g.add_argument(flag, dest=f.name, action="store_false" if negative else "store_true", default=S,
                           help=meta["help"])
            continue
        help_text = f"{meta['help']} (default: {'none' if shown is None else shown})"
        if f.name == "regions":
            g.add_argument(flag, dest=f.name, action="append", type=_region, default=S, metavar="COLOR=STYLE",
                           help=meta["help"])
        elif f.name in CHOICES and f.name != "init":
            g.add_argument(flag, dest=f.name, choices=CHOICES[f.name], default=S, help=help_text)
        else:
            g.add_argument(flag, dest=f.name, type=_parser_for(f.name), default=S, help=help_text,
                           metavar=meta.get("metavar") or f.name.upper())


def _region(s: str) -> str:
    if "=" not in s or not s.split("=", 1)[0].strip() or not s.rsplit("=", 1)[1].strip():
        raise argparse.ArgumentTypeError(f"expected COLOR=STYLE, e.g. red=1 or blue=content, got {s!r}")
    return s


def changes_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The Config fields the user gave on the command line (``--init FILE`` becomes init 'file')."""
    names = {f.name for f in dataclasses.fields(Config)}
    changes = {k: v for k, v in vars(args).items() if k in names}
    if "regions" in changes:
        changes["regions"] = tuple(changes["regions"])
    if "init" in changes:
        init = str(changes["init"])
        if init not in CHOICES["init"] or init == "file":
            changes["init"], changes["init_file"] = "file", init
    return changes


# -- what every terminal front-end (impasto, impasto batch, impasto video) shares -------------------------


def checkpoint_every(s: str) -> int | None:
    """``--checkpoint-every``: ``auto`` (None: by time), ``0`` (never) or a number of steps."""
    return None if s.strip().lower() == "auto" else int_at_least(0)(s)


def add_base_flags(p: argparse.ArgumentParser) -> None:
    """``--config``, ``--preset``, ``--allow-vgg19``, ``--show-config`` and every Config flag."""
    p.add_argument("--config", metavar="FILE", help="start from a JSON configuration (as show-config prints)")
    p.add_argument("--show-config", action="store_true", help="print the resolved configuration and exit")
    # dest preset_name: 'preset' is also a Config field (provenance), which changes_from_args would copy.
    p.add_argument("--preset", dest="preset_name", metavar="NAME",
                   help="start from a named configuration ('impasto presets' lists them); flags override it")
    p.add_argument("--allow-vgg19", action="store_true",
                   help="run a VGG16 preset (keras-white) on the bundled VGG19 when no --weights are given")
    add_config_flags(p)


def config_from_args(args: argparse.Namespace) -> Config:
    """The Config the flags ask for: :func:`impasto.jobs.resolve` of the flags given, on the defaults, a
    preset or ``--config FILE``."""
    from impasto.jobs.resolve import resolve

    return resolve(changes_from_args(args), preset=args.preset_name, config_file=args.config)
