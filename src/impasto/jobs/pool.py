"""One pool of job processes for every front-end that runs jobs in the background (the studio's
server, batch's local backend).

Each worker is ``python -m impasto.jobs.worker`` (see there): started before a job arrives, it keeps
torch imported and the VGG weights loaded, and runs the pool's jobs one at a time. A process per worker
(not a thread) because a crash, an out-of-memory kill or a runaway native library in one job must not
take its owner down, and killing a process is the only cancel that always works.

The protocol is JSON lines over the worker's stdin and stdout. Down: a job,
``{"run": "impasto.<module>:<function>", "job": {...}, "log": PATH|null}``, then maybe ``cancel`` or
``suspend``. Up: ``{"type": KIND, ...}`` events, ending each job with exactly one of ``done``,
``failed``, ``cancelled``, ``suspended``. What a job message holds and what its events carry is the
front-end's business (its runner function); the pool only routes them. The owner reads everything
that happened as :class:`PoolEvent` s from :meth:`WorkerPool.events`, including the pool's own
``lost`` (the worker died under the job and the job is given up) and ``retry`` (it died, and the job
was queued again: it resumes from its checkpoint on another worker).

A worker notices its pool's death (however it dies) by the end of its stdin and exits at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import impasto
from impasto.errors import ImpastoError

TERMINAL = ("done", "failed", "cancelled", "suspended", "lost")
"""Event kinds that end a job in the pool (``lost``: the pool's own, the worker died and no retry is left)."""
STARTUP_DEATHS = 3
"""Workers in a row dying before they are ready: the installation is broken, the pool gives up."""


@dataclass(frozen=True)
class PoolEvent:
    """Something that happened to job ``key``: an event its worker sent (``kind`` and its fields in
    ``data``) or the pool's own ``retry`` / ``lost`` (data: ``error``, ``code``, ``lost``)."""

    key: str
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


def package_pythonpath() -> str:
    """PYTHONPATH that makes a child process import this very impasto (a checkout or an install)."""
    root = str(Path(impasto.__file__).resolve().parent.parent)
    old = os.environ.get("PYTHONPATH")
    return root if not old else root + os.pathsep + old


@dataclass
class _Job:
    key: str
    line: str
    lost: int = 0
    given_up: bool = False
    """Cancelled or killed by the owner: never retried."""


@dataclass
class _Worker:
    proc: subprocess.Popen[str]
    ready: bool = False
    job: _Job | None = None
    error: str | None = None
    """What the worker said when it failed before it was ready."""


class WorkerPool:
    """Up to ``size`` worker processes, each with ``threads`` torch threads (0: torch's default).

    ``weights``: VGG weights every worker loads at start ('' the bundled VGG19; None: none, each job
    loads its own). ``prestart``: start the workers at :meth:`start`, before any job (else on demand).
    ``max_retries``: times a job whose worker died is queued again. ``log``: the workers' stderr outside
    jobs (None: this process's). ``memory_share``: each worker's ``auto`` memory budget is this fraction
    of the machine's (:func:`impasto.tiling.memory.set_memory_share`; a batch passes its worker count).
    Thread-safe; one thread reads :meth:`events`.
    """

    def __init__(self, size: int, *, threads: int = 0, weights: str | None = None, prestart: bool = True,
                 max_retries: int = 0, log: str | os.PathLike[str] | None = None, memory_share: int = 1) -> None:
        self.size = max(1, size)
        self.threads = threads
        self.memory_share = memory_share
        self.weights = weights
        self.prestart = prestart
        self.max_retries = max_retries
        self.log = log
        self._lock = threading.RLock()
        self._workers: list[_Worker] = []
        self._pending: deque[_Job] = deque()
        self._inbox: queue.Queue[tuple[_Worker, dict[str, Any] | None]] = queue.Queue()
        self._startup_deaths = 0
        self._dead: deque[_Worker] = deque(maxlen=STARTUP_DEATHS)
        self._closed = False
        self.broken: str | None = None
        """Why the pool gave up starting workers (see :meth:`events`), or None."""

    # -- processes ------------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        cmd = [sys.executable, "-m", "impasto.jobs.worker", "--threads", str(self.threads)]
        if self.memory_share > 1:
            cmd += ["--memory-share", str(self.memory_share)]
        if self.weights is not None:
            cmd += ["--weights", self.weights]
        env = {**os.environ, "PYTHONPATH": package_pythonpath()}
        if self.threads > 0:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.threads)
        log = open(self.log, "ab") if self.log is not None else None  # noqa: SIM115 - the child owns it
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1, env=env,
                start_new_session=True,  # a Ctrl-C at the owner's terminal is the owner's to handle
            )
        finally:
            if log is not None:
                log.close()
        w = _Worker(proc)
        self._workers.append(w)
        threading.Thread(target=self._read, args=(w,), name=f"impasto-pool-{proc.pid}", daemon=True).start()
        return w

    def _read(self, w: _Worker) -> None:
        assert w.proc.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            for line in w.proc.stdout:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if isinstance(ev, dict):
                    self._inbox.put((w, ev))
        w.proc.wait()
        self._inbox.put((w, None))

    @staticmethod
    def _send(w: _Worker, line: str) -> None:
        try:
            assert w.proc.stdin is not None
            w.proc.stdin.write(line + "\n")
            w.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # it died: its reader reports it

    def start(self) -> None:
        """Start the workers now when ``prestart`` (so the first job starts without the start-up delay)."""
        with self._lock:
            while self.prestart and not self._closed and len(self._workers) < self.size:
                self._spawn()

    def pids(self) -> list[int]:
        with self._lock:
            return [w.proc.pid for w in self._workers]

    def process(self, key: str) -> subprocess.Popen[str] | None:
        """The process running job ``key`` (None when it is not running)."""
        w = self._worker_of(key)
        return None if w is None else w.proc

    def _worker_of(self, key: str) -> _Worker | None:
        with self._lock:
            return next((w for w in self._workers if w.job is not None and w.job.key == key), None)

    # -- jobs -----------------------------------------------------------------------------------
    @property
    def busy(self) -> int:
        """Jobs running or waiting for a worker."""
        with self._lock:
            return len(self._pending) + sum(w.job is not None for w in self._workers)

    @property
    def free(self) -> int:
        """Jobs that could start now without waiting for another to end."""
        return max(0, self.size - self.busy)

    def submit(self, key: str, run: str, job: Mapping[str, Any], *, log: str | os.PathLike[str] | None = None) -> None:
        """Queue job ``key``: the worker calls ``run`` (``impasto.module:function``) with ``job``."""
        line = json.dumps({"run": run, "job": dict(job), "log": None if log is None else os.fspath(log)},
                          allow_nan=False, default=str)
        with self._lock:
            if self._closed:
                raise ImpastoError("the worker pool is closed")
            self._pending.append(_Job(key, line))
            self._dispatch()

    def _dispatch(self) -> None:
        with self._lock:
            while self._pending and not self._closed:
                idle = next((w for w in self._workers if w.job is None and w.proc.poll() is None), None)
                if idle is None:
                    if len(self._workers) >= self.size:
                        return
                    idle = self._spawn()
                idle.job = self._pending.popleft()
                self._send(idle, idle.job.line)  # a worker still starting reads it once ready

    def cancel(self, key: str) -> bool:
        """Ask job ``key`` to end without a result (a queued one is dropped: True, no event follows)."""
        with self._lock:
            for j in self._pending:
                if j.key == key:
                    self._pending.remove(j)
                    return True
            w = self._worker_of(key)
            if w is not None and w.job is not None:
                w.job.given_up = True
                self._send(w, "cancel")
        return False

    def suspend(self, key: str) -> None:
        """Ask job ``key`` to checkpoint and end (``suspended``)."""
        w = self._worker_of(key)
        if w is not None:
            self._send(w, "suspend")

    def kill(self, key: str, *, wait: float = 0.0) -> None:
        """Kill the process running job ``key`` (its job ends ``lost``, never retried); wait for it to end."""
        w = self._worker_of(key)
        if w is None or w.job is None:
            return
        w.job.given_up = True
        with contextlib.suppress(OSError):
            w.proc.kill()
        if wait:
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.proc.wait(timeout=wait)

    # -- events ---------------------------------------------------------------------------------
    def events(self, timeout: float) -> list[PoolEvent]:
        """What happened within ``timeout`` seconds (at least one event, unless none came in time).

        When workers keep dying before they are ready (a broken installation, no memory), every job
        waiting for one ends ``lost`` with the reason, which stays in :attr:`broken`."""
        out: list[PoolEvent] = []
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return out
        while True:
            out += self._handle(*item)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
        with self._lock:
            if self._startup_deaths >= STARTUP_DEATHS:
                out += self._give_up()
            self._dispatch()
        return out

    def _handle(self, w: _Worker, ev: dict[str, Any] | None) -> list[PoolEvent]:
        with self._lock:
            if ev is None:
                return self._exited(w)
            kind = str(ev.get("type"))
            if kind == "ready":
                w.ready = True
                self._startup_deaths = 0
                return []
            job = w.job
            if job is None:
                if kind == "failed":
                    w.error = str(ev.get("error"))
                return []
            if kind in TERMINAL:
                w.job = None
            return [PoolEvent(job.key, kind, {k: v for k, v in ev.items() if k != "type"})]

    def _exited(self, w: _Worker) -> list[PoolEvent]:
        with contextlib.suppress(ValueError):
            self._workers.remove(w)
        with contextlib.suppress(OSError, ValueError):
            if w.proc.stdin is not None:
                w.proc.stdin.close()
        code = w.proc.returncode
        if not w.ready:
            self._startup_deaths += 1
            self._dead.append(w)
        job, w.job = w.job, None
        if job is None:
            if self.prestart and not self._closed and w.ready:
                self.start()  # a worker that ended by itself (its job limit): keep the pool full
            return []
        why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        if not w.ready and not job.given_up:
            self._pending.appendleft(job)  # it never started this job: not the job's fault
            return []
        job.lost += 1
        if job.lost <= self.max_retries and not job.given_up and not self._closed:
            self._pending.appendleft(job)
            return [PoolEvent(job.key, "retry", {"error": why, "code": code, "lost": job.lost})]
        return [PoolEvent(job.key, "lost", {"error": why, "code": code, "lost": job.lost,
                                            "given_up": job.given_up})]

    def _give_up(self) -> list[PoolEvent]:
        last = next((w.error for w in reversed(self._dead) if w.error), None)
        self.broken = (f"job processes die while starting{f' ({last})' if last else ''}; is impasto "
                       f"installed for {sys.executable}?")
        self._startup_deaths = 0
        waiting = list(self._pending) + [w.job for w in self._workers if w.job is not None and not w.ready]
        self._pending.clear()
        for w in self._workers:
            if not w.ready:
                w.job = None
        return [PoolEvent(j.key, "lost", {"error": self.broken, "code": None, "lost": j.lost, "given_up": True})
                for j in waiting]

    # -- shutting down --------------------------------------------------------------------------
    def close(self, *, timeout: float = 5.0) -> None:
        """Idle workers exit (end of their input); a worker still running a job is killed: its job
        resumes from its checkpoint another time."""
        with self._lock:
            self._closed = True
            self._pending.clear()
            workers = list(self._workers)
        for w in workers:
            if w.job is not None:
                with contextlib.suppress(OSError):
                    w.proc.send_signal(signal.SIGKILL)
            with contextlib.suppress(OSError, ValueError):
                if w.proc.stdin is not None:
                    w.proc.stdin.close()
        deadline = time.monotonic() + timeout
        for w in workers:
            try:
                w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()


__all__ = ["PoolEvent", "WorkerPool", "package_pythonpath"]
