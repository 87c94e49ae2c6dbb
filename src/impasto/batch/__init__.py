"""Batch stylisation: many contents × many styles, resumable, on a local process pool or on Ray.

The pieces, each usable on its own (the web studio shares the job model and the backends):

- :mod:`impasto.batch.jobs`: :class:`JobSpec` (one output to produce) and planning from a grid or a manifest;
- :mod:`impasto.batch.worker`: running one job in a worker process, resuming from its checkpoint;
- :mod:`impasto.batch.backends`: the :class:`Backend` interface and the local process pool;
- :mod:`impasto.batch.ray_backend`: Ray actors (optional extra ``impasto[ray]``);
- :mod:`impasto.batch.runner`: the coordinator (skips, locks, atomic writes, journal), a generator of events;
- :mod:`impasto.batch.cli`: ``impasto batch``.
"""

from __future__ import annotations

from impasto.batch.backends import Backend, BackendEvent, LocalBackend, make_backend
from impasto.batch.jobs import JobOutput, JobRequest, JobResult, JobSpec, grid_requests, read_manifest, resolve_jobs
from impasto.batch.runner import BatchEvent, Counts, read_journal, run_batch

__all__ = [
    "Backend", "BackendEvent", "BatchEvent", "Counts", "JobOutput", "JobRequest", "JobResult", "JobSpec",
    "LocalBackend", "grid_requests", "make_backend", "read_journal", "read_manifest", "resolve_jobs", "run_batch",
]
