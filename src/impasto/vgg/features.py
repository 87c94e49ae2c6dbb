"""A frozen VGG16/VGG19 feature extractor with named layers.

Layer names (canonical): ``conv{b}_{c}`` (before ReLU), ``relu{b}_{c}``, ``pool{b}``.
Accepted aliases:
  - Keras ``block{b}_conv{c}`` -> ``relu{b}_{c}``: a Keras Conv2D layer includes its ReLU, so the
    output the Keras and TensorFlow write-ups read is post-activation;
  - Keras ``block{b}_pool`` -> ``pool{b}``;
  - PyTorch-tutorial ``conv_{n}`` / ``relu_{n}`` / ``pool_{n}``: the n-th conv (pre-activation), its ReLU,
    the n-th pooling layer, counting from 1 through the whole network.
Caffe's ReLU is in-place, so in Caffe (and the paper) "conv4_2" is post-ReLU; here ``conv4_2`` means
the literal pre-activation output and ``relu4_2`` the post-activation one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from impasto.errors import ImpastoError
from impasto.vgg.weights import VGG_BLOCKS, VGGWeights


def layer_names(arch: str) -> list[str]:
    """All canonical layer names of ``arch`` in forward order."""
    names: list[str] = []
    for b, n in enumerate(VGG_BLOCKS[arch], start=1):
        for c in range(1, n + 1):
            names += [f"conv{b}_{c}", f"relu{b}_{c}"]
        names.append(f"pool{b}")
    return names


def canonical_layer(name: str, arch: str = "vgg19") -> str:
    """Map any accepted spelling of a layer to its canonical name; ImpastoError if unknown."""
    names = layer_names(arch)
    key = name.strip().lower()
    m = re.fullmatch(r"block(\d)_conv(\d)", key)
    if m:
        key = f"relu{m.group(1)}_{m.group(2)}"
    m = re.fullmatch(r"block(\d)_pool", key)
    if m:
        key = f"pool{m.group(1)}"
    m = re.fullmatch(r"(conv|relu|pool)_(\d+)", key)
    if m:
        kind, n = m.group(1), int(m.group(2))
        pool = kind == "pool"
        seq = [x for x in names if x.startswith("pool")] if pool else [
            x for x in names if x.startswith("conv")
        ]
        if 1 <= n <= len(seq):
            key = seq[n - 1] if kind != "relu" else "relu" + seq[n - 1][4:]
    if key not in names:
        examples = "conv4_2, relu4_2, block4_conv2, conv_4, pool3"
        raise ImpastoError(f"unknown {arch.upper()} layer {name!r} (use names like {examples})")
    return key


MAX_ASPECT = 32
"""Longest side / shortest side the network accepts: a 1x5000 strip has no picture to style."""


class VGGFeatures(nn.Module):
    """Frozen VGG truncated after the deepest requested layer.

    ``forward(x)`` takes RGB images in [0, 1] ``[B, 3, H, W]``, applies the preprocessing that the
    weights were trained with (so callers never need to know it) and returns ``{layer: activation}``
    for the requested canonical layers.
    """

    _mean: Tensor
    _std: Tensor

    def __init__(self, weights: VGGWeights, layers: Iterable[str], pooling: str = "max") -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ImpastoError(f"pooling must be max or avg (got {pooling!r})")
        self.arch = weights.arch
        self.preprocess = weights.preprocess
        self.pooling = pooling
        wanted = [canonical_layer(x, weights.arch) for x in layers]
        if not wanted:
            raise ImpastoError("no layers requested")
        all_names = layer_names(weights.arch)
        self.layers: tuple[str, ...] = tuple(dict.fromkeys(wanted))
        self._min_side: int | None = None
        last = max(all_names.index(x) for x in self.layers)
        self._ops: list[str] = all_names[: last + 1]
        self.convs = nn.ModuleList()
        n_conv = sum(1 for x in self._ops if x.startswith("conv"))
        for w, b in weights.convs[:n_conv]:
            if w.is_meta:  # shapes only (vgg.weights.structure_of): a model to measure, not to run
                self.convs.append(nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1, device="meta"))
                continue
            conv = nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(w)
                assert conv.bias is not None
                conv.bias.copy_(b)
            self.convs.append(conv)
        # Preprocessing constants as buffers, so they move with the model and are not re-created (a
        # host-to-device copy) on every call: that copy is not allowed inside a CUDA graph capture.
        pre = weights.preprocess
        self.register_buffer("_mean", torch.tensor(pre.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(pre.std).view(1, 3, 1, 1), persistent=False)
        # Frozen: no weight gradients is the largest single speed-up (about 1.6x per step on CPU).
        self.requires_grad_(False)
        self.eval()
        self._channels_last = False
        self.checkpointing = False
        """Recompute each stretch between requested layers in the backward pass instead of keeping its
        activations (torch.utils.checkpoint): one more forward per step for a fraction of the memory."""
        # Index of each op's convolution (for ops that are convolutions), for running op ranges.
        self._conv_at: list[int] = []
        k = 0
        for name in self._ops:
            self._conv_at.append(k)
            k += name.startswith("conv")

    def use_channels_last(self, on: bool = True) -> VGGFeatures:
        """Run convolutions in NHWC (about 1.1x faster on CPU); inputs stay NCHW for the caller."""
        self._channels_last = on
        fmt = torch.channels_last if on else torch.contiguous_format
        for conv in self.convs:
            assert isinstance(conv, nn.Conv2d)
            conv.weight.data = conv.weight.data.contiguous(memory_format=fmt)
        return self

    def pools_before(self, layer: str) -> int:
        """How many 2x2 poolings come before (or at) ``layer``: its map is the input size >> this."""
        idx = self._ops.index(canonical_layer(layer, self.arch))
        return sum(1 for x in self._ops[: idx + 1] if x.startswith("pool"))

    @property
    def deepest(self) -> str:
        return self._ops[-1]

    def _preprocess(self, x: Tensor) -> Tensor:
        return self.preprocess.apply(x, (self._mean, self._std))

    def activation_mib(self, height: int, width: int) -> float:
        """Estimated MiB of activations one forward+backward keeps at this input size (float32 maps,
        plus max pooling's int64 indices); what ``checkpointing`` saves most of."""
        total, h, w, c = 0.0, height, width, 3
        for i, name in enumerate(self._ops):
            if name.startswith("conv"):
                c = int(self.convs[self._conv_at[i]].out_channels)  # type: ignore[arg-type]
            elif name.startswith("pool"):
                h, w = h // 2, w // 2
                if self.pooling == "max":
                    total += 8 * c * h * w
            if not name.startswith("conv"):  # a conv's output is freed once its ReLU has run
                total += 4 * c * h * w
        return total / 2**20

    def _run(self, h: Tensor, start: int, end: int) -> Tensor:
        for i in range(start, end):
            name = self._ops[i]
            if name.startswith("conv"):
                h = self.convs[self._conv_at[i]](h)
            elif name.startswith("relu"):
                h = F.relu(h)
            elif self.pooling == "max":
                h = F.max_pool2d(h, 2, 2, ceil_mode=False)
            else:
                h = F.avg_pool2d(h, 2, 2, ceil_mode=False)
        return h

    def min_side(self) -> int:
        """The smallest input side the deepest requested layer accepts (each 2x2 pooling halves it).
        Fixed by the layers, so computed once: ``fit_input`` asks on every forward pass."""
        if self._min_side is None:
            deepest = max((self._ops.index(n) for n in self.layers), default=0)
            self._min_side = int(2 ** sum(1 for x in self._ops[: deepest + 1] if x.startswith("pool")))
        return self._min_side

    def fit_input(self, x: Tensor) -> Tensor:
        """``x`` [N, 3, H, W], upsampled (bilinear, differentiably) so its short side reaches
        :meth:`min_side` when it is smaller; an image thinner than :data:`MAX_ASPECT`:1 is refused.

        A small but sane image (``--size 16`` of a 40x16 photo gives 16x6) then still works: the content,
        style and optimised images all pass through the same upsampling, so the losses stay comparable.
        """
        h, w = int(x.shape[-2]), int(x.shape[-1])
        need = self.min_side()
        short, long = min(h, w), max(h, w)
        if short >= need:
            return x
        if long > MAX_ASPECT * short:
            raise ImpastoError(
                f"an image of {w}x{h} pixels is too thin for the network: its sides may differ at most "
                f"{MAX_ASPECT}:1 and the short side becomes at least {need} pixels; crop it or use another image"
            )
        scale = need / short
        size = (max(need, math.ceil(h * scale)), max(need, math.ceil(w * scale)))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        h = self._preprocess(self.fit_input(x))
        if self._channels_last:
            # The layout changes here, inside the model: the optimised pixels stay contiguous NCHW,
            # which L-BFGS needs for its flat views.
            h = h.contiguous(memory_format=torch.channels_last)
        out: dict[str, Tensor] = {}
        wanted = set(self.layers)
        recompute = self.checkpointing and torch.is_grad_enabled() and h.requires_grad
        start = 0
        for i, name in enumerate(self._ops):
            if name not in wanted:
                continue
            if recompute:
                # Only the requested layers' maps (which the losses hold anyway) stay in memory.
                h = checkpoint(self._run, h, start, i + 1, use_reentrant=False)
            else:
                h = self._run(h, start, i + 1)
            out[name] = h
            start = i + 1
        return out
