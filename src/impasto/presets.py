"""Named configurations that reproduce classic write-ups of Gatys-style transfer.

Each :class:`Preset` builds a :class:`~impasto.config.Config` whose every number is the source's; the
few places where impasto cannot or will not do exactly what the source does are listed in the preset's
``notes`` (they also travel in ``Config.notes``, so ``--show-config`` and every output's
metadata carry them). Two departures are common to all (:data:`COMMON_NOTES`): impasto always applies
the preprocessing its weights need (Caffe BGR mean subtraction for the bundled VGG19), whatever the
write-up did to its own network's inputs; and its divergence guard (``Config.restart_factor``) stays
on, which changes nothing unless the loss jumps a thousandfold above its lowest value.

Python API::

    from impasto.presets import preset_config
    cfg = preset_config("tf-tutorial").replace(size=256)

The impasto default (``Config()``) is *not* the ``gatys`` preset: see :data:`DEFAULT_CHOICE`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from impasto.config import Config
from impasto.errors import ImpastoError

COMMON_NOTES = (
    "impasto always applies the preprocessing its weights need (the bundled VGG19 is Caffe's: BGR, 0-255, "
    "minus the ImageNet mean), whatever the write-up fed its own network",
    "impasto's divergence guard stays on (restart_factor 1000): if the loss jumps above 1000x its lowest value "
    "the run goes back to its best image and restarts the optimiser, where the write-up would go on from "
    "the jump (it fired for pytorch-stylecnn on an H100; --restart-factor none turns it off)",
)

FIVE_RELU = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
"""conv1_1 … conv5_1 as Caffe, MatConvNet-graph and the paper mean them: after the ReLU."""
FIVE_KERAS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
"""The same layers in Keras spelling (a Keras Conv2D includes its ReLU, so these are post-ReLU too)."""
TORCH_TUTORIAL_STYLE = ("conv_1", "conv_2", "conv_3", "conv_4", "conv_5")
"""PyTorch tutorial names, counting convolutions: conv1_1, conv1_2, conv2_1, conv2_2, conv3_1, pre-ReLU."""

PYTORCH_STYLECNN_CONTENT_W = 1.0
PYTORCH_STYLECNN_STYLE_W = 1000.0
"""The tutorial's weights, applied *inside* the MSE: MSE(w·x, w·y) = w²·MSE(x, y), so the Config holds w²."""


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    """One line for ``impasto presets``."""
    factory: Callable[[], Config]
    """Builds the source's configuration (without the preset's name and notes)."""
    notes: tuple[str, ...]
    """Where impasto departs from the source, and how the source's names were read."""
    cli_defaults: dict[str, int] = field(default_factory=dict)
    """Front-end behaviour the source has (``save_every``, ``print_every``), used unless flags say otherwise."""
    needs_arch: str | None = None
    """``"vgg16"``: the source's network is not the bundled VGG19; the user must supply weights or accept VGG19."""


def _coursera() -> Config:
    return Config(
        # The sources' L-BFGS has no trust region: impasto's step limit is off in presets.
        lbfgs_max_step=None,
        pooling="avg",
        content_layers=("relu4_2",),
        style_layers=FIVE_RELU,
        style_layer_weights=(0.2, 0.2, 0.2, 0.2, 0.2),
        content_loss="coursera",
        gram_norm="none",
        style_loss="paper",
        tv_weight=0.0,
        content_weight=10.0,
        style_weight=40.0,
        optimizer="adam",
        lr=2.0,
        adam_betas=(0.9, 0.999),
        adam_eps=1e-8,
        pixel_scale=255.0,
        clamp=False,
        init="blend",
        noise="uniform",
        noise_scale=20.0 / 255.0,
        noise_mean=None,
        noise_ratio=0.6,
        steps=200,
        size=400,
        start_size=None,
        seed=0,
    )


def _pytorch_stylecnn() -> Config:
    return Config(
        # The sources' L-BFGS has no trust region: impasto's step limit is off in presets.
        lbfgs_max_step=None,
        pooling="max",
        content_layers=("conv_4",),
        style_layers=TORCH_TUTORIAL_STYLE,
        style_layer_weights=None,
        content_loss="mse",
        gram_norm="abcd",
        style_loss="mse",
        content_weight=PYTORCH_STYLECNN_CONTENT_W**2,
        style_weight=PYTORCH_STYLECNN_STYLE_W**2,
        tv_weight=0.0,
        optimizer="lbfgs",
        lr=1.0,
        lbfgs_history=100,
        lbfgs_max_iter=20,
        lbfgs_line_search=False,
        pixel_scale=1.0,
        clamp=True,
        clamp_before_eval=True,
        init="noise",
        noise="gaussian",
        noise_scale=1.0,
        noise_mean=0.0,
        steps=31,
        size=256,
        start_size=None,
        seed=0,
    )


def _tf_tutorial() -> Config:
    return Config(
        # The sources' L-BFGS has no trust region: impasto's step limit is off in presets.
        lbfgs_max_step=None,
        pooling="max",
        content_layers=("block5_conv2",),
        style_layers=FIVE_KERAS,
        style_layer_weights=(0.2, 0.2, 0.2, 0.2, 0.2),
        content_loss="mse",
        gram_norm="hw",
        style_loss="mse",
        content_weight=1e4,
        style_weight=1e-2,
        tv_weight=30.0,
        tv_loss="l1",
        optimizer="adam",
        lr=0.02,
        adam_betas=(0.99, 0.999),
        adam_eps=0.1,
        pixel_scale=1.0,
        clamp=True,
        init="content",
        steps=1000,
        size=512,
        start_size=None,
        seed=0,
    )


def _keras_white() -> Config:
    return Config(
        # The sources' L-BFGS has no trust region: impasto's step limit is off in presets.
        lbfgs_max_step=None,
        weights=None,
        pooling="max",
        content_layers=("block4_conv2",),
        style_layers=FIVE_KERAS,
        style_layer_weights=(0.2, 0.2, 0.2, 0.2, 0.2),
        content_loss="sse",
        gram_norm="none",
        style_loss="keras",
        content_weight=1e-2,
        style_weight=1.0,
        tv_weight=0.0,
        optimizer="lbfgs",
        lr=1.0,
        lbfgs_max_iter=20,
        pixel_scale=255.0,
        clamp=False,
        init="preprocessed-ones",
        steps=10,
        size=400,
        start_size=None,
        seed=0,
    )


def _gatys() -> Config:
    return Config(
        # The sources' L-BFGS has no trust region: impasto's step limit is off in presets.
        lbfgs_max_step=None,
        pooling="avg",
        content_layers=("relu4_2",),
        style_layers=FIVE_RELU,
        style_layer_weights=(0.2, 0.2, 0.2, 0.2, 0.2),
        content_loss="half_sse",
        gram_norm="none",
        style_loss="paper",
        content_weight=1.0,
        style_weight=1e3,
        tv_weight=0.0,
        optimizer="lbfgs",
        lr=1.0,
        lbfgs_max_iter=1,
        pixel_scale=255.0,
        clamp=False,
        init="noise",
        noise="gaussian",
        noise_scale=0.1,
        noise_mean=None,
        steps=500,
        size=512,
        start_size=None,
        seed=0,
    )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "coursera",
            "deeplearning.ai assignment: VGG19 avg-pool, conv4_2 + 5 style layers ×0.2, α=10 β=40, Adam lr 2, "
            "200 its from 60% noise",
            _coursera,
            (
                "conv4_2 etc. are the assignment's conv+ReLU graph nodes (load_vgg_model's _conv2d_relu), "
                "so impasto reads them as relu4_2, relu1_1 …",
                "average pooling, as the assignment's load_vgg_model builds its graph",
                "the assignment's MatConvNet VGG19 takes RGB minus the mean; the bundled Caffe VGG19 is the "
                "same network in BGR order",
                "the noise U(−20, 20) in mean-subtracted 0-255 units is the ImageNet mean colour ± 20/255 "
                "in pixels; the blend 0.6·noise + 0.4·content is the same in both spaces",
                "the assignment needs 400×300 inputs; impasto resizes the long side to 400 keeping the "
                "aspect, and rescales the un-normalised style Gram to the output's size if the painting's "
                "shape differs",
                "pixels are not clipped during optimisation, only when saved (as the assignment)",
                "TF1 Adam adds ε to the un-bias-corrected √v; at ε = 1e-8 the difference is negligible",
            ),
            cli_defaults={"save_every": 20, "print_every": 20},
        ),
        Preset(
            "pytorch-stylecnn",
            "PyTorch tutorial: VGG19 conv_4 / conv_1..5 (pre-ReLU), Gram/abcd, weights 1 and 1000 inside "
            "the MSE, L-BFGS 31×20 from N(0,1) at 256 px",
            _pytorch_stylecnn,
            (
                "conv_N counts convolutions: conv_4 = conv2_2, conv_1..conv_5 = conv1_1, conv1_2, conv2_1, "
                "conv2_2, conv3_1, taken before the ReLU (the tutorial's ReLUs come after these layers)",
                "the tutorial applies its weights inside the MSE, MSE(w·x, w·y) = w²·MSE: impasto's "
                f"content_weight = {PYTORCH_STYLECNN_CONTENT_W:g}² and style_weight = "
                f"{PYTORCH_STYLECNN_STYLE_W:g}² = {PYTORCH_STYLECNN_STYLE_W**2:g}",
                "one step = one optimizer.step() of torch's L-BFGS with its default max_iter = 20 inner "
                "iterations; impasto sets the gradient/change tolerances to 0, so all 20 always run",
                "the tutorial uses torchvision's VGG19 (inputs normalised by the ImageNet mean/std); with the "
                "bundled Caffe VGG19 the activations are larger, so the same weights give a more "
                "style-dominated balance; pass torchvision weights (--weights vgg19-dcbb9e9d.pth) for the "
                "tutorial's exact network",
                "the tutorial squashes both images to 256×256; impasto keeps the aspect (long side 256)",
                "the initial image is torch.randn in [0, 1] pixel units, clamped to [0, 1] before every "
                "evaluation (inside the closure) and at the end",
            ),
            cli_defaults={"save_every": 10},
        ),
        Preset(
            "tf-tutorial",
            "TensorFlow tutorial: VGG19 block5_conv2 / block1..5_conv1, Gram/HW, weights 1e4 and 1e-2, TV 30, "
            "Adam 0.02 (β1 0.99, ε 0.1) 1000 steps",
            _tf_tutorial,
            (
                "block layers are Keras Conv2D outputs, which include the ReLU: relu5_2, relu1_1 …",
                "style loss Σ mean((G − A)²)·style_weight/5 is written as per-layer weights 0.2 and "
                "style_weight 1e-2; content loss mean((F − P)²)·1e4/1",
                "Adam runs on [0, 1] pixels (pixel_scale 1) because ε = 0.1 is not scale-invariant; Keras' "
                "Adam adds ε to the un-bias-corrected √v where torch adds it to the corrected one, so "
                "impasto's ε = 0.1 damps the first steps a little less",
                "TV is tf.image.total_variation (sum of absolute differences) on [0, 1] pixels, weight 30",
            ),
            cli_defaults={"save_every": 100},
        ),
        Preset(
            "keras-white",
            "Keras example (VGG16): conv4_2 / conv1..5_1 ×1/5, Σ(G−A)²/(36·(rows·cols)²), content/style "
            "1e-2, from the 'white image'",
            _keras_white,
            (
                "needs VGG16 weights from the user (--weights FILE); --allow-vgg19 runs it on the bundled "
                "VGG19 instead, which is not the write-up's network",
                "conv4_2 etc. are Keras block4_conv2 …, which include the ReLU",
                "the style normaliser 36 = 4·3² because the example hard-codes channels = 3, and rows·cols "
                "is the image's pixel count at every layer",
                "the 'white image' is ones in the preprocessed (BGR, mean-subtracted) space: the ImageNet "
                "mean colour plus 1/255, a flat grey-brown",
                "the example's scipy L-BFGS-B (20 function evaluations per iteration, 10 iterations) is "
                "torch's L-BFGS with 20 inner iterations per step, 10 steps",
                "the numbers quoted name no total-variation term, so tv_weight is 0",
                "the example fixes the height to 400; impasto makes the long side 400",
                "known problem: torch's L-BFGS (no line search) hardly moves the flat start at these loss "
                "magnitudes, so a few steps give a flat grey image, and its strong-Wolfe line search "
                "overflows to NaN; the example's scipy L-BFGS-B line-searches in float64",
            ),
            needs_arch="vgg16",
        ),
        Preset(
            "gatys",
            "Gatys et al. 2016: VGG19 avg-pool, conv4_2 / conv1..5_1 ×1/5, E_l = Σ(G−A)²/(4N²M²), α/β 1e-3, "
            "L-BFGS from white noise",
            _gatys,
            (
                "conv4_2 etc. are Caffe layers, whose ReLU is in place, so they are post-ReLU: relu4_2 …",
                "content loss ½Σ(F − P)² (eq. 1), content_weight 1 and style_weight 1e3 give α/β = 1e-3",
                "the paper names no step count or image size; impasto uses 500 single-iteration L-BFGS "
                "steps (no line search) at 512 px, one scale",
                "white noise is Gaussian with std 0.1 around the ImageNet mean colour",
                "pixels are not clipped during optimisation, only when saved (the paper says nothing of it)",
            ),
        ),
    )
}

DEFAULT_CHOICE = (
    "impasto's default stays its own, not the gatys preset: with the paper's un-normalised losses from white "
    "noise, 60 L-BFGS steps at 256 px still left a noisy, psychedelic image (tools/examples_issue3.py), "
    "while the default starts from the content photo, so every step is already a recognisable image, and "
    "its normalised losses keep the content/style balance when the image size changes (the paper's "
    "1/(4N²M²) with raw content sums does not); no equal-time side-by-side was measured"
)


def names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ImpastoError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})") from None


def preset_config(name: str, *, weights: str | None = None, allow_vgg19: bool = False) -> Config:
    """The configuration of preset ``name``, with its name in ``preset`` and its departures in ``notes``.

    For a preset whose source used another network (``keras-white``: VGG16) give ``weights``, or pass
    ``allow_vgg19=True`` to accept the bundled VGG19 in its place; otherwise this raises ImpastoError.
    """
    p = get_preset(name)
    cfg = p.factory()
    notes = [*p.notes, *COMMON_NOTES]
    changes: dict[str, Any] = {}
    if weights is not None:
        changes["weights"] = weights
    cfg = cfg.replace(preset=p.name, notes=tuple(notes), **changes)
    check_weights(cfg, allow_vgg19=allow_vgg19)
    return cfg


def check_weights(cfg: Config, *, allow_vgg19: bool = False) -> None:
    """Refuse to run a VGG16 preset on the bundled VGG19 unless the user accepted the substitution."""
    name = cfg.preset
    if name is None or name not in PRESETS:
        return
    p = PRESETS[name]
    if p.needs_arch is not None and cfg.weights is None and not allow_vgg19:
        raise ImpastoError(
            f"preset {name} uses {p.needs_arch.upper()}, which impasto does not bundle: pass its weights with "
            f"--weights FILE, or add --allow-vgg19 to run it on the bundled VGG19 instead"
        )


def mark_vgg19_substitute(cfg: Config) -> Config:
    """Record in ``notes`` that a VGG16 preset ran on the bundled VGG19 (so the output's metadata says so)."""
    name = cfg.preset
    if name is not None and name in PRESETS and PRESETS[name].needs_arch and cfg.weights is None:
        note = f"bundled VGG19 in place of {PRESETS[name].needs_arch}"
        return cfg.replace(notes=(*cfg.notes, note))
    return cfg


__all__ = [
    "DEFAULT_CHOICE", "PRESETS", "Preset", "check_weights", "get_preset", "mark_vgg19_substitute",
    "names", "preset_config",
]
