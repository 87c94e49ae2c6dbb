"""Clips in and out: video files through imageio-ffmpeg (its wheels carry an ffmpeg binary), frame folders
and frame patterns through Pillow; the resumable store of finished frames.

Frames travel as uint8 tensors ``[3, H, W]`` (a 512 px frame is 0.4 MB this way, four times less than
float32), already resized to the output size, so a clip of a few thousand frames fits in memory.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from impasto.checkpoint import remove_checkpoint
from impasto.errors import ImpastoError
from impasto.io import atomic_write_bytes, load_image, resize_to, save_image, scaled_size
from impasto.io.atomic import remove_leftover_temporaries
from impasto.io.locks import OutputLock, holder, try_lock

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v", ".gif")
"""Inputs read with ffmpeg; the same suffixes are video outputs (.gif written with Pillow)."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".ppm", ".pgm")
"""Frame files read from a folder or pattern."""
DEFAULT_FPS = 25.0
"""Frame rate of a clip read from a folder of frames, unless ``--fps`` says otherwise."""


@dataclass(frozen=True)
class Clip:
    """Decoded frames at the working size, and what the output needs to match the input."""

    frames: list[Tensor]
    """uint8 [3, H, W] each, all the same size."""
    fps: float
    has_audio: bool
    """The input is a video file with an audio stream (copied into a video output)."""
    source: Path
    """The video file, or the folder of the frames."""
    kind: str
    """``video`` or ``frames``."""
    identity: str
    """A fingerprint of the input (path, size, modification time, frame count) for resume checks."""

    def frame(self, i: int) -> Tensor:
        """Frame ``i`` as float32 [3, H, W] in [0, 1]."""
        return self.frames[i].float() / 255.0


def _ffmpeg() -> Any:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ImpastoError("video files need imageio-ffmpeg: pip install 'impasto[video]'") from None
    return imageio_ffmpeg


def _to_u8(rgb: Tensor) -> Tensor:
    return (rgb.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def _fit(rgb_u8: Tensor, long_side: int | None) -> Tensor:
    """Resize a uint8 [3, H, W] frame so its long side is ``long_side`` (None: as is)."""
    if long_side is None:
        return rgb_u8
    h, w = int(rgb_u8.shape[1]), int(rgb_u8.shape[2])
    size = scaled_size(h, w, long_side)
    if size == (h, w):
        return rgb_u8
    return _to_u8(resize_to(rgb_u8.float() / 255.0, size))


def _natural_key(p: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", os.path.basename(p))]


def frame_files(spec: str) -> list[str]:
    """The image files named by a folder, a glob (``frames/*.png``) or a printf pattern (``f_%04d.png``)."""
    if os.path.isdir(spec):
        files = [os.path.join(spec, f) for f in os.listdir(spec)
                 if f.lower().endswith(IMAGE_SUFFIXES) and not f.startswith(".")]
    elif re.search(r"%0?\d*d", spec):
        files = []
        for start in (0, 1):
            i = start
            while os.path.isfile(spec % i):
                files.append(spec % i)
                i += 1
            if files:
                break
    elif any(ch in spec for ch in "*?["):
        files = [f for f in glob.glob(spec) if f.lower().endswith(IMAGE_SUFFIXES)]
    else:
        files = []
    return sorted(files, key=_natural_key)


def is_video_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def input_files(spec: str) -> list[str]:
    """Every file an input spec reads: the video file itself, or the frames of a folder, glob or pattern."""
    if is_video_path(spec) and os.path.isfile(spec):
        return [spec]
    return frame_files(spec)


def _identity(path: Path, n: int, size: tuple[int, int]) -> str:
    try:
        st = path.stat()
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        stamp = "?"
    return f"{os.path.realpath(path)}|{stamp}|{n} frames|{size[1]}x{size[0]}"


def read_clip(spec: str, long_side: int | None, *, fps: float | None = None, max_frames: int | None = None) -> Clip:
    """Read a video file or a frame folder/pattern, resizing each frame to ``long_side`` as it is decoded."""
    if is_video_path(spec) and os.path.isfile(spec):
        return _read_video(Path(spec), long_side, fps, max_frames)
    if is_video_path(spec) and not any(ch in spec for ch in "*?[%"):
        raise ImpastoError(f"input video {spec} does not exist")
    files = frame_files(spec)
    if not files:
        raise ImpastoError(
            f"input {spec} is neither a video file ({', '.join(VIDEO_SUFFIXES)}) nor a folder or pattern of "
            "frames (e.g. frames/ or 'frames/*.png' or frames/f_%04d.png)"
        )
    if max_frames is not None:
        files = files[:max_frames]
    frames: list[Tensor] = []
    for f in files:
        u8 = _fit(_to_u8(load_image(f).rgb), long_side)
        if frames and tuple(u8.shape) != tuple(frames[0].shape):
            raise ImpastoError(f"frame {f} is {u8.shape[2]}x{u8.shape[1]} but the first frame is "
                               f"{frames[0].shape[2]}x{frames[0].shape[1]}; all frames must have one size")
        frames.append(u8)
    src = Path(spec) if os.path.isdir(spec) else Path(files[0]).parent
    ident = "|".join([_identity(Path(files[0]), len(files), tuple(frames[0].shape[1:])),  # type: ignore[arg-type]
                      hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]])
    return Clip(frames=frames, fps=fps or DEFAULT_FPS, has_audio=False, source=src, kind="frames", identity=ident)


def _read_video(path: Path, long_side: int | None, fps: float | None, max_frames: int | None) -> Clip:
    iio = _ffmpeg()
    try:
        gen = iio.read_frames(str(path), pix_fmt="rgb24")
        meta = next(gen)
    except (OSError, RuntimeError, StopIteration) as e:
        raise ImpastoError(f"cannot read video {path}: {' '.join(str(e).split())[:300]}") from None
    w, h = (int(x) for x in meta["size"])
    frames: list[Tensor] = []
    try:
        for raw in gen:
            arr = np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3)
            frames.append(_fit(torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous(), long_side))
            if max_frames is not None and len(frames) >= max_frames:
                break
    except (OSError, RuntimeError) as e:
        raise ImpastoError(f"cannot decode video {path}: {' '.join(str(e).split())[:300]}") from None
    finally:
        gen.close()
    if not frames:
        raise ImpastoError(f"video {path} has no frames")
    rate = fps or float(meta.get("fps") or 0.0)
    if rate <= 0:
        raise ImpastoError(f"cannot tell the frame rate of {path}; give it with --fps")
    has_audio = bool(meta.get("audio_codec"))
    ident = _identity(path, len(frames), tuple(frames[0].shape[1:]))  # type: ignore[arg-type]
    return Clip(frames=frames, fps=rate, has_audio=has_audio, source=path, kind="video", identity=ident)


# -- writing -------------------------------------------------------------------------------------------


def encoded_size(h: int, w: int, suffix: str) -> tuple[int, int]:
    """(H, W) of the frames in a video written as ``suffix``: H.264 and VP9 in yuv420p need even sides,
    so an odd side loses its last row or column; a GIF keeps every pixel."""
    if suffix.lower() == ".gif":
        return h, w
    return h - h % 2, w - w % 2


def _even(img: Tensor) -> Tensor:
    """Crop a [3, H, W] frame to even sides: H.264 in yuv420p needs them (see :func:`encoded_size`)."""
    h, w = int(img.shape[1]), int(img.shape[2])
    return img[:, : h - h % 2, : w - w % 2]


def write_video(frames: Sequence[Tensor] | Iterator[Tensor], out: Path, fps: float,
                audio_from: Path | None = None) -> Path:
    """Encode [3, H, W] frames (float in [0, 1] or uint8) to ``out`` atomically (temp file, then rename).

    MP4/MOV/MKV/AVI/M4V/WEBM through ffmpeg (H.264, VP9 for WebM); GIF through Pillow. With ``audio_from``
    the audio stream of that file is copied (re-encoded with the container's default codec if it cannot
    be copied as is).
    """
    frames = list(frames)
    if not frames:
        raise ImpastoError("no frames to write")
    u8 = [_to_u8(f) if f.is_floating_point() else f for f in frames]
    suffix = out.suffix.lower()
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=suffix, dir=out.parent)
    os.close(fd)
    try:
        if suffix == ".gif":
            from impasto.viz.animate import write_animation

            write_animation([f.float() / 255.0 for f in u8], tmp, fps=fps, hold_last=0)
        else:
            attempts: list[str | None] = ["copy", None] if audio_from is not None else [None]
            last_err = ""
            for codec in attempts:
                try:
                    _encode(u8, tmp, fps, suffix, audio_from, codec)
                    # ffmpeg can fail without the pipe noticing (e.g. an audio codec the container does not
                    # take): check what was written before it replaces anything.
                    written, _ = _ffmpeg().count_frames_and_secs(tmp)
                    if written == len(u8):
                        break
                    last_err = f"ffmpeg wrote {written} of {len(u8)} frames"
                except (OSError, RuntimeError) as e:
                    last_err = " ".join(str(e).split())[:300]
            else:
                raise ImpastoError(f"could not encode {out}: {last_err}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return out


def _encode(frames: list[Tensor], path: str, fps: float, suffix: str, audio_from: Path | None,
            audio_codec: str | None) -> None:
    iio = _ffmpeg()
    first = _even(frames[0])
    h, w = int(first.shape[1]), int(first.shape[2])
    codec = "libvpx-vp9" if suffix == ".webm" else None
    writer = iio.write_frames(
        path, (w, h), fps=Fraction(fps).limit_denominator(100000), codec=codec, quality=8, macro_block_size=1,
        ffmpeg_log_level="quiet", audio_path=str(audio_from) if audio_from is not None else None,
        # The audio is cut to the video's length (not -shortest: with piped frames it drops video frames).
        audio_codec=audio_codec, output_params=["-t", f"{len(frames) / fps:.6f}"] if audio_from is not None else None,
    )
    writer.send(None)
    try:
        for f in frames:
            writer.send(np.ascontiguousarray(_even(f).permute(1, 2, 0).numpy()))
    finally:
        writer.close()


def probe_video(path: str | os.PathLike[str]) -> dict[str, Any]:
    """fps, frame count, size and audio codec of a video file (what tests and the report check)."""
    iio = _ffmpeg()
    gen = iio.read_frames(str(path))
    meta: dict[str, Any] = dict(next(gen))
    gen.close()
    n, _ = iio.count_frames_and_secs(str(path))
    meta["nframes"] = n
    return meta


def has_audio_stream(path: str | os.PathLike[str]) -> bool:
    """Whether ffmpeg sees an audio stream in ``path``."""
    exe = _ffmpeg().get_ffmpeg_exe()
    res = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True, check=False)
    return "Audio:" in res.stderr


# -- the resumable store of finished frames ---------------------------------------------------------------


class FrameStore:
    """Finished frames as numbered PNGs in a folder, each written atomically, plus the run's manifest and
    the in-progress frame's checkpoint (hidden files, so the folder lists only frames).

    A re-run finds the first missing frame and goes on from there. The manifest records what the frames
    were made from; a folder made with other settings is refused rather than mixed. :meth:`open` locks
    the folder until :meth:`close` (or :meth:`remove`), so two runs never write the same frames, and a
    run killed outright leaves nothing the next one trips over: holding the lock, it removes the
    half-written temporary files of the dead one.
    """

    MANIFEST = ".impasto-video.json"
    CHECKPOINT = ".impasto-checkpoint.pt"
    LOCK = ".impasto-video.lock"

    def __init__(self, folder: Path, n_frames: int) -> None:
        self.folder = folder
        self.n_frames = n_frames
        self.digits = max(5, len(str(n_frames)))
        self._lock: OutputLock | None = None

    def _take_lock(self) -> None:
        if self._lock is not None:
            return
        lock = try_lock(str(self.folder / self.LOCK))
        if lock is None:
            who = holder(str(self.folder / self.LOCK))
            raise ImpastoError(f"another impasto run is writing frames to {self.folder}"
                               f"{f' ({who.describe()})' if who else ''}; wait for it or choose another output")
        self._lock = lock
        remove_leftover_temporaries(self.folder)

    def __enter__(self) -> FrameStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the folder's lock (the frames stay); safe to call more than once."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def refuse_inputs(self, inputs: Sequence[str | os.PathLike[str]], also: Sequence[Path] = ()) -> None:
        """Refuse (ImpastoError) a store that would write over or delete any of ``inputs``.

        Compared as files (device and inode, through symlinks and hard links), not as path spellings:
        ``-o clip`` with input ``'clip/*.png'`` or ``clip/frame_%05d.png`` names the same files as the
        frames this store writes (and the ``frame_*.png`` that ``--restart`` deletes). ``also``: other
        paths the run writes (a video output).
        """
        ids: dict[tuple[int, int], str] = {}
        for inp in inputs:
            with contextlib.suppress(OSError, ValueError):
                st = os.stat(inp)
                ids[(st.st_dev, st.st_ino)] = str(inp)
        if not ids:
            return
        candidates: list[Path] = [self.path(i) for i in range(self.n_frames)]
        with contextlib.suppress(OSError):
            candidates += sorted(self.folder.glob("frame_*.png"))
        candidates += [self.folder / self.MANIFEST, self.folder / self.CHECKPOINT, self.folder / self.LOCK, *also]
        for c in candidates:
            try:
                st = os.stat(c)
            except (OSError, ValueError):
                continue
            held = ids.get((st.st_dev, st.st_ino))
            if held is not None:
                what = "input" if is_video_path(held) else "input frame"
                raise ImpastoError(f"output {self.folder} holds {what} {held} (as {c.name}), which this run would "
                                   "write over; choose another output folder")

    def path(self, i: int) -> Path:
        """Frame ``i`` (from 0) is ``frame_00001.png`` (numbered from 1, like ffmpeg's image2 muxer)."""
        return self.folder / f"frame_{i + 1:0{self.digits}d}.png"

    def open(self, manifest: dict[str, Any], *, restart: bool = False,
             normalise: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> int:
        """Create, lock and check the folder; return the index of the first frame still to make.

        ``normalise`` maps a stored manifest to the current form before comparing (e.g. a configuration
        saved before a new field existed gets that field's default)."""
        try:
            self.folder.mkdir(exist_ok=True)
        except OSError as e:
            raise ImpastoError(f"cannot create {self.folder}: {e.strerror}") from None
        self._take_lock()
        try:
            self._admit(manifest, restart, normalise)
        except BaseException:
            self.close()
            raise
        i = 0
        while i < self.n_frames and self.path(i).is_file():
            i += 1
        return i

    def _admit(self, manifest: dict[str, Any], restart: bool,
               normalise: Callable[[dict[str, Any]], dict[str, Any]] | None) -> None:
        """Refuse a folder of other frames (unless ``restart``, which clears it); record ``manifest``."""
        mpath = self.folder / self.MANIFEST
        text = json.dumps(manifest, sort_keys=True)
        existing = sorted(self.folder.glob("frame_*.png"))
        if mpath.is_file():
            try:
                old = json.loads(mpath.read_text(encoding="utf-8"))
                if normalise is not None and isinstance(old, dict):
                    old = normalise(old)
            except (OSError, ValueError, ImpastoError):
                old = None
            if old != json.loads(text) and not restart:
                changed = sorted(k for k in set(manifest) | set(old or {}) if (old or {}).get(k) != manifest.get(k))
                raise ImpastoError(
                    f"{self.folder} holds frames of a run with other settings ({', '.join(changed)} differ); "
                    "pass --restart to discard them, or choose another output"
                )
        elif existing and not restart:
            raise ImpastoError(f"{self.folder} already holds frame_*.png files that impasto did not make; "
                               "pass --restart to overwrite them, or choose another output")
        if restart:
            for f in existing:
                f.unlink()
            self.clear_checkpoint()
        atomic_write_bytes(mpath, text.encode("utf-8"))

    def save(self, i: int, img: Tensor, metadata: dict[str, Any] | None = None) -> Path:
        return save_image(img, self.path(i), metadata=metadata)

    def load(self, i: int) -> Tensor:
        return load_image(self.path(i)).rgb

    @property
    def checkpoint_path(self) -> Path:
        """The in-progress frame's checkpoint: :mod:`impasto.checkpoint`'s one format, written and read
        (as untrusted input) by the frame's job, :class:`impasto.jobs.JobRun`; the frame index is in its
        ``extra``."""
        return self.folder / self.CHECKPOINT

    def clear_checkpoint(self) -> None:
        remove_checkpoint(self.checkpoint_path)

    def remove(self) -> None:
        """Delete the store (frames, manifest, checkpoint) once the encoded video is safely written."""
        for i in range(self.n_frames):
            with contextlib.suppress(FileNotFoundError):
                self.path(i).unlink()
        for name in (self.MANIFEST, self.CHECKPOINT):
            with contextlib.suppress(FileNotFoundError):
                (self.folder / name).unlink()
        self.close()
        with contextlib.suppress(OSError):
            self.folder.rmdir()

