"""What the engine starts from and what it hands back: the device, the inputs as tensors (with colour
preservation and region masks applied), the start image, and the post-steps on a result.

Kept apart from :mod:`impasto.engine` so the engine is the optimisation loop and nothing else.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import torch
from torch import Tensor

from impasto.config import Config
from impasto.errors import ImpastoError
from impasto.io import LoadedImage, load_image, resize_to
from impasto.losses import color
from impasto.regions import RegionMasks
from impasto.vgg import Preprocess

ImageLike = Union[Tensor, LoadedImage, str, "os.PathLike[str]"]

# ImageNet mean colour as RGB in [0, 1] (the Caffe BGR mean 103.939, 116.779, 123.68, reordered): the
# centre of noise initialisations, so noise starts where the network's inputs are centred.
IMAGENET_MEAN_RGB = (123.68 / 255.0, 116.779 / 255.0, 103.939 / 255.0)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; asking for an absent device is an error."""
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ImpastoError("device 'cuda' asked for, but this torch build sees no CUDA GPU")
    if name == "mps" and not mps:
        raise ImpastoError("device 'mps' asked for, but Apple MPS is not available here")
    if name not in ("cpu", "cuda", "mps"):
        raise ImpastoError(f"unknown device {name!r} (use auto, cpu, cuda or mps)")
    return torch.device(name)


def as_rgb(image: ImageLike) -> Tensor:
    """Any accepted image input as a float32 [3, H, W] RGB tensor in [0, 1]."""
    if isinstance(image, LoadedImage):
        return image.rgb
    if isinstance(image, Tensor):
        t = image.detach().float()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] != 3:
            raise ImpastoError(f"an image tensor must be [3, H, W] RGB in [0, 1] (got {tuple(image.shape)})")
        return t.clamp(0.0, 1.0)
    return load_image(image).rgb


def seed_of(cfg: Config) -> int:
    return cfg.seed if cfg.seed is not None else int(time.time_ns() % 2**31)


@dataclass
class Inputs:
    """The images as the objective sees them."""

    content: Tensor
    """[3, H, W]; luminance only with ``preserve_color='luminance'``."""
    styles: list[Tensor]
    """Recoloured (``match``) or luminance-only (``luminance``) when colour is preserved."""
    content_rgb: Tensor
    """The untouched photo, for putting its colours back into the result (:func:`finish`)."""
    blend: list[float]
    """Style blend weights, summing to 1."""
    regions: RegionMasks | None

    @classmethod
    def prepare(cls, content: ImageLike, styles: Sequence[ImageLike], cfg: Config) -> Inputs:
        if not styles and cfg.style_weight > 0 and cfg.style_layers:
            raise ImpastoError("at least one style image is needed")
        if cfg.style_blend_weights is not None and len(cfg.style_blend_weights) != len(styles):
            raise ImpastoError(f"{len(cfg.style_blend_weights)} style weights given for {len(styles)} style images")
        rgb = as_rgb(content)
        style_rgb = [as_rgb(s) for s in styles]
        content_t = rgb
        # Colour preservation (Gatys et al. 2017) changes the inputs.
        if cfg.preserve_color == "match":
            style_rgb = [color.match_color(s, rgb) for s in style_rgb]
        elif cfg.preserve_color == "luminance":
            style_rgb = [color.luminance_only(s, reference=rgb) for s in style_rgb]
            content_t = color.luminance_only(rgb)
        regions = RegionMasks.from_image(load_image(cfg.mask).rgb, cfg.regions, len(style_rgb)) if cfg.mask else None
        bw = cfg.style_blend_weights or tuple(1.0 for _ in style_rgb)
        total = float(sum(bw)) or 1.0
        return cls(content_t, style_rgb, rgb, [w / total for w in bw], regions)


def palette_start(content: Tensor, styles: Sequence[Tensor], blend: Sequence[float] | None = None) -> Tensor:
    """The photo recoloured to the paintings' colour mean and covariance (their blend's mixture).

    Why start there (``init="palette"``): the palette is the lowest-frequency part of a style and the
    slowest for L-BFGS to reach from the photo on hundreds of thousands of pixels; started with it, a
    run spends its steps on texture and structure (issue 10, docs/quality.md)."""
    if not styles:
        raise ImpastoError("init 'palette' needs at least one style image")
    weights = list(blend) if blend is not None else [1.0 / len(styles)] * len(styles)
    mu, cov = color.blended_stats(list(styles), weights)
    return color.match_color_stats(content, mu, cov)


def initial_image(cfg: Config, content: Tensor, size: tuple[int, int], preprocess: Preprocess,
                  styles: Sequence[Tensor] | None = None, blend: Sequence[float] | None = None) -> Tensor:
    """Starting pixels [1, 3, H, W] in [0, 1] (before scaling by pixel_scale). ``styles`` and ``blend``
    (the prepared :class:`Inputs`') are needed for ``init="palette"`` only."""
    resized = resize_to(content, size).unsqueeze(0)
    # Noise comes from a CPU generator so a seed gives the same start on every device.
    gen = torch.Generator().manual_seed(seed_of(cfg))
    if cfg.noise_mean is None:
        centre = torch.tensor(IMAGENET_MEAN_RGB).view(1, 3, 1, 1)
    else:
        centre = torch.full((1, 3, 1, 1), float(cfg.noise_mean))
    shape = (1, 3, *size)
    if cfg.noise == "gaussian":
        noise = centre + cfg.noise_scale * torch.randn(shape, generator=gen)
    else:
        noise = centre + cfg.noise_scale * (2.0 * torch.rand(shape, generator=gen) - 1.0)
    if cfg.init == "content":
        x = resized
    elif cfg.init == "palette":
        if styles is None:
            raise ImpastoError("init 'palette' needs the style images (pass styles to initial_image)")
        x = resize_to(palette_start(content, styles, blend), size).unsqueeze(0)
    elif cfg.init == "tones":
        if styles is None:
            raise ImpastoError("init 'tones' needs the style images (pass styles to initial_image)")
        x = resize_to(color.match_tones(content, list(styles), list(blend) if blend is not None else None),
                      size).unsqueeze(0)
    elif cfg.init == "noise":
        x = noise
    elif cfg.init == "white":
        x = torch.ones(shape)
    elif cfg.init == "preprocessed-ones":
        # The Keras example's "white image": ones in the network's input space, mapped back to pixels
        # (for Caffe weights about the ImageNet mean colour plus 1/255: a flat grey-brown).
        x = preprocess.invert(torch.ones(shape))
    elif cfg.init == "blend":
        x = cfg.noise_ratio * noise + (1.0 - cfg.noise_ratio) * resized
    else:
        assert cfg.init_file is not None
        x = resize_to(load_image(cfg.init_file).rgb, size).unsqueeze(0)
    if cfg.clamp:
        x = x.clamp(0.0, 1.0)
    return x.contiguous()


def finish(img: Tensor, cfg: Config, inputs: Inputs) -> Tensor:
    """Post-steps on a result [3, H, W]: chroma back (luminance mode), content regions, colour match."""
    size = (int(img.shape[1]), int(img.shape[2]))
    content = resize_to(inputs.content_rgb, size) if tuple(inputs.content_rgb.shape[1:]) != size else inputs.content_rgb
    if cfg.preserve_color == "luminance":
        img = color.combine_luminance(img, content)
    if inputs.regions is not None:
        keep = inputs.regions.content_weight(size)
        if keep is not None:
            # Regions marked 'content' take the content's pixels: the guided losses leave them without a
            # style term, but the receptive fields of neighbouring regions still reach a few pixels in; the
            # (area-soft) mask makes the seam gradual.
            img = keep * content + (1.0 - keep) * img
    if cfg.color_match_output:
        img = color.match_color(img, content)
    return img
