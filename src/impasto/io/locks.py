"""One writer per output: an exclusive lock file, held by the process that will write the output (a batch
job's result, a video's folder of frames).

The lock file is created with ``O_CREAT | O_EXCL`` and then ``flock``-ed for as long as the job runs. The
``flock`` is what makes stale-lock detection exact: the kernel drops it when its holder dies, however it
dies (SIGKILL, power cut of a client on NFSv4 once its lease expires), so a lock file that exists but can
be ``flock``-ed belongs to a dead process and is taken over, with no guessing from pids or ages (pids are
reused and clocks differ between machines). The holder's pid, host and start time are written inside for
people, not for the protocol.

The one race of lock files -- a process opens the file, the holder unlinks it and a third process creates a
new one -- is closed by re-checking after ``flock`` that the path still names the locked inode.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from impasto.errors import ImpastoError


@dataclass(frozen=True)
class LockInfo:
    """Who held or holds a lock (what the file says; informational)."""

    pid: int | None
    host: str | None
    since: float | None

    def describe(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.since)) if self.since else "?"
        return f"pid {self.pid} on {self.host} since {when}"


class OutputLock:
    """A held lock; :meth:`release` removes the file (also on ``with`` exit)."""

    def __init__(self, path: str, fd: int, stale: LockInfo | None) -> None:
        self.path = path
        self._fd: int | None = fd
        self.stale = stale
        """The dead holder whose lock this one replaced (None if the file was new)."""

    def release(self) -> None:
        """Unlink first, then unlock: a waiter that opened the old file then sees it is no longer the path."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_info(path: str) -> LockInfo:
    try:
        with open(path, encoding="utf-8") as fh:
            data: Any = json.load(fh)
    except (OSError, ValueError):
        return LockInfo(None, None, None)
    if not isinstance(data, dict):
        return LockInfo(None, None, None)
    return LockInfo(data.get("pid"), data.get("host"), data.get("since"))


def try_lock(path: str) -> OutputLock | None:
    """Take the lock at *path*, or return None when a live process holds it.

    Raises:
        ImpastoError: when the lock folder is not writable.
    """
    for _ in range(100):  # each retry means another process changed the file under us; it settles fast
        created = True
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        except FileExistsError:
            created = False
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue  # released between our two opens: try to create it again
            except OSError as e:
                raise ImpastoError(f"cannot open lock {path}: {e.strerror or e}") from None
        except OSError as e:
            raise ImpastoError(f"cannot create lock {path}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the holder released (unlinked) it between our open and flock
            os.close(fd)
            continue
        stale = None if created else read_info(path)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("ascii"), 0)
        return OutputLock(path, fd, stale)
    raise ImpastoError(f"could not settle the lock {path} (another process keeps replacing it)")


def holder(path: str) -> LockInfo | None:
    """Who holds the lock at *path* now (None when it is free or absent): for progress messages."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return read_info(path)
    finally:
        os.close(fd)  # closing drops a flock we may have taken
    return None


__all__ = ["LockInfo", "OutputLock", "holder", "read_info", "try_lock"]
