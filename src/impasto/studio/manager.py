"""The job queue, over the job layer's pool of job processes (:class:`impasto.jobs.pool.WorkerPool`).

One dispatcher thread claims the oldest queued job from the database whenever a slot is free and
hands it to the pool, whose worker runs it with :mod:`impasto.studio.worker`; one thread reads the
pool's events and turns them into database updates and into an in-memory event log that the SSE route
streams. A job whose process dies fails (with the process's last words); it is not retried. The
database is the truth: on start, jobs that a killed server left ``running`` go back to the queue and
their processes resume them from the last checkpoint.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

from impasto.config import Config
from impasto.errors import ImpastoError
from impasto.inputs import resolve_device
from impasto.io.locks import OutputLock, holder, try_lock
from impasto.jobs.pool import TERMINAL, WorkerPool
from impasto.studio.db import FINISHED, Job, JobDB
from impasto.studio.storage import DataDir
from impasto.studio.worker import RUNNER
from impasto.tiling.cost import RateMeter, evaluations_per_step, rate_key

EVENT_LOG_LENGTH = 4000
"""Events kept per job for SSE replay (bounded, so memory stays flat however long a job runs)."""
DB_PROGRESS_SECONDS = 0.5
"""At most one progress write to the database per job per this many seconds."""


@dataclass(frozen=True)
class PoolSettings:
    """How jobs run. ``weights`` is a VGG weights file for every job (None: the bundled VGG19)."""

    workers: int = 1
    threads: int = 0
    weights: str | None = None
    preview_seconds: float = 2.0
    checkpoint_every: int = 20
    max_queued: int = 16
    prestart: bool = True
    """Start the job processes with the server (torch imported, weights loaded) so a job starts at once."""


class EventLog:
    """The events of one job, numbered, bounded; readers poll with the last number they saw."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: collections.deque[tuple[int, str, dict[str, Any]]] = collections.deque(
            maxlen=EVENT_LOG_LENGTH)
        self._seq = 0

    def add(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            self._events.append((self._seq, kind, data))

    def since(self, seq: int) -> list[tuple[int, str, dict[str, Any]]]:
        with self._lock:
            if not self._events or self._events[-1][0] <= seq:
                return []
            return [e for e in self._events if e[0] > seq]


class _Running:
    def __init__(self, job: Job, pool: WorkerPool) -> None:
        self.job = job
        self._pool = pool
        self.cancel_requested = False
        self.delete_requested = False
        self.terminal: str | None = None
        self.last_db = 0.0
        self.step = job.step
        self.loss: float | None = job.loss
        self.rate_key: tuple[Any, ...] | None = None
        self.evaluations = 1.0
        try:  # the stored config was checked when the job was submitted; a bad one just goes unmeasured
            cfg = Config.from_dict(job.config)
            self.rate_key = rate_key(cfg, "cpu" if resolve_device(cfg.device).type == "cpu" else "cuda")
            self.evaluations = evaluations_per_step(cfg)
        except (ImpastoError, TypeError, ValueError, KeyError):
            pass

    @property
    def proc(self) -> subprocess.Popen[str] | None:
        """The job process running it (None while it waits for one)."""
        return self._pool.process(self.job.id)


class JobManager:
    """Owns the job processes of one data folder (a lock file keeps a second server out)."""

    def __init__(self, data: DataDir, settings: PoolSettings) -> None:
        self.data = data
        self.settings = settings
        self.db = JobDB(data.db_path)
        self.pool = WorkerPool(max(1, settings.workers), threads=settings.threads, weights=settings.weights or "",
                               prestart=settings.prestart, max_retries=0, log=data.root / "worker.log")
        self._folder_lock: OutputLock | None = None
        self._cv = threading.Condition()
        self._running: dict[str, _Running] = {}
        self._logs: dict[str, EventLog] = {}
        self._stopping = False
        self._closed = False
        self.rates = RateMeter()
        """Seconds per evaluation per megapixel from the jobs' own steps: what ``POST /api/cost`` prices with."""
        self._threads: list[threading.Thread] = []

    # -- life cycle -----------------------------------------------------------------------------
    def lock(self) -> None:
        """Take the data folder (a second server on it would run the same jobs twice); idempotent."""
        if self._folder_lock is not None:
            return
        lock = try_lock(str(self.data.lock_path))
        if lock is None:
            who = holder(str(self.data.lock_path))
            raise ImpastoError(f"another impasto serve is using {self.data.root}{f' ({who.describe()})' if who else ''}"
                               "; stop it or use another --data")
        self._folder_lock = lock

    def start(self) -> None:
        self.lock()
        for job in self.db.requeue_interrupted():
            self.log(job.id).add("state", {"state": "queued", "note": "server restarted; resuming"})
        self.pool.start()
        self._threads = [threading.Thread(target=self._dispatch, name="impasto-dispatch", daemon=True),
                         threading.Thread(target=self._pump, name="impasto-events", daemon=True)]
        for t in self._threads:
            t.start()

    def stop(self, *, suspend_timeout: float = 10.0) -> None:
        """Stop: running jobs save a checkpoint and go back to the queue (they resume on the next start)."""
        with self._cv:
            self._stopping = True
            running = list(self._running)
            self._cv.notify_all()
        for job_id in running:
            self.pool.suspend(job_id)
        deadline = time.monotonic() + suspend_timeout
        with self._cv:
            while self._running and time.monotonic() < deadline:
                self._cv.wait(timeout=0.1)
        self.pool.close()  # a job that did not suspend in time is killed: it resumes from its checkpoint
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout=5)
        self.db.close()
        if self._folder_lock is not None:
            self._folder_lock.release()
            self._folder_lock = None

    # -- queries and commands used by the API ---------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self._stopping

    def log(self, job_id: str) -> EventLog:
        with self._cv:
            log = self._logs.get(job_id)
            if log is None:
                log = self._logs[job_id] = EventLog()
            return log

    def live(self, job: Job) -> Job:
        """``job`` with the step and loss of its running process (the database lags a little)."""
        with self._cv:
            r = self._running.get(job.id)
            if r is None or job.state != "running":
                return job
            return Job(**{**job.__dict__, "step": max(job.step, r.step), "loss": r.loss})

    def submit(self, job: Job) -> bool:
        """Queue a job; False when the queue is full."""
        if not self.db.insert(job, max_queued=self.settings.max_queued):
            return False
        self.log(job.id).add("state", {"state": "queued"})
        with self._cv:
            self._cv.notify_all()
        return True

    def cancel(self, job_id: str) -> str | None:
        """Cancel a queued or running job; returns the state after, None when it had already finished."""
        if self.db.update(job_id, only_if=("queued",), state="cancelled", finished=time.time()):
            self.log(job_id).add("state", {"state": "cancelled"})
            return "cancelled"
        current = self.db.get(job_id)
        with self._cv:
            r = self._running.get(job_id)
            if r is None or r.terminal is not None or current is None or current.state in FINISHED:
                return None
            r.cancel_requested = True
        if self.pool.cancel(job_id):  # it had not reached a process yet
            self._finish(r, "cancelled", None)
            with self._cv:
                self._running.pop(job_id, None)
                self._cv.notify_all()
            return "cancelled"
        # A job process stuck in a long step still has to go: kill it if it has not stopped in 5 s.
        threading.Timer(5.0, self.pool.kill, args=(job_id,)).start()
        return "cancelling"

    def delete(self, job_id: str) -> bool:
        with self._cv:
            r = self._running.get(job_id)
            if r is not None:
                r.delete_requested = True
                r.cancel_requested = True
        if r is not None:
            self.pool.kill(job_id, wait=10)
        found = self.db.delete(job_id)
        self.data.remove_job(job_id)
        self.data.remove_unreferenced_uploads(self.db.referenced_uploads())
        with self._cv:
            self._logs.pop(job_id, None)
        return found

    # -- the queue and the pool -----------------------------------------------------------------
    def _dispatch(self) -> None:
        while True:
            with self._cv:
                if self._stopping:
                    return
                free = len(self._running) < max(1, self.settings.workers)
            job = self.db.claim_next() if free else None
            if job is not None:
                self._launch(job)
                continue
            with self._cv:
                self._cv.wait(timeout=0.5)

    def _launch(self, job: Job) -> None:
        run = _Running(job, self.pool)
        with self._cv:
            self._running[job.id] = run
        jdir = self.data.job_dir(job.id)
        jdir.mkdir(parents=True, exist_ok=True)
        content = self.data.upload_path(job.content.sha256, job.content.ext)
        styles = [self.data.upload_path(s.sha256, s.ext) for s in job.styles]
        msg = {
            "id": job.id, "dir": str(jdir), "config": job.config, "content": str(content),
            "styles": [str(p) for p in styles], "content_name": job.content.name,
            "style_names": [s.name for s in job.styles], "content_sha256": job.content.sha256,
            "styles_sha256": [s.sha256 for s in job.styles], "resumes": list(job.resumes),
            "checkpoint_every": self.settings.checkpoint_every, "preview_seconds": self.settings.preview_seconds,
        }
        self.log(job.id).add("state", {"state": "running"})
        self.pool.submit(job.id, RUNNER, msg, log=self.data.log_path(job.id))

    def _pump(self) -> None:
        """The one reader of the pool's events: they become database updates and the SSE event log."""
        while True:
            with self._cv:
                if self._closed:
                    return
            for ev in self.pool.events(0.2):
                with self._cv:
                    run = self._running.get(ev.key)
                if run is None:
                    continue
                if ev.kind == "lost":
                    self._lost(run, ev.data)
                else:
                    self._on_event(run, ev.kind, ev.data)
                if ev.kind in TERMINAL:
                    with self._cv:
                        self._running.pop(ev.key, None)
                        self._cv.notify_all()

    def _lost(self, run: _Running, info: dict[str, Any]) -> None:
        """The job's process died under it."""
        if run.terminal is not None or run.delete_requested:
            return
        if run.cancel_requested:
            self._finish(run, "cancelled", None)
        elif self._stopping:
            pass  # server shutting down without a clean suspend: the next start resumes it
        else:
            code = info.get("code")
            hint = " (out of memory?)" if code == -signal.SIGKILL else ""
            why = str(info.get("error"))
            self._finish(run, "failed", f"the job process ended unexpectedly ({why}){hint}{self._last_log(run.job.id)}")

    def _last_log(self, job_id: str) -> str:
        try:
            lines = self.data.log_path(job_id).read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f": {lines[-1][:300]}" if lines else ""

    def _on_event(self, run: _Running, kind: str, ev: dict[str, Any]) -> None:
        job_id = run.job.id
        data = dict(ev)
        if run.delete_requested:
            return
        if kind == "started":
            values: dict[str, Any] = {"total_steps": int(ev["total_steps"])}
            resumed = int(ev.get("resumed_from", 0))
            if run.job.attempts > 1:
                entry = {"from_step": resumed, "reached": run.job.step, "lost": max(0, run.job.step - resumed)}
                values["resumes"] = [*run.job.resumes, entry]
                data["resume"] = entry
            values["step"] = resumed
            run.step = resumed
            self.db.update(job_id, **values)
        elif kind == "progress":
            run.step, run.loss = int(ev["step"]), ev.get("loss")
            if run.rate_key is not None:
                size = ev.get("size") or (0, 0)
                self.rates.observe(job_id, run.rate_key, int(ev.get("scale", 0)), run.step,
                                   (int(size[0]), int(size[1])), float(ev.get("elapsed", 0.0)),
                                   int(ev.get("tiles") or 0), run.evaluations)
            now = time.monotonic()
            if now - run.last_db >= DB_PROGRESS_SECONDS:
                run.last_db = now
                self.db.update(job_id, step=run.step, loss=run.loss)
        elif kind == "preview":
            self.db.update(job_id, preview_step=int(ev["step"]), step=max(run.step, int(ev["step"])), loss=run.loss)
        elif kind == "checkpoint":
            self.db.update(job_id, step=int(ev["step"]), loss=run.loss)
        elif kind == "done":
            run.step = int(ev["step"])
            run.loss = ev.get("loss")
            self.db.update(job_id, step=run.step, loss=run.loss, seconds=ev.get("seconds"))
            self._finish(run, "done", None)
        elif kind == "failed":
            self._finish(run, "failed", str(ev.get("error") or "failed"))
        elif kind == "cancelled":
            self._finish(run, "cancelled", None)
        elif kind == "suspended":
            run.terminal = "queued"
            self.db.update(job_id, state="queued", step=int(ev["step"]))
        if kind not in ("done", "failed", "cancelled"):
            self.log(job_id).add(kind, data)

    def _finish(self, run: _Running, state: str, error: str | None) -> None:
        assert state in FINISHED
        run.terminal = state
        self.rates.forget(run.job.id)
        self.db.update(run.job.id, state=state, error=error, finished=time.time())
        self.log(run.job.id).add("state", {"state": state, "error": error})
