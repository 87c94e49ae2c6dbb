"""Command-line flags of the artist controls (colour, style statistics, masks, stability).

Kept apart from :mod:`impasto.cli` so the core parser stays short; every flag maps onto a
:class:`~impasto.config.Config` field and, like the core flags, defaults to "not given".
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from impasto.cli.argtypes import decay, int_at_least, nonneg_float, positive_float
from impasto.config import STYLE_KINDS, Config
from impasto.errors import ImpastoError
from impasto.losses.color import PRESERVE_COLOR_MODES
from impasto.regions import CONTENT_REGION


def _int_list(s: str) -> tuple[int, ...]:
    parse = int_at_least(0)
    out = tuple(parse(x.strip()) for x in s.split(",") if x.strip())
    if not out:
        raise argparse.ArgumentTypeError("expected comma-separated whole numbers, e.g. 60,40,20")
    return out


def _region(s: str) -> str:
    if "=" not in s or not s.split("=", 1)[0].strip() or not s.rsplit("=", 1)[1].strip():
        raise argparse.ArgumentTypeError(f"expected COLOR=STYLE, e.g. red=1 or blue=content, got {s!r}")
    return s


def add_artist_flags(p: argparse.ArgumentParser) -> None:
    S = argparse.SUPPRESS
    g = p.add_argument_group("colour (Gatys et al. 2017)")
    g.add_argument("--preserve-color", choices=PRESERVE_COLOR_MODES, default=S,
                   help="luminance: stylise luminance only and keep the photo's chroma (YIQ); match: "
                   "recolour the style images to the photo's colour mean and covariance first "
                   "(default: none)")
    g.add_argument("--color-match-output", action="store_true", default=S,
                   help="after optimising, match the result's colour mean and covariance to the photo's")

    g = p.add_argument_group("style statistics")
    g.add_argument("--style-kind", choices=STYLE_KINDS, default=S,
                   help="gram (Gatys), w2 (mean + covariance, Wasserstein-2), hist (Gram + histogram "
                   "term of Risser et al. 2017) (default: gram)")
    g.add_argument("--hist-weight", type=nonneg_float, default=S,
                   help="weight of the histogram term relative to the Gram term (default: 1)")
    g.add_argument("--scale-steps", type=_int_list, default=S,
                   help="coarse-to-fine: steps at each scale, e.g. 60,40,20 (default: --steps at every scale)")

    g = p.add_argument_group("regions (guided Gram matrices)")
    g.add_argument("--mask", metavar="FILE", default=S,
                   help="region mask image framed like the content photo; each pixel belongs to the "
                   "region of the nearest --region colour")
    g.add_argument("--region", dest="regions", action="append", type=_region, default=S,
                   metavar="COLOR=STYLE",
                   help="map a mask colour (red, #ff0000, 255,0,0) to a style: a style number from 1, a "
                   "style image path, or 'content' (that region keeps the photo); repeatable")

    g = p.add_argument_group("stability")
    g.add_argument("--normalize-gradients", action="store_true", default=S,
                   help="divide each loss term's gradient by its L1 norm (jcjohnson/neural-style)")
    g.add_argument("--ema", type=decay, default=S,
                   help="output the exponential moving average of the iterates, e.g. 0.99 (default: off)")
    g.add_argument("--tol", type=positive_float, default=S,
                   help="stop a scale once the mean pixel change per step (0-255) stays below this, "
                   "e.g. 0.05 (default: off)")
    g.add_argument("--tol-window", type=int_at_least(1), default=S,
                   help="steps averaged for --tol (default: 10)")


def resolve_region_styles(cfg: Config, styles: Sequence[str]) -> tuple[Config, list[str]]:
    """Regions may name a style by path: turn those into style numbers, appending new paths.

    ``--region red=starry.jpg`` with ``starry.jpg`` among the positional styles becomes ``red=N`` (its
    number); a path not among them is added to the style list.
    """
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
