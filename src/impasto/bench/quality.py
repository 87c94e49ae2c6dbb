"""An independent judge of style-transfer results: how stylised, how faithful to the photo, what colours.

``python -m impasto.bench quality CONTENT STYLE RESULT... [--json OUT] [--plot OUT.png]`` prints one line
per result; :func:`judge_images` is the library form (it never prints). Beside these VGG figures the
command prints the independent ones of :mod:`impasto.bench.independent` (luminance texture from a
log-Gabor bank, Gram statistics of random CNNs, the CIELAB distribution by sliced Wasserstein, structure
kept against the photo; :func:`independent_images`), which share neither network nor statistic with the
objective.

Why a separate judge: the objective's own loss cannot say whether one result is more stylised than
another made with other weights, other layers or another tool (jcjohnson/neural-style's reference
pictures). So the judge reads VGG19 layers that impasto's default objective does not optimise
(relu4_2 for content; relu1_1, relu2_1, relu3_1, relu4_1 for style, and relu5_1 in Gatys et al.'s set
and the presets), with its own statistics and
normalisation, and shares no code with :mod:`impasto.objective` or :mod:`impasto.losses` (only the
weights loader and the feature extractor of :mod:`impasto.vgg`, which merely runs the network):

* **style**: the relative Gram distance ‖G − A‖_F / ‖A‖_F, G the result's and A the painting's
  uncentred Gram matrix F·Fᵀ / (H·W) per position, averaged over relu1_2, relu2_2, relu3_3, relu4_3
  (post-ReLU: the Keras ``block1_conv2 ... block4_conv3`` that issue 10 measured with). 0 means the
  painting's texture statistics exactly; the number does not depend on the image size's units.
* **deep**: the same distance at relu5_2 alone (post-ReLU): large-scale structure, the swirls and
  masses. The issue's first figures used block5_conv1 = relu5_1, but that is a default *style* layer;
  relu5_2 is the nearest layer the objective does not read.
* **content**: ‖F − P‖_F / ‖P‖_F at relu3_3 (post-ReLU) between the result and the photo resized to
  the result's size: 0 is the photo itself.
* **color**: the Fréchet distance between Gaussian fits of the result's and the painting's pixels in
  CIELAB (D65): sqrt(‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½)), in ΔE units (for two flat
  images it is their CIE76 colour difference). It says whether the palette moved to the painting's.

The painting is resized so its long side equals the result's (impasto's and jcjohnson's default
``style_scale`` 1), the photo to the result's exact size, both with impasto's antialiased bicubic.
Results of different sizes are each judged at their own size unless ``size`` fixes one long side.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import torch
from torch import Tensor

from impasto.bench.colour import srgb_to_lab
from impasto.errors import ImpastoError
from impasto.vgg import VGGFeatures, VGGWeights, canonical_layer, load_weights

if TYPE_CHECKING:
    from impasto.bench.independent import IndependentScores

JUDGE_STYLE_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
JUDGE_DEEP_LAYERS: tuple[str, ...] = ("relu5_2",)
JUDGE_CONTENT_LAYERS: tuple[str, ...] = ("relu3_3",)


@dataclass(frozen=True)
class JudgeLayers:
    """The layers the judge reads; they must stay out of the objective being judged."""

    style: tuple[str, ...] = JUDGE_STYLE_LAYERS
    deep: tuple[str, ...] = JUDGE_DEEP_LAYERS
    content: tuple[str, ...] = JUDGE_CONTENT_LAYERS

    def all(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.style + self.deep + self.content))


@dataclass(frozen=True)
class Scores:
    """One result's distances (lower style/deep: more stylised; lower content: closer to the photo)."""

    style: float
    deep: float
    content: float
    color: float
    size: tuple[int, int]
    per_layer: dict[str, float] = field(default_factory=dict)
    """Relative Gram distance of every style and deep layer."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["size"] = list(self.size)
        return d


def overlap_with_objective(layers: JudgeLayers, objective_layers: Sequence[str]) -> list[str]:
    """Judge layers that an objective also optimises (canonical names); empty when the judge is independent."""
    mine = {canonical_layer(x) for x in layers.all()}
    return sorted(mine & {canonical_layer(x) for x in objective_layers})


# ---------------------------------------------------------------------------------------------------
# The statistics (pure functions of tensors, each with a hand-checkable definition)


def gram_per_position(f: Tensor) -> Tensor:
    """F·Fᵀ / (H·W) of features [C, H, W] (float64): the uncentred second moment per position."""
    c, h, w = f.shape
    flat = f.reshape(c, h * w).double()
    return flat @ flat.T / float(h * w)


def relative_distance(a: Tensor, ref: Tensor) -> float:
    """‖a − ref‖_F / ‖ref‖_F (inf when ref is all zeros and a is not; 0 when both are)."""
    num = float(torch.linalg.vector_norm((a - ref).double()))
    den = float(torch.linalg.vector_norm(ref.double()))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den


def _sqrtm_psd(m: Tensor) -> Tensor:
    vals, vecs = torch.linalg.eigh((m + m.T) / 2.0)
    root: Tensor = (vecs * vals.clamp_min(0.0).sqrt()) @ vecs.T
    return root


def color_distance(a: Tensor, b: Tensor) -> float:
    """Fréchet distance of Gaussian fits to the CIELAB pixels of images ``a`` and ``b`` [3, H, W]."""
    pa, pb = srgb_to_lab(a).reshape(3, -1), srgb_to_lab(b).reshape(3, -1)
    mu_a, mu_b = pa.mean(1), pb.mean(1)
    ca = torch.cov(pa, correction=0)
    cb = torch.cov(pb, correction=0)
    ra = _sqrtm_psd(ca)
    cross = _sqrtm_psd(ra @ cb @ ra)
    d2 = float((mu_a - mu_b).pow(2).sum() + torch.trace(ca + cb - 2.0 * cross))
    return math.sqrt(max(d2, 0.0))


# ---------------------------------------------------------------------------------------------------
# The judge


class QualityJudge:
    """Scores results of one content × style pair; targets are computed once per judged size."""

    def __init__(
        self, content: Tensor, style: Tensor, *, weights: VGGWeights | None = None,
        layers: JudgeLayers | None = None, size: int | None = None,
    ) -> None:
        """``content``, ``style``: [3, H, W] RGB in [0, 1]. ``size``: judge every result at this long side
        (None: at its own size)."""
        self.layers = layers if layers is not None else JudgeLayers()
        if not self.layers.style or not self.layers.content:
            raise ImpastoError("the judge needs at least one style layer and one content layer")
        self.weights = weights if weights is not None else load_weights(None)
        self.model = VGGFeatures(self.weights, self.layers.all(), "max")
        self.content = content
        self.style = style
        self.size = size
        self._targets: dict[tuple[int, int], tuple[dict[str, Tensor], dict[str, Tensor], Tensor]] = {}

    @torch.no_grad()
    def _features(self, rgb: Tensor) -> dict[str, Tensor]:
        feats = self.model(rgb.unsqueeze(0).float())
        return {k: v[0].contiguous() for k, v in feats.items()}

    def _targets_for(self, hw: tuple[int, int]) -> tuple[dict[str, Tensor], dict[str, Tensor], Tensor]:
        if hw not in self._targets:
            from impasto.io import resize_long_side, resize_to

            content = resize_to(self.content, hw)
            style = resize_long_side(self.style, max(hw))
            cf = self._features(content)
            sf = self._features(style)
            grams = {n: gram_per_position(sf[n]) for n in self.layers.style + self.layers.deep}
            self._targets[hw] = ({n: cf[n] for n in self.layers.content}, grams, style)
        return self._targets[hw]

    def __call__(self, result: Tensor) -> Scores:
        """Score ``result`` [3, H, W] RGB in [0, 1]."""
        if result.dim() != 3 or result.shape[0] != 3:
            raise ImpastoError(f"a result must be a [3, H, W] RGB image (got shape {tuple(result.shape)})")
        x = result.float().clamp(0.0, 1.0)
        if self.size is not None:
            from impasto.io import resize_long_side

            x = resize_long_side(x, self.size)
        hw = (int(x.shape[1]), int(x.shape[2]))
        content_t, grams, style_img = self._targets_for(hw)
        feats = self._features(x)
        gram_layers = self.layers.style + self.layers.deep
        per = {n: relative_distance(gram_per_position(feats[n]), grams[n]) for n in gram_layers}
        content = sum(relative_distance(feats[n], content_t[n]) for n in self.layers.content) / len(self.layers.content)
        style = sum(per[n] for n in self.layers.style) / len(self.layers.style)
        deep = sum(per[n] for n in self.layers.deep) / len(self.layers.deep) if self.layers.deep else math.nan
        return Scores(style=style, deep=deep, content=content, color=color_distance(x, style_img), size=hw,
                      per_layer=per)


def judge_images(
    content: str | os.PathLike[str], style: str | os.PathLike[str], results: Sequence[str | os.PathLike[str]],
    *, weights: VGGWeights | None = None, size: int | None = None, layers: JudgeLayers | None = None,
) -> list[Scores]:
    """Score image files (the library form of ``python -m impasto.bench quality``)."""
    from impasto.io import load_image

    judge = QualityJudge(load_image(content).rgb, load_image(style).rgb, weights=weights, layers=layers, size=size)
    return [judge(load_image(r).rgb) for r in results]


def seconds_of(path: str | os.PathLike[str]) -> float | None:
    """The wall time impasto recorded in an output image's metadata (``seconds``), if any."""
    from impasto.io import read_metadata

    try:
        meta = read_metadata(path)
    except (ImpastoError, OSError, ValueError):
        return None
    value = meta.get("seconds") if isinstance(meta, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


# ---------------------------------------------------------------------------------------------------
# The trade-off plot


@dataclass(frozen=True)
class PlotPoint:
    label: str
    scores: Scores
    seconds: float | None = None
    reference: bool = False
    group: str | None = None
    """Points of one group (e.g. one photo × painting pair) share a colour; None: a colour each."""
    hollow: bool = False
    """An unfilled marker (e.g. a result before a change, beside the filled one after it)."""


def plot_tradeoff(points: Sequence[PlotPoint], path: str | os.PathLike[str], title: str = "") -> None:
    """Content distance (x) against style distance (left) and deep distance (right), one numbered
    marker per result; the legend gives each number's label and wall time.

    Down and left is better on both axes; a point that moves down at equal x bought stylisation without
    losing the photo."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from impasto.io import atomic_write

    fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.6))
    groups = list(dict.fromkeys(p.group for p in points if p.group is not None))
    for i, p in enumerate(points, start=1):
        index = groups.index(p.group) if p.group is not None else i - 1
        colour = f"C{index % 10}"
        marker = "*" if p.reference else "o"
        secs = f", {p.seconds:.0f} s" if p.seconds is not None else ""
        for ax, y in zip(axes, (p.scores.style, p.scores.deep)):
            ax.scatter([p.scores.content], [y], s=150 if p.reference else 60, marker=marker, zorder=3,
                       facecolors="none" if p.hollow else colour, edgecolors=colour,
                       label=f"{i}: {p.label}{secs}" if ax is axes[0] else None)
            ax.annotate(str(i), (p.scores.content, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    axes[0].set_ylabel("style distance (Gram, relu1_2 … relu4_3)")
    axes[1].set_ylabel("deep distance (Gram, relu5_2)")
    for ax in axes:
        ax.set_xlabel("content distance (relu3_3) → less like the photo")
        ax.grid(alpha=0.3)
    fig.legend(loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(title or "quality trade-off (lower is better on every axis)", fontsize=10)
    fig.tight_layout(rect=(0.0, 0.05 + 0.035 * ((len(points) + 1) // 2), 1.0, 1.0))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, lambda fh: fig.savefig(fh, dpi=110, format="png"))
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------
# Command line


def format_rows(labels: Sequence[str], scores: Sequence[Scores], seconds: Sequence[float | None],
                independent: Sequence[IndependentScores] | None = None) -> str:
    """One line per result: the VGG figures, then (when given) the independent ones of
    :mod:`impasto.bench.independent` (0 = the painting, 1 = the photo)."""
    head = f"{'result':40s} {'size':>9s} {'style':>7s} {'deep':>7s} {'content':>8s} {'color':>7s} {'seconds':>8s}"
    if independent is not None:
        head += f" {'texture':>8s} {'cnn':>7s} {'colorSW':>8s} {'struct':>7s}"
    lines = [head, "-" * len(head)]
    for i, (lab, s, t) in enumerate(zip(labels, scores, seconds)):
        size = f"{s.size[1]}x{s.size[0]}"
        secs = f"{t:.1f}" if t is not None else "-"
        line = (f"{lab[-40:]:40s} {size:>9s} {s.style:7.3f} {s.deep:7.3f} {s.content:8.3f} {s.color:7.2f} "
                f"{secs:>8s}")
        if independent is not None:
            ind = independent[i]
            line += f" {ind.texture:8.3f} {ind.cnn:7.3f} {ind.color:8.3f} {ind.structure:7.3f}"
        lines.append(line)
    return "\n".join(lines)


def independent_images(
    content: str | os.PathLike[str], style: str | os.PathLike[str], results: Sequence[str | os.PathLike[str]],
    *, size: int | None = None,
) -> list[IndependentScores]:
    """The independent figures of image files, each judged at its own size or at long side ``size``."""
    from impasto.bench.independent import IndependentJudge
    from impasto.io import load_image, resize_long_side

    judge = IndependentJudge(load_image(content).rgb, load_image(style).rgb)
    out = []
    for r in results:
        x = load_image(r).rgb
        out.append(judge(resize_long_side(x, size) if size is not None else x))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m impasto.bench quality",
        description="Judge style-transfer results on layers impasto's default objective does not use.",
    )
    p.add_argument("content", type=Path, help="the photo")
    p.add_argument("style", type=Path, help="the painting")
    p.add_argument("results", type=Path, nargs="+", help="result images")
    p.add_argument("--json", type=Path, default=None, help="write the scores here")
    p.add_argument("--plot", type=Path, default=None, help="write the content × style plot here (PNG)")
    p.add_argument("--size", type=int, default=None, help="judge every result at this long side")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="VGG19 weights (default: the bundled VGG19; other weights give other numbers)")
    p.add_argument("--labels", nargs="+", default=None, help="one label per result (default: file names)")
    p.add_argument("--seconds", type=float, nargs="+", default=None,
                   help="one wall time per result (default: impasto's 'seconds' metadata, when present)")
    p.add_argument("--no-independent", action="store_true",
                   help="skip the independent figures (texture, random-CNN Gram, CIELAB sliced Wasserstein, "
                        "structure; impasto.bench.independent)")
    p.add_argument("--reference", type=int, nargs="*", default=[],
                   help="0-based indices of results to draw as references (stars)")
    args = p.parse_args(argv)
    n = len(args.results)
    if args.labels is not None and len(args.labels) != n:
        raise ImpastoError(f"--labels needs {n} labels, one per result (got {len(args.labels)})")
    if args.seconds is not None and len(args.seconds) != n:
        raise ImpastoError(f"--seconds needs {n} values, one per result (got {len(args.seconds)})")
    if any(not 0 <= i < n for i in args.reference):
        raise ImpastoError(f"--reference indices must be between 0 and {n - 1}")
    if args.size is not None and args.size < 16:
        raise ImpastoError(f"--size must be at least 16 (got {args.size})")
    for path in (args.content, args.style, *args.results):
        if not path.is_file():
            raise ImpastoError(f"no such image: {path}")
    weights = load_weights(args.weights) if args.weights else None
    scores = judge_images(args.content, args.style, args.results, size=args.size, weights=weights)
    labels = args.labels or [str(r) for r in args.results]
    seconds = args.seconds or [seconds_of(r) for r in args.results]
    independent = (None if args.no_independent
                   else independent_images(args.content, args.style, args.results, size=args.size))
    sys.stdout.write(format_rows(labels, scores, seconds, independent) + "\n")
    if args.json is not None:
        from impasto.io import atomic_write

        doc = {"judge": {"style": list(JUDGE_STYLE_LAYERS), "deep": list(JUDGE_DEEP_LAYERS),
                         "content": list(JUDGE_CONTENT_LAYERS), "size": args.size},
               "content": str(args.content), "style": str(args.style),
               "independent": None if independent is None else {
                   "module": "impasto.bench.independent",
                   "reads": "0 = the painting (texture, cnn, color: its 3/4 crops' mean distance to it), "
                            "1 = the photo; structure: 0 = the painting, 1 = the photo's own orientations"},
               "results": [{"image": str(r), "label": lab, "seconds": t, **s.to_dict(),
                            **({} if independent is None else {"independent": independent[i].to_dict()})}
                           for i, (r, lab, t, s) in enumerate(zip(args.results, labels, seconds, scores))]}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(doc, indent=1).encode()

        def write(fh: BinaryIO) -> None:
            fh.write(text)

        atomic_write(args.json, write)
    if args.plot is not None:
        pts = [PlotPoint(lab, s, t, i in args.reference) for i, (lab, s, t) in enumerate(zip(labels, scores, seconds))]
        plot_tradeoff(pts, args.plot, f"{args.content.name} × {args.style.name}")
    return 0
