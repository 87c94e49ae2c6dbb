"""The Ray backend: one actor per worker slot, each keeping its VGG loaded between jobs.

Ray (``pip install impasto[ray]``) brings what a home-made scheduler would not: placement on a cluster
of many machines, GPU scheduling (``num_gpus`` per actor), restarts of dead workers, autoscaling.

- Actors, not tasks: a worker loads the VGG once (``load_weights`` memoises per process) and keeps it.
- Worker death: actors are created with ``max_restarts=-1`` and ``max_task_retries=max_retries``, so
  Ray restarts a killed actor and re-runs its job, which resumes from the job's checkpoint.
- Inputs: every input file goes into the object store once (``ray.put``); a worker uses the path as it
  is when that file exists on its machine with the same sha256 (one machine, or a shared filesystem)
  and otherwise fetches the bytes into a node-local, content-addressed cache.
- Code: when this backend connects to Ray itself, the driver's ``impasto`` package is shipped to the
  workers (``runtime_env`` ``py_modules``), so the cluster runs exactly the code that planned the batch.
  A program that calls ``ray.init`` itself chooses: :func:`runtime_env` gives the same setting.
- Protocol: an actor takes the same job message as a local pool worker and returns the same result (see
  :mod:`impasto.batch.protocol`): 8-bit pixels; the coordinator, which holds each output's lock, writes the file
  atomically (see :mod:`impasto.batch.runner`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import impasto
from impasto.batch.jobs import JobSpec
from impasto.batch.protocol import (
    BackendEvent,
    cpu_count,
    job_from_message,
    job_message,
    output_from_message,
    output_message,
)
from impasto.errors import ImpastoError
from impasto.io.atomic import atomic_write_bytes, file_sha256

OBJECT_STORE_BYTES = 512 * 2**20
"""Object store of a Ray instance this backend starts itself (inputs are photos, not datasets)."""


def _require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImpastoError("--backend ray needs Ray: pip install 'impasto[ray]'") from None
    return ray


def materialize(blobs: Mapping[str, tuple[str, Any]], get: Any) -> dict[str, str]:
    """Local paths for a job's inputs: the path itself where it holds the same bytes, else a cached copy.

    ``blobs`` maps the planning machine's path to ``(sha256, object ref)``; ``get`` is ``ray.get``.
    """
    cache = Path(tempfile.gettempdir()) / "impasto-batch-inputs"
    out: dict[str, str] = {}
    for path, (sha, ref) in blobs.items():
        try:
            if os.path.isfile(path) and file_sha256(path) == sha:
                out[path] = path
                continue
        except OSError:
            pass
        cache.mkdir(parents=True, exist_ok=True)
        local = cache / f"{sha}{Path(path).suffix.lower()}"
        if not local.is_file():
            data: bytes = get(ref)
            atomic_write_bytes(local, data)  # concurrent actors on one node write the same bytes: either wins
        out[path] = str(local)
    return out


def runtime_env() -> dict[str, Any]:
    """The Ray ``runtime_env`` that ships this process's ``impasto`` package to the workers (for ``ray.init``;
    Ray accepts local folders only there, not per actor)."""
    pkg = str(Path(impasto.__file__).resolve().parent)
    return {"py_modules": [pkg], "excludes": ["__pycache__", "*.pyc"]}


class BatchActor:
    """The Ray actor (decorated in :meth:`RayBackend.start`, so importing this module needs no Ray)."""

    def __init__(self, threads: int) -> None:
        from impasto.batch.worker import set_threads

        set_threads(threads)

    def run(self, msg: dict[str, Any], blobs: Mapping[str, tuple[str, Any]]) -> dict[str, Any]:
        """One job message in, its result message out (the job protocol of :mod:`impasto.batch.protocol`)."""
        import ray

        from impasto.batch.worker import execute

        return output_message(execute(job_from_message(msg), local_paths=materialize(blobs, ray.get)))

    def pid(self) -> int:
        return os.getpid()


class RayBackend:
    """Jobs on Ray actors: ``address`` None starts a private local Ray; ``auto`` joins the cluster of
    ``ray start``; ``ray://HOST:PORT`` goes through Ray Client. An already initialised Ray is used as is."""

    name = "ray"

    def __init__(self, *, address: str | None, workers: int | None, threads: int | None, jobs: int,
                 max_retries: int, gpus_per_worker: float | None = None) -> None:
        self.address = address
        self._workers = workers
        self._threads = threads
        self.jobs = jobs
        self.max_retries = max_retries
        self._gpus = gpus_per_worker
        self._ray: Any = None
        self._owns_ray = False
        self._actors: list[Any] = []
        self._idle: deque[Any] = deque()
        self._inflight: dict[Any, tuple[JobSpec, Any]] = {}
        self._queue: deque[JobSpec] = deque()
        self._refs: dict[str, Any] = {}
        self.workers = 0
        self.threads = 1
        self.gpus = 0.0

    @property
    def slots(self) -> int:
        return self.workers or 1

    @property
    def description(self) -> str:
        gpu = f", {self.gpus:g} GPU each" if self.gpus else ""
        return f"ray: {self.workers} actor(s) × {self.threads} thread(s){gpu}"

    def start(self) -> None:
        if self._actors:
            return
        ray = self._ray = _require_ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "logging_level": logging.ERROR, "runtime_env": runtime_env()}
            if self.address is None:
                kwargs.update(num_cpus=cpu_count(), object_store_memory=OBJECT_STORE_BYTES)
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as e:
                hint = ("; a cluster with token authentication (Ray's default) needs RAY_AUTH_MODE=token and its "
                        "token when given by address" if self.address not in (None, "auto") else "")
                raise ImpastoError(f"cannot connect to Ray at {self.address or 'a new local instance'}: "
                                   f"{' '.join(str(e).split())[:200]}{hint}") from None
            self._owns_ray = True
        res = ray.cluster_resources()
        cpus, gpus = int(res.get("CPU", 0)), float(res.get("GPU", 0))
        self.gpus = self._gpus if self._gpus is not None else (1.0 if gpus >= 1 else 0.0)
        if self.gpus > gpus:
            raise ImpastoError(f"--gpus-per-worker {self.gpus:g} but the Ray cluster has {gpus:g} GPU(s)")
        self.threads = self._threads or 1
        if self._workers is not None:
            self.workers = self._workers
        elif self.gpus:
            self.workers = max(1, int(gpus // self.gpus))
        else:
            self.workers = max(1, cpus // self.threads)
        self.workers = max(1, min(self.workers, self.jobs))
        if self.threads > max(cpus, 1):
            raise ImpastoError(f"--threads {self.threads} but the Ray cluster has {cpus} CPU(s)")
        actor_cls = ray.remote(BatchActor).options(
            num_cpus=self.threads, num_gpus=self.gpus, max_restarts=-1, max_task_retries=self.max_retries,
        )
        self._actors = [actor_cls.remote(self.threads) for _ in range(self.workers)]
        self._idle = deque(self._actors)

    def actor_pids(self) -> list[int]:
        assert self._ray is not None
        return [int(p) for p in self._ray.get([a.pid.remote() for a in self._actors])]

    def _blobs(self, job: JobSpec) -> dict[str, tuple[str, Any]]:
        out = {}
        for path, sha in job.inputs.items():
            ref = self._refs.get(sha)
            if ref is None:  # once per file, however many jobs use it
                ref = self._refs[sha] = self._ray.put(Path(path).read_bytes())
            out[path] = (sha, ref)
        return out

    def submit(self, job: JobSpec) -> None:
        self._queue.append(job)
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue and self._idle:
            job = self._queue.popleft()
            actor = self._idle.popleft()
            ref = actor.run.remote(job_message(job), self._blobs(job))
            self._inflight[ref] = (job, actor)

    def wait(self, timeout: float) -> list[BackendEvent]:
        ray = self._ray
        if not self._inflight:
            import time

            time.sleep(timeout)
            return []
        # The first result ends the wait (num_returns=len(...) would wait for all of them or the timeout);
        # then whatever else is already done, without waiting.
        ready, rest = ray.wait(list(self._inflight), num_returns=1, timeout=timeout)
        if ready and rest:
            ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        events: list[BackendEvent] = []
        for ref in ready:
            job, actor = self._inflight.pop(ref)
            self._idle.append(actor)
            try:
                out = output_from_message(ray.get(ref))
            except ray.exceptions.RayTaskError as e:
                cause = e.cause if getattr(e, "cause", None) is not None else e
                msg = str(cause) if isinstance(cause, ImpastoError) else f"{type(cause).__name__}: {cause}"
                events.append(BackendEvent(job, error=" ".join(msg.split())[:500]))
            except ray.exceptions.RayActorError as e:
                events.append(BackendEvent(job, error=f"its worker died {self.max_retries + 1} times "
                                                      f"({type(e).__name__})", lost_workers=self.max_retries + 1))
            else:
                events.append(BackendEvent(job, output=out, lost_workers=out.attempt - 1))
        self._dispatch()
        return events

    def close(self) -> None:
        ray = self._ray
        if ray is None:
            return
        for a in self._actors:
            with contextlib.suppress(Exception):
                ray.kill(a)
        self._actors = []
        self._idle.clear()
        self._inflight.clear()
        self._refs.clear()
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False


__all__ = ["BatchActor", "RayBackend", "materialize", "runtime_env"]
