"""The batch coordinator: skip what is done, lock what it runs, write every result once.

:func:`run_batch` is a generator of :class:`BatchEvent` s (library code never prints; the CLI draws them).
For each job, in order:

1. An output that exists and carries this job's key in its metadata is the job's result: ``skipped``.
2. The job's lock (``OUTDIR/.impasto-batch/NAME.lock``, see :mod:`impasto.io.locks`) is taken; when a
   live process holds it -- a second ``impasto batch`` on the same folder, maybe on another machine of a
   shared filesystem -- the job is deferred and looked at again once everything else is done, so two
   coordinators cooperate on one batch instead of computing outputs twice.
3. The job goes to the backend; its worker resumes from the job's checkpoint if an earlier attempt died.
4. The returned pixels are written atomically, with metadata, by this process, which holds the lock;
   one line goes to ``OUTDIR/.impasto-batch/journal.jsonl`` per file written, then the job's folder of
   transient state (checkpoint, worker status) and the lock are removed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from impasto import __version__
from impasto.batch.jobs import STATE_DIR, JobResult, JobSpec
from impasto.batch.protocol import Backend, BackendEvent
from impasto.errors import ImpastoError
from impasto.io.locks import OutputLock, holder, try_lock

JOURNAL = "journal.jsonl"
DEFER_POLL_S = 0.5
"""How often a job locked by another coordinator is looked at again, once nothing else is left."""


@dataclass(frozen=True)
class Counts:
    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    running: int = 0
    waiting: int = 0
    """Locked by another process; looked at again at the end."""

    @property
    def finished(self) -> int:
        return self.done + self.skipped + self.failed

    @property
    def pending(self) -> int:
        return self.total - self.finished - self.running


@dataclass(frozen=True)
class BatchEvent:
    """Something happened to a job (``kind``: skipped, started, done, failed, waiting) or time passed
    (``tick``); ``counts`` and ``eta`` describe the whole batch after it."""

    kind: str
    counts: Counts
    elapsed: float
    eta: float | None
    """Seconds until the batch should finish (None until a job has finished here)."""
    job: JobSpec | None = None
    result: JobResult | None = None
    message: str = ""


def existing_output(job: JobSpec) -> str:
    """``absent``, ``same`` (this job's result), ``stale`` (an earlier ``impasto batch`` result with
    another key: other inputs or settings), ``foreign`` (a file impasto batch did not write) or
    ``damaged`` (a file that does not decode to the end: cut short or corrupt, whoever wrote it).

    Outputs are written atomically, so a damaged one was damaged afterwards (a bad copy, a failing disk):
    it is reported and kept, never skipped as done nor replaced without ``--overwrite``."""
    from impasto.io import read_metadata

    if not os.path.lexists(job.output):
        return "absent"
    try:
        meta = read_metadata(job.output)
    except ImpastoError:
        return "damaged" if os.path.isfile(job.output) else "foreign"
    from impasto.io.images import image_damage

    if image_damage(job.output) is not None:
        return "damaged"
    batch = meta.get("batch") if meta else None
    if not isinstance(batch, dict) or "key" not in batch:
        return "foreign"
    return "same" if batch["key"] == job.key else "stale"


def _foreign(job: JobSpec, status: str = "foreign") -> str:
    if status == "damaged":
        return (f"{job.output} exists but is damaged or truncated (it does not decode as an image); it is kept "
                "as it is: move it away, or --overwrite replaces it")
    return f"{job.output} exists and was not written by impasto batch (--overwrite replaces it)"


def _metadata(job: JobSpec, out: Any, seconds: float) -> dict[str, Any]:
    from impasto.jobs import JobSpec as RunSpec
    from impasto.jobs import result_metadata

    spec = RunSpec(content=job.content, styles=job.styles, config=job.config, inputs=job.inputs, key=job.key)
    return result_metadata(
        spec, steps=out.steps, seconds=round(out.seconds, 2), restarts=out.restarts,
        batch={"key": job.key, "job": job.name, "attempts": out.attempt, "resumed_from": out.resumed_from,
               "worker": out.worker, "wall_seconds": round(seconds, 2)},
    )


def _write(job: JobSpec, out: Any, seconds: float, journal: Path) -> None:
    """Write the output atomically, then journal it (the journal is what 'exactly once' is checked by)."""
    from impasto.io import save_image

    # np.array copies: arrays that came through Ray's object store are read-only views.
    rgb = torch.from_numpy(np.array(out.rgb)).permute(2, 0, 1).float() / 255.0
    alpha = None if out.alpha is None else torch.from_numpy(np.array(out.alpha)).unsqueeze(0).float() / 255.0
    save_image(rgb, job.output, alpha=alpha, metadata=_metadata(job, out, seconds), inputs=list(job.inputs))
    line = json.dumps({"event": "written", "job": job.name, "key": job.key, "output": job.output,
                       "attempts": out.attempt, "resumed_from": out.resumed_from, "worker": out.worker,
                       "writer": f"{socket.gethostname()}:{os.getpid()}", "time": time.time(),
                       "version": __version__})
    # One write() of one line with O_APPEND: lines from concurrent coordinators never interleave.
    fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def _cleanup(job: JobSpec) -> None:
    """Remove the job's transient folder: checkpoint, status, and temporary files of killed writers."""
    shutil.rmtree(job.workdir, ignore_errors=True)


def read_journal(outdir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The journal's entries (one per output file written), oldest first."""
    path = Path(outdir) / STATE_DIR / JOURNAL
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def run_batch(
    jobs: Sequence[JobSpec], backend: Backend, *, overwrite: bool = False, tick: float = 1.0,
) -> Generator[BatchEvent, None, None]:
    """Run *jobs* on *backend*, yielding progress; every job ends ``done``, ``skipped`` or ``failed``.

    ``overwrite`` lets a job replace a file at its output name that impasto batch did not write
    (otherwise that job fails rather than destroy it). Closing the generator (Ctrl-C in the CLI)
    stops the workers and releases the locks; finished outputs stay, and unfinished jobs keep their
    checkpoints for the next run.
    """
    if not jobs:
        return
    state = Path(jobs[0].workdir).parent
    try:
        state.mkdir(exist_ok=True)
    except OSError as e:
        raise ImpastoError(f"cannot create {state}: {e.strerror or e}") from None
    journal = state / JOURNAL
    t0 = time.monotonic()
    total = len(jobs)
    done = skipped = failed = 0
    durations: list[float] = []
    pending: deque[JobSpec] = deque()
    deferred: deque[JobSpec] = deque()
    running: dict[str, tuple[JobSpec, OutputLock, float]] = {}
    started = False
    notes: dict[str, str] = {}
    announced: set[str] = set()

    def counts() -> Counts:
        return Counts(total, done, skipped, failed, len(running), len(deferred))

    def eta() -> float | None:
        if not durations:
            return None
        left = total - done - skipped - failed
        # The latest jobs only: the first ones of each worker also paid its start-up (torch, the VGG).
        recent = durations[-max(1, backend.slots):]
        return sum(recent) / len(recent) * left / max(1, min(backend.slots, left or 1))

    def event(kind: str, job: JobSpec | None = None, result: JobResult | None = None, msg: str = "") -> BatchEvent:
        return BatchEvent(kind, counts(), time.monotonic() - t0, eta(), job, result, msg)

    try:
        # Finished jobs first, before any worker starts: re-running a finished batch starts none.
        for job in jobs:
            status = existing_output(job)
            if status == "same":
                skipped += 1
                yield event("skipped", job, JobResult(job, "skipped", note="output up to date"))
            elif status in ("foreign", "damaged") and not overwrite:
                failed += 1
                yield event("failed", job, JobResult(job, "failed", error=_foreign(job, status)))
            else:
                pending.append(job)
        if pending:
            started = True
            backend.start()
        while pending or running or deferred:
            # Fill the free slots.
            while pending and len(running) < backend.slots:
                job = pending.popleft()
                lock = try_lock(str(state / f"{job.name}.lock"))
                if lock is None:
                    who = holder(str(state / f"{job.name}.lock"))
                    deferred.append(job)
                    if job.name not in announced:
                        announced.add(job.name)
                        yield event("waiting", job, msg=f"locked by {who.describe() if who else 'another process'}")
                    continue
                status = existing_output(job)  # it may have been finished while we waited for the lock
                if status == "same":
                    lock.release()
                    skipped += 1
                    yield event("skipped", job, JobResult(job, "skipped", note="finished by another run"))
                    continue
                if status in ("foreign", "damaged") and not overwrite:
                    lock.release()
                    failed += 1
                    yield event("failed", job, JobResult(job, "failed", error=_foreign(job, status)))
                    continue
                if status == "stale":
                    notes[job.name] = "replaced an output made with other settings"
                if lock.stale is not None:
                    notes[job.name] = (notes.get(job.name, "") + "; " if job.name in notes else "") + \
                        f"took over a stale lock ({lock.stale.describe()})"
                backend.submit(job)
                running[job.name] = (job, lock, time.monotonic())
                yield event("started", job)
            if not running and not pending:
                if not deferred:
                    break
                # Only jobs another coordinator holds are left: look again until it finishes them.
                time.sleep(DEFER_POLL_S)
                pending.extend(deferred)
                deferred.clear()
                continue
            events = backend.wait(tick)
            for ev in events:
                job, lock, t_start = running.pop(ev.job.name)
                result = _finish(ev, lock, t_start, journal, notes.get(job.name, ""))
                if result.status == "done":
                    done += 1
                    durations.append(result.seconds)
                else:
                    failed += 1
                yield event(result.status, job, result)
            if not events:
                yield event("tick")
    finally:
        for _, lock, _ in running.values():
            lock.release()
        if started:
            backend.close()


def _finish(ev: BackendEvent, lock: OutputLock, t_start: float, journal: Path, note: str) -> JobResult:
    job = ev.job
    seconds = time.monotonic() - t_start
    if ev.lost_workers:
        note = (note + "; " if note else "") + f"survived {ev.lost_workers} lost worker(s)"
    try:
        if ev.output is None:
            return JobResult(job, "failed", seconds, error=ev.error or "failed", note=note)
        try:
            _write(job, ev.output, seconds, journal)
        except (ImpastoError, OSError, ValueError) as e:
            return JobResult(job, "failed", seconds, output=ev.output, error=f"writing the output: {e}", note=note)
        _cleanup(job)
        if ev.output.resumed_from:
            note = (note + "; " if note else "") + f"resumed from step {ev.output.resumed_from}"
        return JobResult(job, "done", seconds, output=ev.output, note=note)
    finally:
        lock.release()


__all__ = ["BatchEvent", "Counts", "existing_output", "read_journal", "run_batch"]
