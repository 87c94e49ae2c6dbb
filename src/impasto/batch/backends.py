"""Where jobs run: one small interface, a local process pool, and (in ``ray_backend``) Ray actors.

The coordinator (:mod:`impasto.batch.runner`) decides *what* runs -- skips, locks, writes -- and a
:class:`Backend` only runs :class:`~impasto.batch.jobs.JobSpec` s somewhere and hands back
:class:`BackendEvent` s. A backend retries a job whose worker died (up to ``max_retries`` times; the
worker resumes from the job's checkpoint) and reports a job failed only when it raised an error, which
would happen again, or when its workers kept dying.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from impasto.batch.jobs import JobOutput, JobSpec
from impasto.errors import ImpastoError


@dataclass(frozen=True)
class BackendEvent:
    """A job finished (``output`` set) or failed (``error`` set)."""

    job: JobSpec
    output: JobOutput | None = None
    error: str | None = None
    lost_workers: int = 0
    """Worker deaths this job survived (or, when failed, did not)."""


class Backend(Protocol):
    """Runs jobs; the coordinator never submits more than :attr:`slots` at once."""

    name: str

    @property
    def slots(self) -> int:
        """Jobs that can run at the same time."""
        ...

    @property
    def description(self) -> str:
        """One line for the progress display (``local: 2 workers × 1 thread``)."""
        ...

    def start(self) -> None:
        """Start workers (called only once a job needs running, so a finished batch starts none)."""
        ...

    def submit(self, job: JobSpec) -> None: ...

    def wait(self, timeout: float) -> list[BackendEvent]:
        """Events that arrived within *timeout* seconds (maybe none)."""
        ...

    def close(self) -> None:
        """Stop the workers; jobs still running are abandoned (they resume from their checkpoints)."""
        ...


def cpu_count() -> int:
    """Cores this process may use (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


def split_threads(workers: int | None, threads: int | None, cores: int, jobs: int) -> tuple[int, int]:
    """Workers and torch threads per worker with workers × threads <= cores.

    Defaults: one single-threaded worker per core (jobs are independent, so processes scale better
    than threads inside one optimisation), but never more workers than jobs; spare cores go to threads.
    """
    if workers is None:
        workers = max(1, min(jobs, cores // (threads or 1)))
    if threads is None:
        threads = max(1, cores // workers)
    if workers * threads > cores:
        raise ImpastoError(f"{workers} workers × {threads} threads would oversubscribe the {cores} CPU cores "
                           "this process may use; lower --workers or --threads")
    return workers, threads


# -- local process pool -------------------------------------------------------------------------------


def _die_with_coordinator(pid: int) -> None:
    """Exit when the coordinator (process *pid*) dies, however it dies, so no orphan keeps running (and
    checkpointing) a job that a re-run of the batch would start again.

    The worker's parent is the forkserver, which itself lives as long as any worker does, so
    ``PR_SET_PDEATHSIG`` cannot help; a pidfd (Linux 5.3+) becomes readable exactly when *pid* exits,
    elsewhere the pid is polled once a second.
    """
    import select
    import threading

    def watch() -> None:
        try:
            fd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            fd = None
        while True:
            if fd is not None:
                select.select([fd], [], [])
                os._exit(1)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass
            time.sleep(1.0)

    threading.Thread(target=watch, name="impasto-batch-watchdog", daemon=True).start()


def _pool_worker(conn: Connection, threads: int, coordinator: int) -> None:
    """A local worker: receive jobs, run them, send results; exit on ``None`` or a closed pipe."""
    _die_with_coordinator(coordinator)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    from impasto.batch.worker import execute, set_threads

    set_threads(threads)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            out = execute(job)
        except ImpastoError as e:
            conn.send(("error", job.name, str(e)))
        except Exception as e:  # noqa: BLE001 - any failure of one job is reported, the worker lives on
            conn.send(("error", job.name, f"{type(e).__name__}: {e}"))
        else:
            conn.send(("done", job.name, out))


@dataclass
class _Slot:
    proc: BaseProcess
    conn: Connection
    ready: bool = False
    job: JobSpec | None = None


class LocalBackend:
    """A pool of worker processes on this machine, each with ``threads`` torch threads.

    Not :class:`concurrent.futures.ProcessPoolExecutor`: one SIGKILLed worker breaks that whole pool,
    while here the dead worker is replaced and its job retried (resuming from its checkpoint).
    Workers come from a ``forkserver`` that has imported torch and impasto once (never ``fork`` of the
    coordinator, which may hold torch thread pools): a replacement worker is ready in milliseconds, not
    the seconds a fresh interpreter needs to import torch. Where there is no forkserver (not POSIX),
    ``spawn``.
    """

    name = "local"

    def __init__(self, workers: int, threads: int, *, max_retries: int = 2) -> None:
        self.workers = workers
        self.threads = threads
        self.max_retries = max_retries
        if "forkserver" in mp.get_all_start_methods():
            self._ctx: Any = mp.get_context("forkserver")
            self._ctx.set_forkserver_preload(["impasto.batch.worker"])
        else:
            self._ctx = mp.get_context("spawn")
        self._slots: list[_Slot] = []
        self._queue: deque[JobSpec] = deque()
        self._lost: dict[str, int] = {}
        self._startup_deaths = 0

    @property
    def slots(self) -> int:
        return self.workers

    @property
    def description(self) -> str:
        return f"local: {self.workers} worker(s) × {self.threads} thread(s)"

    def worker_pids(self) -> list[int]:
        return [s.proc.pid for s in self._slots if s.proc.pid is not None]

    def _spawn(self) -> _Slot:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_pool_worker, args=(child, self.threads, os.getpid()), daemon=True,
                                 name="impasto-batch-worker")
        proc.start()
        child.close()
        return _Slot(proc, parent)

    def start(self) -> None:
        if not self._slots:
            self._slots = [self._spawn() for _ in range(self.workers)]

    def submit(self, job: JobSpec) -> None:
        self._queue.append(job)
        self._dispatch()

    def _dispatch(self) -> None:
        for slot in self._slots:
            if not self._queue:
                return
            if slot.ready and slot.job is None:
                slot.job = self._queue.popleft()
                slot.conn.send(slot.job)

    def wait(self, timeout: float) -> list[BackendEvent]:
        events: list[BackendEvent] = []
        if not self._slots:
            time.sleep(timeout)
            return events
        waitables: list[Any] = [s.conn for s in self._slots] + [s.proc.sentinel for s in self._slots]
        wait(waitables, timeout)
        for i, slot in enumerate(self._slots):
            # Messages first: a worker that sent its result and then died finished its job.
            events += self._drain(slot)
            if not slot.proc.is_alive():
                events += self._drain(slot)
                events += self._replace(i)
        self._dispatch()
        return events

    def _drain(self, slot: _Slot) -> list[BackendEvent]:
        events: list[BackendEvent] = []
        while True:
            try:
                if not slot.conn.poll():
                    return events
                msg = slot.conn.recv()
            except (EOFError, OSError):
                return events  # the pipe closed: the worker died, its sentinel reports it
            if msg[0] == "ready":
                slot.ready = True
            elif slot.job is not None and msg[1] == slot.job.name:
                job, slot.job = slot.job, None
                lost = self._lost.pop(job.name, 0)
                if msg[0] == "done":
                    events.append(BackendEvent(job, output=msg[2], lost_workers=lost))
                else:
                    events.append(BackendEvent(job, error=msg[2], lost_workers=lost))

    def _replace(self, i: int) -> list[BackendEvent]:
        """Worker *i* died: start another; retry its job unless it has used up its retries."""
        slot = self._slots[i]
        code = slot.proc.exitcode
        why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        with contextlib.suppress(OSError):
            slot.conn.close()
        if not slot.ready:
            # Died before it could take a job: respawning would only loop (a broken install, no memory).
            self._startup_deaths += 1
            if self._startup_deaths >= 3:
                raise ImpastoError(f"batch workers die while starting ({why}); is impasto installed for "
                                   f"{sys.executable}?")
        self._slots[i] = self._spawn()
        job = slot.job
        if job is None:
            return []
        lost = self._lost.get(job.name, 0) + 1
        if lost > self.max_retries:
            self._lost.pop(job.name, None)
            hint = " (killed: out of memory? try a smaller --size or fewer --workers)" if code == -9 else ""
            return [BackendEvent(job, error=f"its worker died {lost} times (last: {why}){hint}",
                                 lost_workers=lost)]
        self._lost[job.name] = lost
        self._queue.appendleft(job)
        return []

    def close(self) -> None:
        """Idle workers exit; a worker still running a job (the batch was interrupted) is killed at once:
        its job resumes from its checkpoint in the next run."""
        for slot in self._slots:
            if slot.job is not None:
                slot.proc.kill()
            with contextlib.suppress(OSError, BrokenPipeError):
                slot.conn.send(None)
        deadline = time.monotonic() + 5.0
        for slot in self._slots:
            slot.proc.join(max(0.0, deadline - time.monotonic()))
            if slot.proc.is_alive():
                slot.proc.kill()
                slot.proc.join(1.0)
            with contextlib.suppress(OSError):
                slot.conn.close()
        self._slots = []


def make_backend(name: str, *, workers: int | None, threads: int | None, jobs: int, max_retries: int,
                 address: str | None = None, gpus_per_worker: float | None = None) -> Backend:
    """The backend called *name* (``local`` or ``ray``), sized for *jobs* jobs."""
    if name == "local":
        if address is not None or gpus_per_worker is not None:
            raise ImpastoError(f"{'--address' if address is not None else '--gpus-per-worker'} is for --backend ray")
        w, t = split_threads(workers, threads, cpu_count(), jobs)
        return LocalBackend(w, t, max_retries=max_retries)
    if name == "ray":
        from impasto.batch.ray_backend import RayBackend

        return RayBackend(address=address, workers=workers, threads=threads, jobs=jobs, max_retries=max_retries,
                          gpus_per_worker=gpus_per_worker)
    raise ImpastoError(f"unknown backend {name!r} (local or ray)")


__all__ = ["Backend", "BackendEvent", "LocalBackend", "cpu_count", "make_backend", "split_threads"]
