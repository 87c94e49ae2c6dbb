"""Checkpoints: a run's complete state in one file, written atomically, read back as untrusted input.

A checkpoint holds :meth:`StyleTransfer.state_dict` (pixels, optimiser state with the L-BFGS history,
position, RNG, divergence guard, iterate average, tolerance window), the configuration, the input
files' paths and sha256, the impasto version and what the job layer adds (``extra``: the kind of job,
its loss history, its options; never a path to write to). Every front-end -- the command line, the
studio, batch and video -- writes and reads this one format through this module.

The file is a header line, the sha256 of the payload and the payload (``torch.save`` of plain
containers and tensors)::

    IMPASTO-CHECKPOINT 2\\n<64 hex digits>\\n<payload>

A checkpoint is untrusted input (it may come from anywhere: a shared folder, a crafted file): it is
read only if it is a regular file, the digest matches (a flipped byte is refused, not resumed), the
payload loads with ``torch.load(weights_only=True)`` (tensors and plain containers only, never pickled
code), and every field has the expected type; the run state itself is checked against the run by
:meth:`StyleTransfer.load_state_dict`. Anything else is one :class:`ImpastoError` line.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import pickle
import stat
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import torch

from impasto import __version__
from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.errors import ImpastoError
from impasto.io import atomic_write, file_sha256
from impasto.vgg import VGGWeights

CHECKPOINT_FORMAT = "impasto-checkpoint/2"
MAGIC = b"IMPASTO-CHECKPOINT 2\n"
MAX_STYLES = 256
MAX_EXTRA_DEPTH = 8
_KEYS = frozenset({"format", "version", "config", "content", "styles", "sha256", "state", "extra"})


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`load_checkpoint` read (every field checked)."""

    config: Config
    content: str
    styles: tuple[str, ...]
    state: dict[str, Any]
    extra: dict[str, Any]
    sha256: tuple[str, ...]
    """Of the content and style files, in that order."""
    step: int
    """Steps done when it was written."""


def save_checkpoint(
    path: str | os.PathLike[str],
    st: StyleTransfer,
    *,
    content: str | os.PathLike[str],
    styles: Sequence[str | os.PathLike[str]],
    extra: Mapping[str, Any] | None = None,
    hashes: Mapping[str, str] | None = None,
) -> Path:
    """Write ``st``'s state to ``path`` atomically (call it between steps: at a yield of ``run()``).

    ``hashes`` maps input paths to sha256s the caller already has (it saves re-reading the inputs
    every checkpoint); an input it does not name is hashed from its file."""
    known = dict(hashes or {})
    files = [os.fspath(content), *(os.fspath(s) for s in styles)]
    for f in files:
        if f not in known:
            known[f] = file_sha256(f)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": __version__,
        "config": st.config.to_dict(),
        "content": os.path.abspath(files[0]),
        "styles": [os.path.abspath(s) for s in files[1:]],
        "sha256": [known[f] for f in files],
        "state": st.state_dict(copy=False),
        "extra": _plain(dict(extra or {}), "extra"),
    }
    def write(fh: BinaryIO) -> None:
        # Streamed: a print's state is gigabytes, and a copy of it in memory would break its budget. The
        # digest's place is reserved and filled in once the body has gone through the hash.
        fh.write(MAGIC)
        at = fh.tell()
        fh.write(b"0" * 64 + b"\n")
        hashing = _HashingWriter(fh)
        torch.save(payload, cast(IO[bytes], hashing))
        fh.seek(at)
        fh.write(hashing.hexdigest().encode("ascii"))
        fh.seek(0, io.SEEK_END)

    return atomic_write(path, write)


class _HashingWriter:
    """A write-only stream that hashes what passes through it to ``fh``."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh, self._hash = fh, hashlib.sha256()

    def write(self, data: Any) -> int:
        self._hash.update(data)
        return self._fh.write(data)

    def flush(self) -> None:
        self._fh.flush()

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class _Window(io.RawIOBase):
    """The part of ``fh`` from ``start`` on, as a seekable stream of its own (the body after the header),
    so ``torch.load`` reads tensors from the file without a copy of the whole body in memory."""

    def __init__(self, fh: BinaryIO, start: int) -> None:
        self._fh, self._start = fh, start
        fh.seek(start)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._fh.readinto(b)  # type: ignore[attr-defined, no-any-return]

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos += self._start
        return self._fh.seek(pos, whence) - self._start

    def tell(self) -> int:
        return self._fh.tell() - self._start


def _open(path: str | os.PathLike[str]) -> BinaryIO:
    """The file opened for reading, refusing what is not a regular file before opening it (a FIFO would
    block)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImpastoError(f"checkpoint {path} does not exist") from None
    except OSError as e:
        raise ImpastoError(f"cannot read checkpoint {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ImpastoError(f"checkpoint {path} is not a regular file")
    try:
        return open(path, "rb")
    except OSError as e:
        raise ImpastoError(f"cannot read checkpoint {path}: {e.strerror or e}") from None


def _payload(path: str | os.PathLike[str]) -> dict[str, Any]:
    with _open(path) as fh:
        try:
            return _payload_of(path, fh)
        except OSError as e:
            raise ImpastoError(f"cannot read checkpoint {path}: {e.strerror or e}") from None


def _payload_of(path: str | os.PathLike[str], fh: BinaryIO) -> dict[str, Any]:
    head = len(MAGIC)
    start = fh.read(head + 65)
    if not start.startswith(MAGIC):
        if start.startswith(b"PK"):
            raise ImpastoError(f"checkpoint {path} was written by an earlier impasto (format 1): it cannot be "
                               "resumed; start the run again")
        raise ImpastoError(f"{path} is not an impasto checkpoint")
    digest, body_hash = start[head:head + 64], hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 24), b""):
        body_hash.update(chunk)
    if start[head + 64:head + 65] != b"\n" or body_hash.hexdigest().encode("ascii") != digest:
        raise ImpastoError(f"checkpoint {path} is damaged (its checksum does not match): it cannot be resumed")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = torch.load(cast(IO[bytes], _Window(fh, head + 65)), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, KeyError, TypeError, AttributeError,
            IndexError, RecursionError, MemoryError) as e:
        first = str(e).splitlines()[0][:80] if str(e) else type(e).__name__
        raise ImpastoError(f"{path} is not a readable impasto checkpoint ({first})") from None
    if not isinstance(payload, dict):
        raise ImpastoError(f"{path} is not an impasto checkpoint")
    return payload


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and check a checkpoint; one clear ImpastoError for a missing, damaged, foreign or crafted file."""
    payload = _payload(path)
    if payload.get("format") != CHECKPOINT_FORMAT or set(payload) != _KEYS:
        raise ImpastoError(f"{path} is not an impasto checkpoint")
    if payload["version"] != __version__:
        version = payload["version"] if isinstance(payload["version"], str) else "?"
        raise ImpastoError(
            f"checkpoint {path} was written by impasto {_one_line(version)[:20]}, this is {__version__}: "
            "it cannot be resumed; start the run again"
        )

    def bad(field: str) -> ImpastoError:
        return ImpastoError(f"checkpoint {path} is damaged: its {field} is not valid")

    if not isinstance(payload["config"], dict):
        raise bad("configuration")
    try:
        config = Config.from_dict(payload["config"])
    except ImpastoError as e:
        raise ImpastoError(f"checkpoint {path} is damaged: its configuration is not valid ({_one_line(str(e))[:200]})"
                           ) from None
    except (TypeError, ValueError, AttributeError):
        raise bad("configuration") from None
    content, styles, hashes = payload["content"], payload["styles"], payload["sha256"]
    if not isinstance(content, str) or "\x00" in content:
        raise bad("content path")
    if not isinstance(styles, list) or not 1 <= len(styles) <= MAX_STYLES or not all(
            isinstance(s, str) and "\x00" not in s for s in styles):
        raise bad("style paths")
    if not isinstance(hashes, list) or len(hashes) != 1 + len(styles) or not all(_is_sha256(h) for h in hashes):
        raise bad("input checksums")
    state = payload["state"]
    if not isinstance(state, dict) or not isinstance(state.get("position"), dict):
        raise bad("run state")
    step = state["position"].get("step")
    if type(step) is not int or step < 0:
        raise bad("step")
    extra = payload["extra"]
    if not isinstance(extra, dict):
        raise bad("extra fields")
    try:
        extra = _plain(extra, "extra")
    except ImpastoError:
        raise bad("extra fields") from None
    return Checkpoint(config=config, content=content, styles=tuple(styles), state=state, extra=extra,
                      sha256=tuple(hashes), step=step)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _is_sha256(h: object) -> bool:
    return isinstance(h, str) and len(h) == 64 and all(c in "0123456789abcdef" for c in h)


def _plain(obj: Any, where: str, depth: int = 0) -> Any:
    """``obj`` if it is JSON-like (str, finite numbers, bool, None, lists and string-keyed dicts, a few
    levels deep), else an ImpastoError: ``extra`` is metadata, never tensors or objects."""
    if depth > MAX_EXTRA_DEPTH:
        raise ImpastoError(f"{where} is nested too deeply")
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ImpastoError(f"{where} holds a non-finite number")
        return obj
    if isinstance(obj, (list, tuple)):
        return [_plain(v, where, depth + 1) for v in obj]
    if isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
        return {k: _plain(v, where, depth + 1) for k, v in obj.items()}
    raise ImpastoError(f"{where} holds a {type(obj).__name__}, which a checkpoint does not store")


def check_inputs(ckpt: Checkpoint, path: str | os.PathLike[str]) -> None:
    """Refuse a checkpoint whose input files changed (or are gone) since it was written."""
    for f, want in zip([ckpt.content, *ckpt.styles], ckpt.sha256):
        if file_sha256(f) != want:
            raise ImpastoError(f"input {f} changed since checkpoint {path} was written: it cannot be resumed")


def resume(path: str | os.PathLike[str], *, weights: VGGWeights | None = None) -> tuple[StyleTransfer, Checkpoint]:
    """The run saved in ``path``, ready to continue with ``run()``; refuses changed inputs."""
    ckpt = load_checkpoint(path)
    check_inputs(ckpt, path)
    st = StyleTransfer(ckpt.content, list(ckpt.styles), ckpt.config, weights=weights)
    st.load_state_dict(ckpt.state)
    return st, ckpt


def remove_checkpoint(path: str | os.PathLike[str]) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "check_inputs", "file_sha256", "load_checkpoint",
           "remove_checkpoint", "resume", "save_checkpoint"]
