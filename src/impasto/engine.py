"""The optimisation: pixels, optimiser, scales. Yields :class:`Progress` events; never prints.

Data flow: images (impasto.imageio) -> frozen VGG features (impasto.model) -> pure losses
(impasto.losses) -> this loop -> front-ends (CLI, web, benchmark) that consume the events.

The loop is Gatys et al. (2016): optimise the pixels of an image so that its VGG responses match the
content image's at the content layers and its Gram matrices match the style image's at the style
layers. Departures from the paper are opt-in through :class:`~impasto.config.Config` and named there;
the ones the engine itself makes are commented where they happen.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto import artist, color, losses
from impasto.config import Config
from impasto.errors import ImpastoError
from impasto.fastpath import LossEvaluator
from impasto.imageio import LoadedImage, load_image, resize_to, scaled_size
from impasto.lbfgs import CompactLBFGS, TwoLoopLBFGS
from impasto.model import VGGFeatures, canonical_layer
from impasto.weights import VGGWeights, load_weights

ImageLike = Union[Tensor, LoadedImage, str, "os.PathLike[str]"]

# ImageNet mean colour as RGB in [0, 1] (the Caffe BGR mean 103.939, 116.779, 123.68, reordered): the
# centre of noise initialisations, so noise starts where the network's inputs are centred.
IMAGENET_MEAN_RGB = (123.68 / 255.0, 116.779 / 255.0, 103.939 / 255.0)
MAX_RESTARTS = 5
"""Divergence restarts allowed in one run before it stops with an error."""
RECOMPUTE_AUTO_MIB = 3072.0
"""``recompute_activations='auto'`` turns on above this many MiB of estimated activations (CPU only)."""
Optimizer = torch.optim.Optimizer | CompactLBFGS | TwoLoopLBFGS


@dataclass
class Progress:
    """One optimiser step (or the final event, ``done=True``)."""

    step: int
    """Global step, counting from 1 across all scales (0 for the event before the first step)."""
    total_steps: int
    scale: int
    """Index of the current scale, from 0."""
    n_scales: int
    size: tuple[int, int]
    """(height, width) being optimised."""
    loss: float
    content: float
    style: float
    tv: float
    """Weighted loss terms; ``loss`` is their sum (evaluated at the pixels before this step)."""
    elapsed: float
    """Seconds since optimisation started (setup excluded)."""
    image: Tensor | None = None
    """Current pixels, [3, H, W] RGB in [0, 1] on the CPU, when asked for (and always when done)."""
    done: bool = False
    stop_reason: str | None = None
    terms: dict[str, float] = field(default_factory=dict)
    """Per-layer weighted terms, e.g. ``{"style/relu1_1": ...}``."""
    restarts: int = 0
    """Divergence restarts so far (see ``Config.restart_factor``)."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; asking for an absent device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ImpastoError("--device cuda asked for, but this torch build sees no CUDA GPU")
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise ImpastoError("--device mps asked for, but Apple MPS is not available here")
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


def _resize_long(x: Tensor, long_side: int) -> Tensor:
    h, w = x.shape[-2:]
    return resize_to(x, scaled_size(int(h), int(w), long_side))


class StyleTransfer:
    """One run: holds the model, targets and the pixels being optimised.

    ``run()`` is a generator of :class:`Progress`; interrupting it (Ctrl-C) leaves ``current_image()``
    valid, so front-ends can save what exists so far.
    """

    def __init__(
        self,
        content: ImageLike,
        styles: Sequence[ImageLike],
        config: Config | None = None,
        *,
        weights: VGGWeights | None = None,
        init_image: Tensor | None = None,
    ) -> None:
        """``init_image`` ([3, H, W] RGB in [0, 1]; resized to the first scale) overrides ``config.init``:
        a warm start from a tensor, e.g. the previous frame of a balance sweep."""
        self.config = config if config is not None else Config()
        self.config.validate()
        cfg = self.config
        if not styles and cfg.style_weight > 0 and cfg.style_layers:
            raise ImpastoError("at least one style image is needed")
        if cfg.style_blend_weights is not None and len(cfg.style_blend_weights) != len(styles):
            raise ImpastoError(
                f"{len(cfg.style_blend_weights)} style weights given for {len(styles)} style images"
            )
        self.device = resolve_device(cfg.device)
        self.weights = weights if weights is not None else load_weights(cfg.weights, fmt=cfg.weights_format)
        arch = self.weights.arch
        self.content_layers = [canonical_layer(x, arch) for x in cfg.content_layers]
        self.style_layers = [canonical_layer(x, arch) for x in cfg.style_layers]
        self.model = VGGFeatures(self.weights, self.content_layers + self.style_layers, cfg.pooling)
        self.model.use_channels_last(True).to(self.device)

        self.content = as_rgb(content)
        self.styles = [as_rgb(s) for s in styles]
        # Colour preservation (Gatys et al. 2017) changes the inputs; the untouched content is kept
        # for putting its colours back into the result (see _finish).
        self.content_rgb = self.content
        if cfg.preserve_color == "match":
            self.styles = [color.match_color(s, self.content) for s in self.styles]
        elif cfg.preserve_color == "luminance":
            self.styles = [color.luminance_only(s, reference=self.content) for s in self.styles]
            self.content = color.luminance_only(self.content)
        self.regions = (
            artist.RegionMasks.from_image(load_image(cfg.mask).rgb, cfg.regions, len(self.styles))
            if cfg.mask else None
        )
        self._ema: Tensor | None = None
        bw = cfg.style_blend_weights or tuple(1.0 for _ in self.styles)
        total = float(sum(bw)) or 1.0
        self.blend = [w / total for w in bw]
        h, w = self.content.shape[-2:]
        full = cfg.size if cfg.size is not None else max(int(h), int(w))
        self.sizes = [scaled_size(int(h), int(w), s) for s in cfg.scale_sizes(full)]
        self.steps = list(cfg.scale_steps) if cfg.scale_steps is not None else [cfg.steps] * len(self.sizes)
        if len(self.steps) != len(self.sizes):
            raise ImpastoError(
                f"scale_steps has {len(self.steps)} values but this run has {len(self.sizes)} scales "
                f"({', '.join(str(max(s)) for s in self.sizes)} px)"
            )
        self.pixels: Tensor | None = None
        if init_image is not None:
            x = resize_to(as_rgb(init_image), self.sizes[0]).unsqueeze(0)
            self._initial = (x.clamp(0.0, 1.0) if cfg.clamp else x).contiguous()
        else:
            self._initial = self._initial_image(self.sizes[0])

    # -- set-up ----------------------------------------------------------------------------------
    def _initial_image(self, size: tuple[int, int]) -> Tensor:
        """Starting pixels [1, 3, H, W] in [0, 1] (before scaling by pixel_scale)."""
        cfg = self.config
        content = resize_to(self.content, size).unsqueeze(0)
        # Noise comes from a CPU generator so a seed gives the same start on every device.
        gen = torch.Generator().manual_seed(cfg.seed if cfg.seed is not None else int(time.time_ns() % 2**31))
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
            x = content
        elif cfg.init == "noise":
            x = noise
        elif cfg.init == "white":
            x = torch.ones(shape)
        elif cfg.init == "preprocessed-ones":
            # The Keras example's "white image": ones in the network's input space, mapped back to
            # pixels (for Caffe weights about the ImageNet mean colour plus 1/255: a flat grey-brown).
            x = self.weights.preprocess.invert(torch.ones(shape))
        elif cfg.init == "blend":
            x = cfg.noise_ratio * noise + (1.0 - cfg.noise_ratio) * content
        else:
            assert cfg.init_file is not None
            x = resize_to(load_image(cfg.init_file).rgb, size).unsqueeze(0)
        if cfg.clamp:
            x = x.clamp(0.0, 1.0)
        return x.contiguous()

    @torch.no_grad()
    def _targets(self, size: tuple[int, int]) -> tuple[dict[str, Tensor], list[artist.Slot]]:
        """Content features and style targets (see :mod:`impasto.artist`) at this scale, computed once."""
        cfg = self.config
        content = resize_to(self.content, size).unsqueeze(0).to(self.device)
        feats = self.model(content)
        content_t = {name: feats[name].detach().clone() for name in self.content_layers}
        shapes = {n: (int(feats[n].shape[2]), int(feats[n].shape[3])) for n in self.style_layers}
        style_long = max(16, round(cfg.style_scale * max(size)))
        # Several styles blend as weighted statistics (Gram matrices, moments or quantiles): the
        # weighted Gram of several paintings is the Gram of their union when their maps have equal size.
        style_feats = []
        for style in self.styles:
            sf = self.model(_resize_long(style, style_long).unsqueeze(0).to(self.device))
            style_feats.append({n: sf[n] for n in self.style_layers})
        slots = artist.build_style_targets(
            style_feats, self.blend, self.style_layers, shapes, cfg, self.regions, size
        )
        if self.regions is not None:
            for slot in slots:
                assert slot.masks is not None
                slot.masks = {n: m.to(self.device) for n, m in slot.masks.items()}
        return content_t, slots

    # -- the objective ---------------------------------------------------------------------------
    def loss_terms(
        self, x: Tensor, content_t: dict[str, Tensor], style_t: list[artist.Slot]
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Tensor]]:
        """(total, content, style, tv, per-layer) for pixels ``x`` in pixel_scale units."""
        cfg = self.config
        feats = self.model(x / cfg.pixel_scale)
        per: dict[str, Tensor] = {}
        cw = cfg.content_layer_weights or tuple(1.0 for _ in self.content_layers)
        sw = cfg.style_layer_weights or tuple(1.0 for _ in self.style_layers)
        if cfg.alpha is None:
            c_mult, s_mult = cfg.content_weight, cfg.style_weight
        else:
            c_mult, s_mult = cfg.alpha * cfg.content_weight, (1.0 - cfg.alpha) * cfg.style_weight
        zero = x.new_zeros(())
        lc = zero
        for name, w in zip(self.content_layers, cw):
            f = artist.content_features(feats[name], c_mult * w, cfg)
            term = c_mult * w * losses.content_loss(f, content_t[name], cfg.content_loss)
            per[f"content/{name}"] = term
            lc = lc + term
        ls = artist.style_loss(feats, style_t, self.style_layers, sw, s_mult, cfg, per, zero,
                               image_positions=x.shape[2] * x.shape[3])
        ltv = cfg.tv_weight * losses.tv_loss(x, cfg.tv_loss) if cfg.tv_weight > 0 else zero
        return lc + ls + ltv, lc, ls, ltv, per

    # -- the loop --------------------------------------------------------------------------------
    def current_image(self) -> Tensor:
        """The pixels as they are now: [3, H, W] RGB in [0, 1] on the CPU."""
        if self.pixels is None:
            x = self._initial
        else:
            x = (self._ema if self._ema is not None else self.pixels.detach()) / self.config.pixel_scale
        return self._finish(x[0].clamp(0.0, 1.0).float().cpu())

    def _finish(self, img: Tensor) -> Tensor:
        """Post-steps on a result [3, H, W]: chroma back (luminance mode), content regions, colour match."""
        cfg = self.config
        size = (int(img.shape[1]), int(img.shape[2]))
        content = resize_to(self.content_rgb, size) if tuple(self.content_rgb.shape[1:]) != size else (
            self.content_rgb)
        if cfg.preserve_color == "luminance":
            img = color.combine_luminance(img, content)
        if self.regions is not None:
            keep = self.regions.content_weight(size)
            if keep is not None:
                # Regions marked 'content' take the content's pixels: the guided losses leave them
                # without a style term, but the receptive fields of neighbouring regions still reach
                # a few pixels in; the (area-soft) mask makes the seam gradual.
                img = keep * content + (1.0 - keep) * img
        if cfg.color_match_output:
            img = color.match_color(img, content)
        return img

    def run(self, image_every: int = 0) -> Iterator[Progress]:
        """Optimise, yielding one :class:`Progress` per step and a final one with ``done=True``.

        ``image_every``: attach the current image to every N-th step's event (0: only the last).
        """
        cfg = self.config
        n_scales = len(self.sizes)
        total_steps = sum(self.steps)
        stop_reason = "steps"
        start = time.perf_counter()
        step = 0
        last = (math.nan, math.nan, math.nan, math.nan)
        terms: dict[str, float] = {}
        adam_state: dict[str, Tensor] | None = None
        restarts = 0
        torch.manual_seed(cfg.seed if cfg.seed is not None else int(time.time_ns() % 2**31))
        for si, size in enumerate(self.sizes):
            rc = cfg.recompute_activations
            self.model.checkpointing = rc == "on" or (
                rc == "auto" and self.device.type == "cpu" and self.model.activation_mib(*size) > RECOMPUTE_AUTO_MIB
            )
            content_t, style_t = self._targets(size)
            if self.pixels is None:
                x0 = self._initial * cfg.pixel_scale
            else:
                # Coarse-to-fine: the previous scale's result (its average with --ema), upsampled,
                # starts this scale; the previous scale's pixels and optimiser are dropped here, so
                # memory is bounded by the largest scale.
                prev = self._ema if self._ema is not None else self.pixels.detach()
                self._ema = None
                x0 = F.interpolate(prev, size=size, mode="bicubic", align_corners=False)
                if cfg.clamp:
                    x0 = x0.clamp(0.0, cfg.pixel_scale)
            x = x0.to(self.device).contiguous().requires_grad_(True)
            self.pixels = x
            opt = self._optimizer(x, adam_state, size)

            per_names: list[str] = []

            def evaluate(px: Tensor) -> list[Tensor]:
                total, lc, ls, ltv, per = self.loss_terms(px, content_t, style_t)
                per_names[:] = per.keys()
                return [total, lc, ls, ltv, *per.values()]

            # Zeroes x.grad, runs forward and backward; a CUDA graph replay on NVIDIA GPUs.
            evaluator = LossEvaluator(evaluate, x)
            # The lowest loss of this scale and its pixels, kept on the device for the divergence guard.
            best_loss = torch.full((), math.inf, device=x.device)
            best_x = x.detach().clone() if cfg.restart_factor is not None else None
            pending: list[Tensor] = []

            def closure() -> Tensor:
                if cfg.clamp_before_eval:
                    # In place and outside the evaluator: x keeps its address (CUDA graphs read it).
                    with torch.no_grad():
                        x.clamp_(0.0, cfg.pixel_scale)
                outs = evaluator()
                with torch.no_grad():
                    vals_t = torch.stack([v.detach() for v in outs])
                    if best_x is not None:
                        better = vals_t[0] < best_loss  # False for NaN
                        best_x.copy_(torch.where(better, x.detach(), best_x))
                        best_loss.copy_(torch.where(better, vals_t[0], best_loss))
                # Read back after the optimiser's step, not here: reading here would make the host wait
                # for the GPU before it could queue the step's own work.
                pending[:] = [vals_t]
                return outs[0]

            ema_sum, ema_norm = None, 0.0
            changes: list[float] = []
            stop_reason = "steps"
            limit = (
                cfg.lbfgs_max_step * cfg.pixel_scale
                if cfg.optimizer == "lbfgs" and cfg.lbfgs_max_step is not None and cfg.lbfgs_max_iter == 1
                and not cfg.lbfgs_line_search else None
            )
            for _ in range(self.steps[si]):
                before = x.detach().clone() if cfg.tol is not None or limit is not None else None
                opt.step(closure)  # type: ignore[arg-type]
                if limit is not None:
                    assert before is not None
                    _limit_step(opt, x, before, limit)
                if cfg.clamp:
                    with torch.no_grad():
                        x.clamp_(0.0, cfg.pixel_scale)
                step += 1
                # One device sync per step, for every number of the last evaluation.
                vals = torch.cat([pending[0], best_loss.view(1)]).tolist()
                last = (vals[0], vals[1], vals[2], vals[3])
                terms = dict(zip(per_names, vals[4:-1]))
                lowest = vals[-1]
                if best_x is not None and (not math.isfinite(last[0]) or last[0] > cfg.restart_factor * lowest):
                    # Diverged: back to this scale's lowest-loss pixels with an empty optimiser history.
                    restarts += 1
                    if restarts > MAX_RESTARTS or not math.isfinite(lowest):
                        raise ImpastoError(
                            f"the loss diverged ({last[0]:.3g} at step {step}) after {restarts - 1} restarts: "
                            "lower the learning rate or the weights"
                        )
                    with torch.no_grad():
                        x.copy_(best_x)
                    opt = self._optimizer(x, None, size)
                elif not math.isfinite(last[0]):
                    raise ImpastoError(
                        f"the loss became {last[0]} at step {step}: lower the learning rate or the weights"
                    )
                if cfg.ema is not None:
                    # Bias-corrected average of this scale's iterates (not its starting image), as in
                    # Adam's moment estimates: avg_t = Σ (1-d) d^(t-i) x_i / (1 - d^t).
                    with torch.no_grad():
                        d = cfg.ema
                        ema_sum = x.detach() * (1 - d) if ema_sum is None else ema_sum * d + x.detach() * (1 - d)
                        ema_norm = ema_norm * d + (1 - d)
                        self._ema = ema_sum / ema_norm
                if before is not None:
                    # Mean absolute change per pixel in 0-255 units, whatever pixel_scale is.
                    with torch.no_grad():
                        changes.append(float((x.detach() - before).abs().mean()) * 255.0 / cfg.pixel_scale)
                want = image_every > 0 and step % image_every == 0
                yield Progress(
                    step=step, total_steps=total_steps, scale=si, n_scales=n_scales, size=size,
                    loss=last[0], content=last[1], style=last[2], tv=last[3],
                    elapsed=time.perf_counter() - start,
                    image=self.current_image() if want else None, terms=dict(terms), restarts=restarts,
                )
                if cfg.tol is not None and len(changes) >= cfg.tol_window:
                    recent = sum(changes[-cfg.tol_window:]) / cfg.tol_window
                    if recent < cfg.tol:
                        stop_reason = (
                            f"tol: mean pixel change {recent:.3g} < {cfg.tol:g} over the last "
                            f"{cfg.tol_window} steps at {size[1]}x{size[0]}"
                        )
                        break
            if isinstance(opt, torch.optim.Adam):
                adam_state = {k: v for k, v in opt.state[x].items() if isinstance(v, Tensor)}
            # Free this scale's optimiser state (L-BFGS keeps 2·lbfgs_history image-sized vectors)
            # before the next scale allocates its own: peak memory is the largest scale's.
            if isinstance(opt, (CompactLBFGS, TwoLoopLBFGS)):
                opt.release()
            else:
                opt.state.clear()
        yield Progress(
            step=step, total_steps=total_steps, scale=n_scales - 1, n_scales=n_scales, size=self.sizes[-1],
            loss=last[0], content=last[1], style=last[2], tv=last[3],
            elapsed=time.perf_counter() - start, image=self.current_image(), done=True,
            stop_reason=stop_reason, terms=dict(terms), restarts=restarts,
        )

    def _optimizer(self, x: Tensor, adam_state: dict[str, Tensor] | None, size: tuple[int, int]) -> Optimizer:
        cfg = self.config
        lr = cfg.effective_lr()
        history = cfg.history_for(*size)
        if cfg.optimizer == "lbfgs" and not cfg.lbfgs_line_search and cfg.lbfgs_max_iter == 1:
            # torch's LBFGS(max_iter=1) iterates without torch.optim (whose constructor imports
            # torch._dynamo: seconds per process). On CUDA in compact form: two passes over the
            # history and no host sync instead of ~200 syncs per step (see impasto.lbfgs). Elsewhere
            # the two-loop recursion: the compact form's float32 inner products are less stable (a
            # masked 32 px test diverged on the CPU), and on a CPU the syncs cost nothing.
            if x.is_cuda:
                return CompactLBFGS(x, lr=lr, history_size=history)
            return TwoLoopLBFGS(x, lr=lr, history_size=history)
        if cfg.optimizer == "lbfgs":
            # A line search, or lbfgs_max_iter > 1 (write-ups that count torch's outer step() calls,
            # each running up to 20 inner iterations).
            return torch.optim.LBFGS(
                [x], lr=lr, max_iter=cfg.lbfgs_max_iter, history_size=history,
                line_search_fn="strong_wolfe" if cfg.lbfgs_line_search else None,
                tolerance_grad=0.0, tolerance_change=0.0,
            )
        opt = torch.optim.Adam([x], lr=lr, betas=cfg.adam_betas, eps=cfg.adam_eps)
        if adam_state is not None:
            # Carry Adam's moment estimates across scales by resizing them with the pixels, so the
            # per-pixel step sizes it has learnt are not thrown away at each new scale.
            st: dict[str, Tensor] = {}
            for k, v in adam_state.items():
                if v.ndim == 4:
                    v = F.interpolate(v, size=size, mode="bilinear", align_corners=False)
                    if k == "exp_avg_sq":
                        v = v.clamp_min(0.0)
                st[k] = v.contiguous()
            opt.state[x] = st
        return opt


def _limit_step(opt: Optimizer, x: Tensor, before: Tensor, limit: float) -> None:
    """Shrink the step just taken so its RMS pixel change is at most ``limit``, and tell L-BFGS.

    L-BFGS stores s = t·d for its next curvature pair, so the step length t it remembers is scaled by
    the same factor as the move: the history stays consistent with where the pixels really went.
    """
    with torch.no_grad():
        delta = x - before
        factor = torch.clamp(limit / (delta.pow(2).mean().sqrt() + 1e-12), max=1.0)
        x.copy_(before + delta * factor)
        if isinstance(opt, torch.optim.LBFGS):
            state = opt.state[x]
            if "t" in state:
                state["t"] = float(state["t"]) * float(factor)
        elif isinstance(opt, (CompactLBFGS, TwoLoopLBFGS)):
            opt.scale_last_step(factor)


def stylize_iter(
    content: ImageLike,
    styles: Sequence[ImageLike] | ImageLike,
    config: Config | None = None,
    *,
    image_every: int = 0,
    weights: VGGWeights | None = None,
) -> Iterator[Progress]:
    """Run style transfer, yielding a :class:`Progress` per step; the last event has the result."""
    style_list: list[ImageLike] = list(styles) if isinstance(styles, (list, tuple)) else [styles]  # type: ignore[list-item]
    yield from StyleTransfer(content, style_list, config, weights=weights).run(image_every)


def stylize(
    content: ImageLike,
    styles: Sequence[ImageLike] | ImageLike,
    config: Config | None = None,
    *,
    weights: VGGWeights | None = None,
) -> Tensor:
    """Run style transfer to the end and return the image, [3, H, W] RGB in [0, 1]."""
    result: Tensor | None = None
    for ev in stylize_iter(content, styles, config, weights=weights):
        if ev.done:
            result = ev.image
    assert result is not None
    return result


__all__ = ["Progress", "StyleTransfer", "stylize", "stylize_iter", "resolve_device"]
