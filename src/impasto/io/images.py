"""Reading and writing images as tensors, safely.

Everything here speaks one representation: a float32 ``[3, H, W]`` tensor of sRGB values in ``[0, 1]``
(plus an optional ``[1, H, W]`` alpha).  Loading normalises whatever a file holds (palette, 16-bit
greyscale, CMYK, an embedded ICC profile, an EXIF rotation) into that; saving goes back to 8-bit files.

Two design rules run through the module:

* Every problem a user can cause (missing file, not an image, truncated file, unwritable folder, output
  path equal to an input) becomes an :class:`~impasto.errors.ImpastoError` with a one-line message that
  names the file, so the CLI never shows a traceback.
* Writing is atomic: an image is written to a temporary file next to the target and moved over it with
  :func:`os.replace`, so an interrupted or failed run never leaves a half-written or clobbered file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import sys
import tempfile
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from impasto.errors import ImpastoError
from impasto.io.atomic import atomic_write, check_writable, describe_oserror

__all__ = [
    "MAX_PIXELS",
    "OUTPUT_EXTENSIONS",
    "LoadedImage",
    "check_output_path",
    "default_content_path",
    "default_style_path",
    "load_image",
    "pil_to_loaded",
    "image_damage",
    "read_metadata",
    "resize_long_side",
    "resize_to",
    "SavedResult",
    "bound_metadata",
    "save_image",
    "save_result",
    "scaled_size",
    "to_pil",
    "to_uint8",
]

# Pillow warns above 89.5 MP and refuses above twice that; we use the refusal limit as our own, checked
# from the header *before* decoding so a decompression bomb costs nothing.  Read at call time, so tests
# (or a server wanting a tighter limit) can change it.
MAX_PIXELS: int = 2 * 89_478_485
MAX_ASPECT = 32
"""Longest side over shortest side of an image impasto accepts: a 1x5000 strip holds no picture to style
(the network would see it upsampled to 16x80000, or refuse it)."""

# Extension -> Pillow format name.  Only formats we can write faithfully and embed metadata into.
_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
OUTPUT_EXTENSIONS: tuple[str, ...] = tuple(_FORMATS)
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif")
"""File names taken as images where a folder is expanded (style folders, batch inputs)."""

# Key of the PNG text chunk, and the EXIF/TIFF tag (ImageDescription) that carry our JSON metadata.
_PNG_KEY = "impasto"
_TAG_IMAGE_DESCRIPTION = 0x010E


@dataclass
class LoadedImage:
    """An image decoded to tensors.

    Attributes:
        rgb: float32 ``[3, H, W]`` sRGB values in ``[0, 1]``, contiguous.
        alpha: float32 ``[1, H, W]`` in ``[0, 1]``, or ``None`` when the file has no alpha channel or
            its alpha is fully opaque everywhere.
        path: where it was read from (``None`` for in-memory images).
        icc_converted: ``True`` when an embedded ICC profile was used to convert the pixels to sRGB.
    """

    rgb: torch.Tensor
    alpha: torch.Tensor | None
    path: Path | None
    icc_converted: bool


# --------------------------------------------------------------------------------------------------
# Bundled demo inputs
# --------------------------------------------------------------------------------------------------


def default_content_path() -> Path:
    """Path of the bundled demo content photo (Grace Hopper, public domain; see ``data/SOURCES.md``)."""
    # Path(str(...)) works for normal (directory) installs, which is all we support: the engine needs a
    # real file path anyway.
    return Path(str(files("impasto") / "data" / "content.jpg"))


def default_style_path() -> Path:
    """Path of the bundled demo style image (procedurally generated; see ``data/SOURCES.md``)."""
    return Path(str(files("impasto") / "data" / "style.png"))


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def _one_line(text: object) -> str:
    """Collapse a message to one line: the CLI promises single-line errors."""
    return " ".join(str(text).split())


def _open_image(path: Path) -> Image.Image:
    """Open *path* lazily (header only) turning every failure into a one-line :class:`ImpastoError`.

    Checks the pixel count against :data:`MAX_PIXELS` before anything is decoded.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImpastoError(f"no such file: {path}") from None
    except PermissionError:
        raise ImpastoError(f"permission denied reading {path}") from None
    except OSError as err:  # ENOTDIR (a file used as a folder), ELOOP, name too long...
        raise ImpastoError(f"cannot read {path}: {describe_oserror(err)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImpastoError(f"{path} is a folder, not an image file")
    if st.st_size == 0:
        raise ImpastoError(f"{path} is empty (0 bytes), not an image")
    try:
        with warnings.catch_warnings():
            # We enforce our own limit below; Pillow's warning (above ~89 MP) would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except PermissionError:
        raise ImpastoError(f"permission denied reading {path}") from None
    except Image.DecompressionBombError:
        # Pillow's own hard limit (2x its warning threshold) fired before ours could.
        raise ImpastoError(
            f"{path} is too large to load safely (over {MAX_PIXELS:,} pixels); "
            "downscale it with an image editor first"
        ) from None
    except UnidentifiedImageError:
        raise ImpastoError(f"{path} is not an image file Pillow can read") from None
    except OSError as err:
        raise ImpastoError(f"cannot read {path}: {describe_oserror(err)}") from None
    except Exception as err:  # noqa: BLE001 - malformed headers raise all sorts; never show a traceback
        raise ImpastoError(f"cannot read {path}: {_one_line(err)}") from None
    w, h = img.size
    if w * h > MAX_PIXELS:
        img.close()
        raise ImpastoError(
            f"{path} is {w}x{h} = {w * h:,} pixels, over the {MAX_PIXELS:,}-pixel safety limit; "
            "downscale it with an image editor first"
        )
    return img


def load_image(path: str | os.PathLike[str]) -> LoadedImage:
    """Read an image file into an sRGB float tensor (and alpha, when it has a real one).

    Applies the EXIF orientation, converts an embedded ICC profile to sRGB, and handles every common
    Pillow mode (see :func:`pil_to_loaded`).  Only the first frame of animated or multi-page files is
    used.

    Raises:
        ImpastoError: with a one-line message naming the file, for a missing file, a folder, an empty
            file, a non-image, a truncated or corrupt image, an oversized image or a permission error.
    """
    p = Path(path)
    try:
        with warnings.catch_warnings(), quiet_stderr():
            # Pillow warns (corrupt EXIF, odd TIFF tags, palette transparency...) and libtiff writes to
            # the C stderr; the CLI promises one line, and a problem that matters raises below anyway.
            warnings.simplefilter("ignore")
            img = _open_image(p)
            w, h = img.size
            if min(w, h) >= 1 and max(w, h) > MAX_ASPECT * min(w, h):
                img.close()
                raise ImpastoError(
                    f"{p} is {w}x{h} pixels: too thin to style (the sides may differ at most {MAX_ASPECT}:1); "
                    "crop it first"
                )
            with img:
                try:
                    # Force the full decode now: Pillow decodes lazily, and a truncated file only fails here.
                    img.load()
                except Exception as err:  # noqa: BLE001 - decoders raise OSError, SyntaxError, ValueError...
                    raise ImpastoError(f"cannot decode {p}: {_one_line(err)}") from None
                if img.format == "PNG":
                    _check_png_stream(p)
                return pil_to_loaded(img, p)
    except Image.DecompressionBombError:
        raise ImpastoError(f"{p} is too large to load safely (over {MAX_PIXELS:,} pixels)") from None
    except MemoryError:
        raise ImpastoError(f"not enough memory to load {p}") from None


class quiet_stderr:  # noqa: N801 - used like contextlib's lower-case context managers
    """Send the process's C-level stderr (file descriptor 2) to /dev/null for the duration.

    libtiff and libpng print warnings straight to fd 2, bypassing Python; inside this block they are
    dropped. Only the main thread redirects (another thread's error output must not vanish), and a
    failure to redirect just leaves stderr alone.
    """

    def __enter__(self) -> quiet_stderr:
        import threading

        self._saved: int | None = None
        if threading.current_thread() is not threading.main_thread():
            return self
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)
        except (OSError, ValueError, AttributeError):
            self._restore()
        return self

    def _restore(self) -> None:
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._saved = None

    def __exit__(self, *exc: object) -> None:
        self._restore()


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _png_raw_size(width: int, height: int, depth: int, color: int, interlace: int) -> int:
    """Bytes of filtered scanlines a complete PNG image decompresses to (each row: filter byte + pixels)."""
    bits = _PNG_CHANNELS.get(color, 4) * depth

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits + 7) // 8)

    if not interlace:
        return rows(width, height)
    # Adam7: seven passes, each a sub-image with its own rows.
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    return sum(rows((width - x0 + dx - 1) // dx if width > x0 else 0,
                    (height - y0 + dy - 1) // dy if height > y0 else 0)
               for x0, y0, dx, dy in passes)


def _check_png_stream(path: Path) -> None:
    """Refuse a PNG whose image data (the IDAT chunks' zlib stream) holds fewer rows than its header says.

    Pillow decodes such a file without complaint and fills the missing rows with black. One pass of
    decompression into a small buffer counts the bytes; nothing is kept.
    """
    try:
        with open(path, "rb") as fh:
            if fh.read(8) != b"\x89PNG\r\n\x1a\n":
                return
            d = zlib.decompressobj()
            need = got = -1
            while True:
                head = fh.read(8)
                if len(head) < 8:
                    break
                length = int.from_bytes(head[:4], "big")
                kind = head[4:8]
                if kind == b"IHDR":
                    hdr = fh.read(length)
                    w, h = int.from_bytes(hdr[0:4], "big"), int.from_bytes(hdr[4:8], "big")
                    need, got = _png_raw_size(w, h, hdr[8], hdr[9], hdr[12]), 0
                    fh.seek(4, os.SEEK_CUR)
                elif kind == b"IDAT":
                    data = fh.read(length)
                    while data and not d.eof:
                        got += len(d.decompress(data, 1 << 16))
                        data = d.unconsumed_tail
                    fh.seek(4, os.SEEK_CUR)
                elif kind == b"IEND":
                    break
                else:
                    fh.seek(length + 4, os.SEEK_CUR)
                if got >= need >= 0:
                    return
    except (OSError, zlib.error, IndexError) as err:
        raise ImpastoError(f"cannot decode {path}: corrupt image data ({_one_line(err)})") from None
    if need >= 0:
        raise ImpastoError(f"cannot decode {path}: the image data ends early ({max(got, 0):,} of {need:,} bytes; "
                           "a truncated or damaged PNG)")


def _exif_transpose(img: Image.Image) -> Image.Image:
    """Rotate/flip per the EXIF orientation tag; a broken EXIF block is ignored, not fatal."""
    try:
        out = ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - corrupt EXIF should not stop a style transfer
        return img
    return out if out is not None else img


def _icc_to_srgb(img: Image.Image) -> tuple[Image.Image, bool]:
    """Convert *img* to sRGB with its embedded ICC profile, if it has one and LittleCMS can use it.

    Returns the (possibly new) image and whether a conversion happened.  *img* must be in one of the
    8-bit modes L, LA, RGB, RGBA or CMYK.  Anything that goes wrong (no ImageCms, a broken profile, a
    profile that does not match the mode) falls back to the unconverted pixels: a slightly off colour
    is better than refusing the image.
    """
    icc = img.info.get("icc_profile")
    if not icc:
        return img, False
    try:
        from PIL import ImageCms
    except ImportError:  # Pillow built without LittleCMS
        return img, False
    alpha: Image.Image | None = None
    src = img
    if img.mode in ("LA", "RGBA"):
        # Transform colour only; keep alpha bit-exact by splitting it off and putting it back.
        alpha = img.getchannel("A")
        src = img.convert("L" if img.mode == "LA" else "RGB")
    if src.mode not in ("L", "RGB", "CMYK"):
        return img, False
    try:
        in_prof = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.createProfile("sRGB")
        out = ImageCms.profileToProfile(src, in_prof, srgb, outputMode="RGB")
    except Exception:  # noqa: BLE001 - PyCMSError, OSError, ValueError for broken/mismatched profiles
        return img, False
    if out is None:  # only when inPlace=True, which we do not use; keeps mypy happy
        return img, False
    if alpha is not None:
        out.putalpha(alpha)
    return out, True


def _to_float_array(img: Image.Image) -> npt.NDArray[np.float32]:
    """Pixels of a high-bit-depth single-channel image (I;16*, I, F) scaled to ``[0, 1]``."""
    arr = np.asarray(img)
    if img.mode.startswith("I;16") or img.mode == "I":
        # 16-bit greyscale (PNG/TIFF) arrives as I;16 or as 32-bit I holding 0..65535.
        out = arr.astype(np.float32) / 65535.0
    else:  # "F": no standard range.  Trust [0, 1]; otherwise assume 8- or 16-bit scaled values.
        out = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        peak = float(out.max()) if out.size else 0.0
        if peak > 255.0:
            out = out / 65535.0
        elif peak > 1.0:
            out = out / 255.0
    clipped: npt.NDArray[np.float32] = np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)
    return clipped


def pil_to_loaded(img: Image.Image, path: Path | None = None) -> LoadedImage:
    """Convert a (loaded) Pillow image to a :class:`LoadedImage`.

    The conversion half of :func:`load_image`, usable on in-memory images.  Handles modes 1, L, LA, La,
    P/PA (with or without transparency), RGB, RGBA, RGBa, RGBX, CMYK, YCbCr, LAB/HSV, I;16*, I and F.
    High-bit-depth greyscale keeps its precision (65535 -> 1.0, not clipped at 255).

    Raises:
        ImpastoError: if the mode cannot be converted to RGB.
    """
    name = str(path) if path is not None else "image"
    img = _exif_transpose(img)
    mode = img.mode
    icc_converted = False
    alpha_arr: npt.NDArray[np.float32] | None = None

    if mode.startswith("I;16") or mode in ("I", "F"):
        grey = _to_float_array(img)
        rgb_arr = np.repeat(grey[:, :, None], 3, axis=2)
    else:
        # Reduce everything to one of L, LA, RGB, RGBA, CMYK: the modes LittleCMS and numpy handle.
        if mode == "1":
            img = img.convert("L")
        elif mode in ("P", "PA"):
            # Palette transparency (tRNS / GIF transparent index) only survives a conversion to RGBA.
            img = img.convert("RGBA" if mode == "PA" or img.has_transparency_data else "RGB")
        elif mode == "La":
            img = img.convert("LA")
        elif mode == "RGBa":
            img = img.convert("RGBA")
        elif mode in ("L", "RGB") and "transparency" in img.info:
            # A single transparent colour/grey level (PNG tRNS for non-palette images).
            img = img.convert("RGBA")
        elif mode not in ("L", "LA", "RGB", "RGBA", "CMYK"):
            # RGBX, YCbCr, LAB, HSV, ...: Pillow knows the way to RGB.
            try:
                img = img.convert("RGB")
            except (ValueError, OSError) as err:
                raise ImpastoError(f"{name}: unsupported image mode {mode!r} ({_one_line(err)})") from None

        img, icc_converted = _icc_to_srgb(img)
        if img.mode == "CMYK":  # no usable profile: Pillow's naive conversion is the best we can do
            img = img.convert("RGB")

        arr = np.asarray(img, dtype=np.uint8).astype(np.float32) / 255.0
        if arr.ndim == 2:  # L
            arr = arr[:, :, None]
        channels = arr.shape[2]
        if channels in (2, 4):  # LA, RGBA: last channel is alpha
            alpha_arr = arr[:, :, -1]
            arr = arr[:, :, :-1]
        rgb_arr = np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr

    rgb = torch.from_numpy(np.ascontiguousarray(rgb_arr, dtype=np.float32)).permute(2, 0, 1).contiguous()
    alpha: torch.Tensor | None = None
    # A fully opaque alpha carries no information; dropping it lets callers skip alpha handling.
    if alpha_arr is not None and float(alpha_arr.min()) < 1.0:
        alpha = torch.from_numpy(np.ascontiguousarray(alpha_arr, dtype=np.float32))[None].contiguous()
    return LoadedImage(rgb=rgb, alpha=alpha, path=path, icc_converted=icc_converted)


# --------------------------------------------------------------------------------------------------
# Resizing
# --------------------------------------------------------------------------------------------------


def scaled_size(h: int, w: int, long_side: int) -> tuple[int, int]:
    """``(H, W)`` of an ``h x w`` image scaled so its longer side is *long_side*, keeping the aspect.

    Sides are rounded half-up and are at least 1 pixel.

    Raises:
        ImpastoError: if *long_side* is below 1.
        ValueError: if *h* or *w* is below 1.
    """
    if long_side < 1:
        raise ImpastoError(f"image size must be at least 1 pixel, got {long_side}")
    if h < 1 or w < 1:
        raise ValueError(f"image dimensions must be positive, got {h}x{w}")
    # Integer arithmetic so the long side is exactly long_side and the result is platform-independent.
    if h >= w:
        return long_side, max(1, (2 * w * long_side + h) // (2 * h))
    return max(1, (2 * h * long_side + w) // (2 * w)), long_side


def resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``[C, H, W]`` or ``[N, C, H, W]`` *x* to ``size = (H, W)``.

    Antialiased bicubic (so downscaling does not alias), clamped to ``[0, 1]`` (bicubic overshoots).
    Returns the same rank as *x*; returns *x* itself (no copy) when it already has that size.
    """
    if x.dim() not in (3, 4):
        raise ValueError(f"expected a [C,H,W] or [N,C,H,W] tensor, got shape {tuple(x.shape)}")
    th, tw = int(size[0]), int(size[1])
    if th < 1 or tw < 1:
        raise ImpastoError(f"image size must be at least 1x1 pixel, got {th}x{tw}")
    if tuple(x.shape[-2:]) == (th, tw):
        return x
    batch = x if x.dim() == 4 else x.unsqueeze(0)
    if not batch.is_floating_point():
        batch = batch.float()
    out = F.interpolate(batch, size=(th, tw), mode="bicubic", antialias=True, align_corners=False)
    out = out.clamp_(0.0, 1.0)
    return out if x.dim() == 4 else out.squeeze(0)


def resize_long_side(x: torch.Tensor, long_side: int) -> torch.Tensor:
    """Resize ``[C, H, W]`` or ``[N, C, H, W]`` *x* so its longer side is *long_side*.

    Same rules as :func:`resize_to`: antialiased bicubic, clamped, same rank, no copy if already sized.
    """
    if x.dim() not in (3, 4):
        raise ValueError(f"expected a [C,H,W] or [N,C,H,W] tensor, got shape {tuple(x.shape)}")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    return resize_to(x, scaled_size(h, w, long_side))


# --------------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------------


def check_output_path(out: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]] = ()) -> Path:
    """Validate an output path before a long run, so mistakes fail in the first second, not the last.

    Returns:
        The resolved (absolute, symlink-free) path to write to.

    Raises:
        ImpastoError: if *out* is an existing folder, has an unsupported extension, is the same file as
            one of *inputs*, or its folder does not exist or is not writable.
    """
    resolved = check_writable(out, inputs)
    ext = resolved.suffix.lower()
    if ext not in _FORMATS:
        shown = ext if ext else "no extension"
        raise ImpastoError(f"output {out} has {shown}; use one of: {', '.join(OUTPUT_EXTENSIONS)}")
    return resolved


def _tensor_to_uint8(x: torch.Tensor, channels: int, what: str) -> npt.NDArray[np.uint8]:
    """``[C, H, W]`` (or ``[1, C, H, W]``) float in [0, 1] -> ``H x W x C`` uint8, NaN-safe."""
    if x.dim() == 4 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 3 or x.shape[0] != channels:
        raise ValueError(f"{what} must be [{channels},H,W] or [1,{channels},H,W], got {tuple(x.shape)}")
    # NaN would become an arbitrary byte; a diverged optimisation should still give a viewable file.
    x = torch.nan_to_num(x.detach().to("cpu", torch.float32), nan=0.0, posinf=1.0, neginf=0.0)
    arr = (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return arr


def to_uint8(x: torch.Tensor) -> npt.NDArray[np.uint8]:
    """``[C, H, W]`` (or ``[1, C, H, W]``) float in [0, 1] -> ``H x W x C`` uint8, rounded exactly as
    :func:`save_image` rounds (the pixels a file written from ``x`` holds)."""
    return _tensor_to_uint8(x, int(x.shape[-3]), "image")


def to_pil(rgb: torch.Tensor, alpha: torch.Tensor | None = None) -> Image.Image:
    """An 8-bit RGB (or RGBA, with *alpha*) Pillow image from float tensors in ``[0, 1]``.

    *rgb* is ``[3, H, W]`` or ``[1, 3, H, W]``; *alpha* is ``[1, H, W]`` or ``[1, 1, H, W]`` and is
    resized to the rgb size when they differ.
    """
    rgb_arr = _tensor_to_uint8(rgb, 3, "rgb")
    if alpha is None:
        return Image.fromarray(rgb_arr)
    h, w = rgb_arr.shape[:2]
    a = alpha[0] if alpha.dim() == 4 else alpha
    a = resize_to(a, (h, w))
    a_arr = _tensor_to_uint8(a, 1, "alpha")
    return Image.fromarray(np.concatenate([rgb_arr, a_arr], axis=2))


MAX_METADATA_BYTES = 60_000
"""Every format gets at most this much metadata JSON: a JPEG COM segment holds 65,533 bytes, an EXIF
block (WebP) 65,535 with its other tags; PNG and TIFF could hold more but need not."""
MAX_HISTORY_ROWS = 400
"""Loss-history rows kept in an output's metadata: thinned evenly (first and last kept) above this."""
MAX_LISTED_PATHS = 16
"""Style paths listed one by one; a longer list keeps the first ones and a count and digest of all."""


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def _thin(rows: list[Any], keep: int) -> list[Any]:
    """``keep`` rows spread evenly over ``rows``, the first and the last always among them."""
    if len(rows) <= keep:
        return rows
    if keep <= 1:
        return rows[-1:]
    idx = sorted({round(i * (len(rows) - 1) / (keep - 1)) for i in range(keep)})
    return [rows[i] for i in idx]


def bound_metadata(metadata: Mapping[str, Any], max_bytes: int = MAX_METADATA_BYTES) -> dict[str, Any]:
    """*metadata* made to fit ``max_bytes`` of JSON, whatever the run's length or number of styles.

    A ``loss_history`` (``{"columns", "rows"}``) longer than :data:`MAX_HISTORY_ROWS` is thinned evenly
    (``"thinned_from"`` records the original count); a ``styles`` list longer than
    :data:`MAX_LISTED_PATHS` keeps its first entries and gains ``styles_summary`` (count and sha256 of
    all the paths). If that is still too large the history is thinned further, then the largest
    remaining values are replaced by a note, so a save never fails for its metadata's sake.
    """
    meta = dict(metadata)
    styles = meta.get("styles")
    if isinstance(styles, list) and len(styles) > MAX_LISTED_PATHS:
        digest = hashlib.sha256("\n".join(str(x) for x in styles).encode("utf-8", "surrogatepass")).hexdigest()
        meta["styles"] = styles[:MAX_LISTED_PATHS]
        meta["styles_summary"] = {"count": len(styles), "listed": MAX_LISTED_PATHS, "sha256": digest}
    hist = meta.get("loss_history")
    rows = hist.get("rows") if isinstance(hist, dict) else None
    keep = MAX_HISTORY_ROWS
    while True:
        if isinstance(hist, dict) and isinstance(rows, list):
            thinned = _thin(rows, keep)
            new = {**hist, "rows": thinned}
            if len(thinned) < len(rows):
                new["thinned_from"] = hist.get("thinned_from", len(rows))
            meta["loss_history"] = new
        if len(_dumps(meta)) <= max_bytes:
            return meta
        if not (isinstance(rows, list) and keep > 2 and len(rows) > 2):
            break
        keep //= 2
    # Still too large (huge notes, a long path list of another kind): drop the largest values, one at a time.
    while len(_dumps(meta)) > max_bytes:
        sizes = {k: len(_dumps(v)) for k, v in meta.items() if not k.endswith("_omitted")}
        if not sizes:
            break
        key = max(sizes, key=lambda k: sizes[k])
        meta[key] = None
        meta[f"{key}_omitted"] = f"{sizes[key]} bytes, over the {max_bytes}-byte metadata limit"
    return meta


def _metadata_json(metadata: Mapping[str, Any]) -> str:
    """Serialise *metadata* as ASCII JSON (ASCII fits every container: TIFF ASCII tags, JPEG COM),
    bounded by :func:`bound_metadata`."""
    try:
        _dumps(dict(metadata))
    except (TypeError, ValueError, RecursionError) as err:
        raise ValueError(f"metadata must be JSON-serialisable: {err}") from err
    return _dumps(bound_metadata(metadata))


def save_image(
    rgb: torch.Tensor,
    path: str | os.PathLike[str],
    *,
    alpha: torch.Tensor | None = None,
    metadata: Mapping[str, Any] | None = None,
    inputs: Sequence[str | os.PathLike[str]] = (),
) -> Path:
    """Write *rgb* (``[3, H, W]`` or ``[1, 3, H, W]`` in ``[0, 1]``) to *path*, atomically.

    The format follows the extension (.png .jpg .jpeg .webp .tif .tiff).  *alpha* is stored for PNG,
    WebP and TIFF and dropped for JPEG.  *metadata* (a JSON-serialisable mapping) is embedded so that
    :func:`read_metadata` gets it back: a PNG text chunk ``impasto``, a JPEG COM comment, the EXIF
    ImageDescription in WebP, the ImageDescription tag in TIFF.

    The image goes to a temporary file in the target folder first and is then renamed over *path*, so
    a failure never leaves a partial file nor damages an existing one.

    Returns:
        The resolved path written.

    Raises:
        ImpastoError: for a bad output path (see :func:`check_output_path`) or an OS error while writing.
        ValueError: for badly shaped tensors or metadata that is not JSON-serialisable.
    """
    target = check_output_path(path, inputs)
    fmt = _FORMATS[target.suffix.lower()]
    meta = _metadata_json(metadata) if metadata is not None else None
    img = to_pil(rgb, alpha if fmt != "JPEG" else None)

    kwargs: dict[str, Any] = {}
    if fmt == "PNG":
        if meta is not None:
            info = PngImagePlugin.PngInfo()
            info.add_text(_PNG_KEY, meta, zip=True)
            kwargs["pnginfo"] = info
    elif fmt == "JPEG":
        # 4:4:4 chroma: stylised images are full of fine coloured strokes that 4:2:0 would smear.
        kwargs.update(quality=95, subsampling=0)
        if meta is not None:  # bounded below the 65,533 bytes of a COM segment
            kwargs["comment"] = meta.encode("ascii")
    elif fmt == "WEBP":
        kwargs.update(quality=95)
        if meta is not None:
            exif = Image.Exif()
            exif[_TAG_IMAGE_DESCRIPTION] = meta
            kwargs["exif"] = exif.tobytes()
    else:  # TIFF
        kwargs["compression"] = "tiff_deflate"
        if meta is not None:
            kwargs["tiffinfo"] = {_TAG_IMAGE_DESCRIPTION: meta}

    atomic_write(target, lambda fh: img.save(fh, format=fmt, **kwargs))
    return target


@dataclass(frozen=True)
class SavedResult:
    """Where :func:`save_result` put a finished image."""

    path: Path
    """The file written: the requested one, or the rescue PNG."""
    requested: Path
    problem: str | None = None
    """Why the requested file could not be written (None when it was)."""

    @property
    def rescued(self) -> bool:
        return self.problem is not None

    def message(self) -> str:
        """One line for the user when the requested save failed (empty when it did not)."""
        if self.problem is None:
            return ""
        return f"could not write {self.requested} ({self.problem}); the result is saved to {self.path}"


def rescue_paths(requested: str | os.PathLike[str]) -> list[Path]:
    """Where :func:`save_result` tries a PNG when the requested file fails: beside it, then the current
    folder, then the temporary folder (each name short enough for any file system)."""
    p = Path(requested)
    stem = p.stem[:100] or "impasto"
    name = f"{stem}.rescued.png"
    return [p.with_name(name), Path.cwd() / name, Path(tempfile.gettempdir()) / name]


def save_result(
    rgb: torch.Tensor,
    path: str | os.PathLike[str],
    *,
    alpha: torch.Tensor | None = None,
    metadata: Mapping[str, Any] | None = None,
    inputs: Sequence[str | os.PathLike[str]] = (),
) -> SavedResult:
    """Save a *finished* image without ever losing it: :func:`save_image` to ``path``, and if that
    fails for any reason (disk full, folder removed during the run, an encoder error, bad metadata) a
    PNG beside it, or in the current or temporary folder. Front-ends print :meth:`SavedResult.message`.

    Raises:
        ImpastoError: only when no rescue location could be written either (naming every attempt).
    """
    problems: list[str] = []
    try:
        return SavedResult(save_image(rgb, path, alpha=alpha, metadata=metadata, inputs=inputs), Path(path))
    except (ImpastoError, ValueError, OSError) as err:
        first = _one_line(err)
    meta = metadata
    for candidate in rescue_paths(path):
        if candidate.exists():
            candidate = candidate.with_name(f"{candidate.stem}-{os.getpid()}{candidate.suffix}")
        for m in (meta, None):  # metadata that broke the first save must not break the rescue
            try:
                written = save_image(rgb, candidate, alpha=alpha, metadata=m, inputs=inputs)
                return SavedResult(written, Path(path), first)
            except (ImpastoError, ValueError, OSError) as err:
                problems.append(f"{candidate}: {_one_line(err)}")
    raise ImpastoError(f"could not write {path} ({first}) nor a rescue PNG ({'; '.join(problems)})")


# --------------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------------


def _parse_json_object(raw: str | bytes | None) -> dict[str, Any] | None:
    """``raw`` as a JSON object, or ``None`` if it is absent or something else (e.g. a foreign comment)."""
    if raw is None:
        return None
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    raw = raw.rstrip("\x00").strip()  # TIFF/EXIF ASCII values can carry a trailing NUL
    if not raw.startswith("{"):
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or _depth(value) > MAX_METADATA_DEPTH:
        return None  # hostile nesting: printing it back would recurse as deep
    return value


MAX_METADATA_DEPTH = 32
"""impasto writes metadata at most 4 levels deep; anything much deeper is not ours."""


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > MAX_METADATA_DEPTH:
            return deepest
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


def image_damage(path: str | os.PathLike[str]) -> str | None:
    """Why the image file at ``path`` does not decode to its last pixel (one line), or None when it does.

    Metadata usually sits before the pixels, so a file cut short may still say who wrote it: this is the
    check that it is whole (a truncated JPEG or PNG, flipped bytes in its data, a file that is not an image).
    """
    p = Path(path)
    try:
        img = _open_image(p)
    except ImpastoError as err:
        return str(err)
    try:
        with img:
            img.load()
    except Exception as err:  # noqa: BLE001 - every decoder error means the same here: damaged
        return f"cannot decode {p}: {_one_line(err)}"
    return None


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The metadata :func:`save_image` embedded in *path*, or ``None`` if the file carries none.

    Raises:
        ImpastoError: if *path* is missing or not a readable image.
    """
    p = Path(path)
    img = _open_image(p)
    with img:
        candidates: list[str | bytes | None] = []
        if img.format == "PNG":
            try:
                img.load()  # text chunks after the image data are only seen once it is read
            except Exception as err:  # noqa: BLE001
                raise ImpastoError(f"cannot decode {p}: {_one_line(err)}") from None
            candidates.append(img.info.get(_PNG_KEY))
        if img.format == "JPEG":
            candidates.append(img.info.get("comment"))
        if img.format == "TIFF":
            tags = getattr(img, "tag_v2", None)
            if tags is not None:
                candidates.append(tags.get(_TAG_IMAGE_DESCRIPTION))
        try:
            candidates.append(img.getexif().get(_TAG_IMAGE_DESCRIPTION))
        except Exception:  # noqa: BLE001 - corrupt EXIF just means no metadata there
            pass
        for raw in candidates:
            if isinstance(raw, (str, bytes)):
                found = _parse_json_object(raw)
                if found is not None:
                    return found
    return None
