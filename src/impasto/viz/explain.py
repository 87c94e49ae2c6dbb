"""A contact sheet of what style transfer does: ``impasto explain CONTENT STYLE [RESULT] -o sheet.png``.

Rows, top to bottom:
  1. content, style and result side by side;
  2. the first channels of the VGG feature maps at one layer, for all three images;
  3. Gram matrices at one layer as heatmaps (what the style loss compares);
  4. horizontal and vertical high-pass deltas (neighbour differences, as the TV loss sees them) and Sobel
     edge magnitudes of content and result: how much of the content's structure survives;
  5. the loss terms over the steps of a run (from RESULT's metadata, or from a short run made here).

matplotlib (Agg backend) is imported lazily, so the core never needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto import losses
from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.inputs import ImageLike, as_rgb
from impasto.io.atomic import atomic_write
from impasto.io.images import resize_to, scaled_size
from impasto.vgg.features import VGGFeatures, canonical_layer
from impasto.vgg.weights import VGGWeights, load_weights


@dataclass
class LossHistory:
    """Weighted loss terms per step of one run."""

    steps: list[int] = field(default_factory=list)
    terms: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def from_metadata(cls, meta: dict[str, Any] | None) -> LossHistory | None:
        """The ``loss_history`` an impasto run stores in its output (None if there is none)."""
        lh = (meta or {}).get("loss_history")
        if not isinstance(lh, dict) or not lh.get("rows"):
            return None
        cols = list(lh["columns"])
        out = cls(steps=[int(r[0]) for r in lh["rows"]])
        for j, name in enumerate(cols[1:], start=1):
            out.terms[name] = [float(r[j]) for r in lh["rows"]]
        return out


def short_run(content: Tensor, style: Tensor, config: Config, weights: VGGWeights) -> tuple[Tensor, LossHistory]:
    """Stylise with ``config`` and record every step's loss terms."""
    hist = LossHistory(terms={"loss": [], "content": [], "style": [], "tv": []})
    image: Tensor | None = None
    for ev in StyleTransfer(content, [style], config, weights=weights).run():
        if ev.done:
            image = ev.image
            break
        hist.steps.append(ev.step)
        for k, v in (("loss", ev.loss), ("content", ev.content), ("style", ev.style), ("tv", ev.tv)):
            hist.terms[k].append(v)
    assert image is not None
    return image, hist


def _gray(x: Tensor) -> Tensor:
    """[3, H, W] RGB -> [1, 1, H, W] luma (Rec. 601)."""
    w = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    return (x * w).sum(0)[None, None]


def high_pass(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(horizontal delta, vertical delta, Sobel magnitude) of an RGB image's luma, each [H, W].

    The deltas are x[i, j+1] − x[i, j] and x[i+1, j] − x[i, j] (zero-padded to the image size): the
    neighbour differences the total-variation loss penalises.
    """
    g = _gray(x)
    dx = F.pad(g[..., :, 1:] - g[..., :, :-1], (0, 1, 0, 0))
    dy = F.pad(g[..., 1:, :] - g[..., :-1, :], (0, 0, 0, 1))
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
    gp = F.pad(g, (1, 1, 1, 1), mode="replicate")
    sx = F.conv2d(gp, kx)
    sy = F.conv2d(gp, kx.transpose(2, 3))
    return dx[0, 0], dy[0, 0], (sx.pow(2) + sy.pow(2)).sqrt()[0, 0]


def contact_sheet(
    content: ImageLike,
    style: ImageLike,
    result: ImageLike | None,
    path: str | Path,
    *,
    feature_layer: str = "relu2_1",
    gram_layer: str = "relu3_1",
    channels: int = 4,
    gram_channels: int = 48,
    history: LossHistory | None = None,
    config: Config | None = None,
    weights: VGGWeights | None = None,
    size: int = 256,
) -> Path:
    """Draw the contact sheet to ``path`` (PNG). Without ``result`` (or without ``history``) a short run
    with ``config`` (default: impasto's own at ``size`` px, 60 steps, one scale) supplies them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = config if config is not None else Config(size=size, start_size=None, steps=60)
    w = weights if weights is not None else load_weights(cfg.weights, fmt=cfg.weights_format)
    c, s = as_rgb(content), as_rgb(style)
    ran_here = False
    if result is None or history is None:
        r_run, history = short_run(c, s, cfg, w)
        ran_here = True
        r = as_rgb(result) if result is not None else r_run
    else:
        r = as_rgb(result)
    h0, w0 = int(c.shape[-2]), int(c.shape[-1])
    hw = scaled_size(h0, w0, size)
    c, r = resize_to(c, hw), resize_to(r, hw)
    s = resize_to(s, scaled_size(int(s.shape[-2]), int(s.shape[-1]), size))

    fl, gl = canonical_layer(feature_layer, w.arch), canonical_layer(gram_layer, w.arch)
    model = VGGFeatures(w, [fl, gl], cfg.pooling)
    with torch.no_grad():
        feats = {k: model(x[None]) for k, x in (("content", c), ("style", s), ("result", r))}

    ncol = 3 * channels
    fig = plt.figure(figsize=(ncol * 1.5, 15.5), dpi=100)
    gs = fig.add_gridspec(5, ncol, height_ratios=[3.0, 1.4, 2.6, 1.6, 2.4], hspace=0.45, wspace=0.12)
    names = ("content", "style", "result")
    span = channels
    # 1. the three images
    for i, (name, img) in enumerate(zip(names, (c, s, r))):
        ax = fig.add_subplot(gs[0, i * span:(i + 1) * span])
        ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set_title(name if name != "result" or not ran_here or result is not None
                     else f"result ({cfg.steps} steps here)", fontsize=11)
        ax.axis("off")
    # 2. feature maps
    for i, name in enumerate(names):
        f = feats[name][fl][0]
        for k in range(min(channels, f.shape[0])):
            ax = fig.add_subplot(gs[1, i * span + k])
            ax.imshow(f[k].numpy(), cmap="viridis")
            ax.set_title(f"{name} {fl}[{k}]", fontsize=7)
            ax.axis("off")
    # 3. Gram matrices, one colour scale for all three so they can be compared
    grams = {n: losses.gram_matrix(feats[n][gl], "chw")[0, :gram_channels, :gram_channels] for n in names}
    vmax = max(float(g.abs().max()) for g in grams.values()) or 1.0
    for i, name in enumerate(names):
        ax = fig.add_subplot(gs[2, i * span:(i + 1) * span])
        im = ax.imshow(grams[name].numpy(), cmap="magma", vmin=0.0, vmax=vmax)
        ax.set_title(f"Gram {gl} ({name}, first {gram_channels} ch, /CHW)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=fig.axes[-1], fraction=0.046, pad=0.02)
    # 4. high-pass deltas and Sobel edges of content and result
    panels = []
    for name, img in (("content", c), ("result", r)):
        dx, dy, sob = high_pass(img)
        panels += [(f"{name} Δx", dx, "RdBu_r"), (f"{name} Δy", dy, "RdBu_r"), (f"{name} Sobel", sob, "gray")]
    per = ncol // 6
    for k, (title, t, cmap) in enumerate(panels):
        ax = fig.add_subplot(gs[3, k * per:(k + 1) * per])
        if cmap == "RdBu_r":
            lim = float(t.abs().quantile(0.99)) or 1.0
            ax.imshow(t.numpy(), cmap=cmap, vmin=-lim, vmax=lim)
        else:
            ax.imshow(t.numpy(), cmap=cmap, vmin=0.0, vmax=float(t.quantile(0.99)) or 1.0)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    # 5. loss curves
    ax = fig.add_subplot(gs[4, :])
    assert history is not None
    for name, vals in history.terms.items():
        if vals and max(vals) > 0:
            ax.plot(history.steps, vals, label=name, lw=1.6 if name == "loss" else 1.2)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("weighted loss")
    ax.set_title("loss terms per step" + (" (short run made for this sheet)" if ran_here else ""), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=9)
    out = Path(path)
    try:
        atomic_write(out, lambda fh: fig.savefig(fh, format="png", bbox_inches="tight"))
    finally:
        plt.close(fig)
    return out


__all__ = ["LossHistory", "contact_sheet", "high_pass", "short_run"]
