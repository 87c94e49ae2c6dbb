"""The one way impasto writes a file: to a temporary file in the target's folder, flushed to disk, then
renamed over the target, so an interrupted or failed write never leaves a partial file nor damages an
existing one. Images, animations, contact sheets, the weight cache and checkpoints all go through
:func:`atomic_write`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from impasto.errors import ImpastoError

_TMP_PREFIX = ".impasto-"
_TMP_SUFFIX = ".tmp"


def describe_oserror(err: OSError) -> str:
    """``strerror`` of an OSError (its one-line human part), falling back to ``str``."""
    return err.strerror or str(err).splitlines()[0]


def new_file_mode() -> int:
    """Permission bits a normally created file would get (0o666 minus the umask).

    ``mkstemp`` creates 0o600 files; without this an output would be unreadable to other users. The
    umask is read from /proc where possible because ``os.umask`` can only be read by setting it, which
    races with other threads.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when paths *a* and *b* name the same file (symlinks, ``..``, hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): cannot be the same file
        return False


def check_writable(out: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]] = ()) -> Path:
    """Check before any work that ``out`` can be written, and return its resolved path.

    Refuses a folder, an existing non-regular file (a FIFO or device would be replaced by a regular
    file), one of ``inputs``, a name too long for the file system, a missing or unwritable folder.
    """
    p = Path(out).expanduser()
    _check_name_length(p)
    if p.is_dir():
        raise ImpastoError(f"output {p} is a folder; give a file name such as {p / 'out.png'}")
    for inp in inputs:
        if same_file(p, inp):
            raise ImpastoError(f"output {p} is the same file as input {inp}; refusing to overwrite an input")
    resolved = Path(os.path.realpath(p))
    with contextlib.suppress(OSError):
        mode = os.stat(resolved).st_mode
        if not stat.S_ISREG(mode):
            raise ImpastoError(f"output {p} exists and is not a regular file (a pipe or device); choose another name")
    parent = resolved.parent
    if not parent.exists():
        raise ImpastoError(f"output folder {parent} does not exist; create it first")
    if not parent.is_dir():
        raise ImpastoError(f"output folder {parent} is not a folder")
    # W for creating the temp file and renaming it, X for reaching entries inside the folder.
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ImpastoError(f"output folder {parent} is not writable")
    return resolved


def name_max(folder: str | os.PathLike[str]) -> int:
    """The longest file name (in bytes) the file system of ``folder`` takes (255 when it cannot be asked)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, TypeError):
        return 255


def _nearest_folder(p: Path) -> Path:
    """The folder that would hold ``p``, or its nearest existing ancestor (to ask its NAME_MAX)."""
    parent = p.parent if p.parent != Path("") else Path(".")
    for folder in (parent, *parent.parents):
        try:
            if folder.is_dir():
                return folder
        except OSError:
            continue
    return Path(".")


def _check_name_length(p: Path) -> None:
    """Refuse a name the file system cannot hold before any call that would fail with ENAMETOOLONG."""
    for part in p.parts:
        if len(os.fsencode(part)) > 255:  # no Linux file system takes more; some take less (asked below)
            break
    else:
        part = p.name
    limit = name_max(_nearest_folder(p))
    if len(os.fsencode(part)) > limit:
        raise ImpastoError(f"output name {part[:40]}... is too long for this file system ({limit} bytes at most)")


DERIVED_SUFFIXES = (".ckpt", ".interrupted", "_steps")
"""What a single run adds to its output's name: ``OUT.ckpt``, ``STEM.interrupted.EXT``, ``STEM_steps/``."""


def derived_names(out: str | os.PathLike[str], extra: Sequence[str] = ()) -> list[str]:
    """The names a run writes next to its output ``out``: the output itself, its checkpoint
    ``OUT.ckpt``, the picture of an interrupted run ``STEM.interrupted.EXT`` and the ``--save-every``
    folder ``STEM_steps``; ``extra`` suffixes are appended to the whole name (``.frames``, ``.lock``)."""
    p = Path(out)
    name, stem, suffix = p.name, p.stem, p.suffix
    return [name, name + ".ckpt", f"{stem}.interrupted{suffix}", stem + "_steps", *(name + e for e in extra)]


def check_derived_names(out: str | os.PathLike[str], extra: Sequence[str] = ()) -> None:
    """Refuse, before any work, an output name too long for the names derived from it.

    An ``-o`` name of 245-255 bytes is itself valid, but ``OUT.interrupted.png`` or ``OUT.ckpt`` is not,
    and that would only show when the run is interrupted or checkpoints: one clear ImpastoError now
    names the longest name the output may have in its folder. ``extra``: see :func:`derived_names`.
    """
    p = Path(out).expanduser()
    limit = name_max(_nearest_folder(p))
    size = len(os.fsencode(p.name))
    longest = max(len(os.fsencode(n)) for n in derived_names(p, extra))
    if longest > limit:
        allowed = limit - (longest - size)
        shown = p.name if len(p.name) <= 40 else p.name[:30] + "..." + p.name[-6:]
        derived = ", ".join(derived_names(Path("OUT" + p.suffix), extra)[1:])
        raise ImpastoError(f"output name {shown} is too long ({size} bytes): with the names impasto derives from "
                           f"it ({derived}) it may be at most {max(allowed, 1)} bytes in {_nearest_folder(p)}")


def remove_leftover_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that :func:`atomic_write` left in ``folder``; returns those removed.

    A write is cleaned up on every failure but one: a process killed outright (SIGKILL, power loss)
    leaves its hidden ``.impasto-XXXXXXXX.tmp``. The names are random, so whose a file is cannot be told:
    call this only on a folder the caller holds a lock on (see :mod:`impasto.io.locks`), where every
    writer is the caller or dead.
    """
    removed = []
    for p in Path(folder).glob(f"{_TMP_PREFIX}*{_TMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed


def atomic_write(target: str | os.PathLike[str], write: Callable[[BinaryIO], None], *, mode: int | None = None) -> Path:
    """Write a file through ``write(fh)`` atomically; returns the path written.

    The temporary name is short and fixed in length (``.impasto-XXXXXXXX.tmp``), so a target name near
    the file system's limit still works. Data is fsynced before the rename makes it visible. Any OS
    error becomes an ImpastoError naming the file; on any failure (disk full, Ctrl-C, an encoder error)
    the temporary file is removed and the target is untouched.
    """
    path = Path(target)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, new_file_mode() if mode is None else mode)
        os.replace(tmp_name, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(err, OSError):
            raise ImpastoError(f"could not write {path}: {describe_oserror(err)}") from None
        raise
    return path


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """:func:`atomic_write` of a bytes object."""

    def write(fh: BinaryIO) -> None:
        fh.write(data)

    return atomic_write(target, write)


def atomic_write_json(target: str | os.PathLike[str], data: object) -> Path:
    """:func:`atomic_write` of a JSON document (UTF-8): a reader sees the old or the new one, never half."""
    return atomic_write_bytes(target, json.dumps(data, allow_nan=False, default=str).encode("utf-8"))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes (hex); an ImpastoError naming the file when it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError as e:
        raise ImpastoError(f"cannot read {path}: {describe_oserror(e)}") from None
    return h.hexdigest()
