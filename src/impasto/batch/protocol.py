"""What a batch backend is, and the job protocol every backend speaks.

The coordinator (:mod:`impasto.batch.runner`) decides *what* runs -- skips, locks, writes -- and a
:class:`Backend` only runs :class:`~impasto.batch.jobs.JobSpec` s somewhere and hands back
:class:`BackendEvent` s. Both backends send a worker the same job message (:func:`job_message`, plain
JSON) and get the same result back (:func:`output_message`, the ``done`` event's fields: stats and the
8-bit pixels, base64), whether through the job layer's pool of local processes or a Ray actor.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from impasto.batch.jobs import JobOutput, JobSpec
from impasto.config import Config
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


# -- the job protocol -----------------------------------------------------------------------------------


def job_message(job: JobSpec) -> dict[str, Any]:
    """The job as plain JSON (what a worker receives)."""
    msg = dataclasses.asdict(job)
    msg["config"] = job.config.to_dict()
    msg["styles"] = list(job.styles)
    msg["inputs"] = dict(job.inputs)
    return msg


def job_from_message(msg: Mapping[str, Any]) -> JobSpec:
    fields = dict(msg)
    fields["config"] = Config.from_dict(dict(fields["config"]))
    fields["styles"] = tuple(fields["styles"])
    return JobSpec(**fields)


def _array(a: Any) -> dict[str, Any] | None:
    if a is None:
        return None
    a = np.ascontiguousarray(a, dtype=np.uint8)
    return {"shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def _unarray(d: Mapping[str, Any] | None) -> Any:
    if d is None:
        return None
    return np.frombuffer(base64.b64decode(d["data"]), dtype=np.uint8).reshape(d["shape"])


def output_message(out: JobOutput) -> dict[str, Any]:
    """A finished job's result as plain JSON (the fields of the worker's ``done`` event)."""
    msg = dataclasses.asdict(out)
    msg["rgb"], msg["alpha"] = _array(out.rgb), _array(out.alpha)
    return msg


def output_from_message(msg: Mapping[str, Any]) -> JobOutput:
    fields = {f.name: msg[f.name] for f in dataclasses.fields(JobOutput) if f.name in msg}
    fields["rgb"], fields["alpha"] = _unarray(msg["rgb"]), _unarray(msg.get("alpha"))
    return JobOutput(**fields)


__all__ = ["Backend", "BackendEvent", "cpu_count", "job_from_message", "job_message", "output_from_message",
           "output_message", "split_threads"]
