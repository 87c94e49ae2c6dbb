"""The job queue and the bounded pool of job processes.

One dispatcher thread claims the oldest queued job from the database whenever a slot is free and
hands it to a waiting job process (see :mod:`impasto.studio.worker`); one reader thread per running
job turns the process's event lines into database updates and into an in-memory event log that the
SSE route streams. The database is the truth: on start, jobs that a killed server left ``running`` go
back to the queue and their processes resume them from the last checkpoint.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import impasto
from impasto.errors import ImpastoError
from impasto.studio.db import FINISHED, Job, JobDB
from impasto.studio.storage import DataDir

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
    """Keep one job process started (torch imported, weights loaded) so a new job starts at once."""


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


def package_pythonpath() -> str:
    """PYTHONPATH that makes a child process import this very impasto (a checkout or an install)."""
    root = str(Path(impasto.__file__).resolve().parent.parent)
    old = os.environ.get("PYTHONPATH")
    return root if not old else root + os.pathsep + old


class _Running:
    def __init__(self, job: Job, proc: subprocess.Popen[str]) -> None:
        self.job = job
        self.proc = proc
        self.cancel_requested = False
        self.delete_requested = False
        self.terminal: str | None = None
        self.last_db = 0.0
        self.step = job.step
        self.loss: float | None = job.loss


class JobManager:
    """Owns the job processes of one data folder (a lock file keeps a second server out)."""

    def __init__(self, data: DataDir, settings: PoolSettings) -> None:
        self.data = data
        self.settings = settings
        self.db = JobDB(data.db_path)
        self._lock_fh: IO[str] | None = None
        self._cv = threading.Condition()
        self._running: dict[str, _Running] = {}
        self._spares: list[subprocess.Popen[str]] = []
        self._logs: dict[str, EventLog] = {}
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._readers: list[threading.Thread] = []

    # -- life cycle -----------------------------------------------------------------------------
    def lock(self) -> None:
        """Take the data folder (a second server on it would run the same jobs twice); idempotent."""
        if self._lock_fh is not None:
            return
        fh = open(self.data.lock_path, "a+")  # noqa: SIM115 - held for the server's lifetime
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise ImpastoError(
                f"another impasto serve is using {self.data.root}; stop it or use another --data") from None
        self._lock_fh = fh

    def start(self) -> None:
        self.lock()
        for job in self.db.requeue_interrupted():
            self.log(job.id).add("state", {"state": "queued", "note": "server restarted; resuming"})
        self._thread = threading.Thread(target=self._dispatch, name="impasto-dispatch", daemon=True)
        self._thread.start()

    def stop(self, *, suspend_timeout: float = 10.0) -> None:
        """Stop: running jobs save a checkpoint and go back to the queue (they resume on the next start)."""
        with self._cv:
            self._stopping = True
            running = list(self._running.values())
            spares, self._spares = self._spares, []
            self._cv.notify_all()
        for r in running:
            self._send(r.proc, "suspend")
        deadline = time.monotonic() + suspend_timeout
        for r in running:
            try:
                r.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()
        for p in spares:
            self._close(p)
        for t in self._readers:
            t.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.db.close()
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

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
        self._send(r.proc, "cancel")
        # A job process stuck in a long step still has to go: kill it if it has not stopped in 5 s.
        threading.Timer(5.0, self._kill_if_alive, args=(r.proc,)).start()
        return "cancelling"

    def delete(self, job_id: str) -> bool:
        with self._cv:
            r = self._running.get(job_id)
            if r is not None:
                r.delete_requested = True
                r.cancel_requested = True
        if r is not None:
            self._kill_if_alive(r.proc)
            with contextlib.suppress(subprocess.TimeoutExpired):
                r.proc.wait(timeout=10)
        found = self.db.delete(job_id)
        self.data.remove_job(job_id)
        self.data.remove_unreferenced_uploads(self.db.referenced_uploads())
        with self._cv:
            self._logs.pop(job_id, None)
        return found

    # -- the pool -------------------------------------------------------------------------------
    def _spawn(self) -> subprocess.Popen[str]:
        s = self.settings
        cmd = [
            sys.executable, "-m", "impasto.studio.worker", "--weights", s.weights or "",
            "--threads", str(s.threads), "--preview-seconds", str(s.preview_seconds),
            "--checkpoint-every", str(s.checkpoint_every),
        ]
        env = {**os.environ, "PYTHONPATH": package_pythonpath()}
        if s.threads > 0:
            env["OMP_NUM_THREADS"] = str(s.threads)
        log = open(self.data.root / "worker.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            return subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1, env=env,
                start_new_session=True,  # a Ctrl-C at the server's terminal is the server's to handle
            )
        finally:
            log.close()

    def _take_process(self) -> subprocess.Popen[str]:
        while self._spares:
            p = self._spares.pop(0)
            if p.poll() is None:
                return p
        return self._spawn()

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
                if self.settings.prestart and not self._stopping and not self._spares:
                    self._spares.append(self._spawn())
                self._cv.wait(timeout=0.5)

    def _launch(self, job: Job) -> None:
        proc = self._take_process()
        run = _Running(job, proc)
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
        }
        self.log(job.id).add("state", {"state": "running"})
        self._send(proc, json.dumps(msg))
        t = threading.Thread(target=self._read, args=(run,), name=f"impasto-job-{job.id[:6]}", daemon=True)
        self._readers = [x for x in self._readers if x.is_alive()] + [t]
        t.start()

    def _read(self, run: _Running) -> None:
        job_id = run.job.id
        assert run.proc.stdout is not None
        for line in run.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if isinstance(ev, dict):
                self._on_event(run, ev)
        code = run.proc.wait()
        with self._cv:
            self._running.pop(job_id, None)
            stopping = self._stopping
            self._cv.notify_all()
        if run.terminal is None and not run.delete_requested:
            if run.cancel_requested:
                self._finish(run, "cancelled", None)
            elif stopping:
                # Server shutting down without a clean suspend: leave it running; the next start resumes it.
                pass
            else:
                why = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
                hint = " (out of memory?)" if code == -signal.SIGKILL else ""
                self._finish(run, "failed", f"the job process ended unexpectedly ({why}){hint}{self._last_log(job_id)}")

    def _last_log(self, job_id: str) -> str:
        try:
            lines = self.data.log_path(job_id).read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f": {lines[-1][:300]}" if lines else ""

    def _on_event(self, run: _Running, ev: dict[str, Any]) -> None:
        kind = str(ev.get("type"))
        job_id = run.job.id
        data = {k: v for k, v in ev.items() if k != "type"}
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
        self.db.update(run.job.id, state=state, error=error, finished=time.time())
        self.log(run.job.id).add("state", {"state": state, "error": error})

    @staticmethod
    def _send(proc: subprocess.Popen[str], line: str) -> None:
        try:
            assert proc.stdin is not None
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass

    @staticmethod
    def _kill_if_alive(proc: subprocess.Popen[str]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()

    @staticmethod
    def _close(proc: subprocess.Popen[str]) -> None:
        with contextlib.suppress(OSError, ValueError):
            if proc.stdin is not None:
                proc.stdin.close()  # the worker exits on end of input
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
