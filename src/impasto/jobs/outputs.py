"""One rule for a job's output file: one run writes it at a time, an interrupted run's checkpoint
beside it is never thrown away by another run, and a resume never replaces a newer result.

For ``OUT`` the job's companions are ``OUT.ckpt`` (its checkpoint), ``OUT.lock`` (held while a run
writes it) and ``OUT.interrupted.EXT`` (the image at an interruption); their names come from the
output's, never from inside a checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from impasto.errors import ImpastoError
from impasto.io.locks import OutputLock, holder, try_lock

CHECKPOINT_SUFFIX = ".ckpt"
LOCK_SUFFIX = ".lock"


def checkpoint_for(output: str | os.PathLike[str]) -> Path:
    p = Path(output)
    return p.with_name(p.name + CHECKPOINT_SUFFIX)


def interrupted_for(output: str | os.PathLike[str]) -> Path:
    p = Path(output)
    return p.with_name(f"{p.stem}.interrupted{p.suffix}")


def output_for(checkpoint: str | os.PathLike[str]) -> Path:
    """The output a checkpoint belongs to, from the checkpoint's own file name (``OUT.ckpt`` -> ``OUT``)."""
    p = Path(checkpoint)
    if not p.name.endswith(CHECKPOINT_SUFFIX) or len(p.name) == len(CHECKPOINT_SUFFIX):
        raise ImpastoError(f"cannot tell the output of checkpoint {checkpoint} from its name (OUTPUT.ckpt); "
                           "give the output with -o")
    return p.with_name(p.name[: -len(CHECKPOINT_SUFFIX)])


@dataclass
class OutputClaim:
    """A held claim on an output: release it (or leave the ``with``) when the run ends."""

    output: Path
    checkpoint: Path
    lock: OutputLock

    def release(self) -> None:
        self.lock.release()

    def __enter__(self) -> OutputClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def claim_output(output: str | os.PathLike[str], *, resuming: str | os.PathLike[str] | None = None,
                 restart: bool = False, force: bool = False) -> OutputClaim:
    """Lock ``output`` for one run, or raise one clear ImpastoError.

    A new run (``resuming`` None) refuses an output with a pending checkpoint from another run unless
    ``restart`` (which discards it). A resume from ``resuming`` refuses to replace an output written
    after that checkpoint unless ``force``.
    """
    out = Path(output)
    ckpt = checkpoint_for(out)
    lock_path = out.with_name(out.name + LOCK_SUFFIX)
    lock = try_lock(str(lock_path))
    if lock is None:
        who = holder(str(lock_path))
        raise ImpastoError(f"another impasto run is writing {out}{f' ({who.describe()})' if who else ''}; "
                           "wait for it to finish or choose another output")
    try:
        if resuming is None and ckpt.exists():
            if not restart:
                raise ImpastoError(f"{ckpt} holds an interrupted run to {out}: continue it with "
                                   f"'impasto resume {ckpt}', or pass --restart to discard it and start over")
            ckpt.unlink()
        if resuming is not None and not force:
            try:
                newer = os.stat(out).st_mtime > os.stat(resuming).st_mtime
            except OSError:
                newer = False
            if newer:
                raise ImpastoError(f"{out} was written after checkpoint {resuming}; resuming would replace it "
                                   "(pass --force to do so anyway)")
    except BaseException:
        lock.release()
        raise
    return OutputClaim(out, ckpt, lock)


__all__ = ["CHECKPOINT_SUFFIX", "OutputClaim", "checkpoint_for", "claim_output", "interrupted_for", "output_for"]
