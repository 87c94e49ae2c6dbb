"""Where jobs run: a local process pool (the job layer's :class:`~impasto.jobs.pool.WorkerPool`) and,
in ``ray_backend``, Ray actors; both speak the job protocol of :mod:`impasto.batch.protocol`.

A backend retries a job whose worker died (up to ``max_retries`` times; the worker resumes from the
job's checkpoint) and reports a job failed only when it raised an error, which would happen again, or
when its workers kept dying.
"""

from __future__ import annotations

from impasto.batch.jobs import JobSpec
from impasto.batch.protocol import Backend, BackendEvent, cpu_count, job_message, output_from_message, split_threads
from impasto.batch.worker import RUNNER
from impasto.errors import ImpastoError
from impasto.jobs.pool import WorkerPool


class LocalBackend:
    """A pool of worker processes on this machine, each with ``threads`` torch threads.

    Not :class:`concurrent.futures.ProcessPoolExecutor`: one SIGKILLed worker breaks that whole pool,
    while here the dead worker is replaced and its job retried (resuming from its checkpoint). A worker
    that the batch's process outlives is never left behind: it exits when its input closes.
    """

    name = "local"

    def __init__(self, workers: int, threads: int, *, max_retries: int = 2) -> None:
        self.workers = workers
        self.threads = threads
        self.max_retries = max_retries
        # Workers started together each see the machine's whole free memory: each auto budget takes its share.
        self._pool = WorkerPool(workers, threads=threads, max_retries=max_retries, memory_share=workers)
        self._jobs: dict[str, JobSpec] = {}
        self._lost: dict[str, int] = {}

    @property
    def slots(self) -> int:
        return self.workers

    @property
    def description(self) -> str:
        return f"local: {self.workers} worker(s) × {self.threads} thread(s)"

    def worker_pids(self) -> list[int]:
        return self._pool.pids()

    def start(self) -> None:
        self._pool.start()

    def submit(self, job: JobSpec) -> None:
        self._jobs[job.name] = job
        self._pool.submit(job.name, RUNNER, job_message(job))

    def wait(self, timeout: float) -> list[BackendEvent]:
        events: list[BackendEvent] = []
        for ev in self._pool.events(timeout):
            job = self._jobs.get(ev.key)
            if job is None:
                continue
            if ev.kind == "retry":
                self._lost[ev.key] = int(ev.data.get("lost", 0))
                continue
            if ev.kind not in ("done", "failed", "lost"):
                continue
            del self._jobs[ev.key]
            lost = self._lost.pop(ev.key, 0)
            if ev.kind == "done":
                events.append(BackendEvent(job, output=output_from_message(ev.data), lost_workers=lost))
            elif ev.kind == "failed":
                events.append(BackendEvent(job, error=str(ev.data.get("error")), lost_workers=lost))
            else:
                if self._pool.broken:
                    raise ImpastoError(self._pool.broken)
                lost = int(ev.data.get("lost", lost + 1))
                hint = (" (killed: out of memory? try a smaller --size or fewer --workers)"
                        if ev.data.get("code") == -9 else "")
                events.append(BackendEvent(job, error=f"its worker died {lost} times (last: {ev.data.get('error')})"
                                                      f"{hint}", lost_workers=lost))
        return events

    def close(self) -> None:
        """Idle workers exit; a worker still running a job (the batch was interrupted) is killed at once:
        its job resumes from its checkpoint in the next run."""
        self._pool.close()


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
