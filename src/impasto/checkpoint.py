"""Checkpoints: a run's complete state in one file, written atomically, and resuming from it.

A checkpoint holds :meth:`StyleTransfer.state_dict` (pixels, optimiser state with the L-BFGS history,
position, RNG, divergence guard, iterate average, tolerance window), the configuration, the input
files' paths and sha256, the impasto version and whatever the front-end adds (``extra``: the output
path, its own options). :func:`resume` rebuilds the run from the files and refuses a checkpoint whose
inputs changed or that another version wrote.

It is read with ``torch.load(weights_only=True)``: only tensors and plain containers, never pickled code.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch

from impasto import __version__
from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.errors import ImpastoError
from impasto.io import atomic_write
from impasto.vgg import VGGWeights

CHECKPOINT_FORMAT = "impasto-checkpoint/1"


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError as e:
        raise ImpastoError(f"cannot read {path}: {e.strerror or e}") from None
    return h.hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`load_checkpoint` read."""

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
    extra: dict[str, Any] | None = None,
    hashes: dict[str, str] | None = None,
) -> Path:
    """Write ``st``'s state to ``path`` atomically (call it between steps: at a yield of ``run()``).

    ``hashes`` maps input paths to sha256s the caller already has (it saves re-reading the inputs
    every checkpoint)."""
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
        "extra": dict(extra or {}),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    def write(fh: BinaryIO) -> None:
        fh.write(buf.getbuffer())

    return atomic_write(path, write)


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint; a clear ImpastoError for a missing, damaged or foreign file."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ImpastoError(f"checkpoint {path} does not exist") from None
    except OSError as e:
        raise ImpastoError(f"cannot read checkpoint {path}: {e.strerror or e}") from None
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, KeyError) as e:
        raise ImpastoError(f"{path} is not a readable impasto checkpoint ({str(e).splitlines()[0][:80]})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ImpastoError(f"{path} is not an impasto checkpoint")
    if payload.get("version") != __version__:
        raise ImpastoError(
            f"checkpoint {path} was written by impasto {payload.get('version')}, this is {__version__}: "
            "it cannot be resumed; start the run again"
        )
    state = payload["state"]
    return Checkpoint(
        config=Config.from_dict(payload["config"]),
        content=str(payload["content"]),
        styles=tuple(str(s) for s in payload["styles"]),
        state=state,
        extra=dict(payload["extra"]),
        sha256=tuple(str(h) for h in payload["sha256"]),
        step=int(state["position"]["step"]),
    )


def resume(path: str | os.PathLike[str], *, weights: VGGWeights | None = None) -> tuple[StyleTransfer, Checkpoint]:
    """The run saved in ``path``, ready to continue with ``run()``; refuses changed inputs."""
    ckpt = load_checkpoint(path)
    for f, want in zip([ckpt.content, *ckpt.styles], ckpt.sha256):
        if file_sha256(f) != want:
            raise ImpastoError(f"input {f} changed since checkpoint {path} was written: it cannot be resumed")
    st = StyleTransfer(ckpt.content, list(ckpt.styles), ckpt.config, weights=weights)
    st.load_state_dict(ckpt.state)
    return st, ckpt


__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "file_sha256", "load_checkpoint", "resume", "save_checkpoint"]
