"""Running one job inside a worker process (a pool worker or a Ray actor), resumably.

A worker keeps the VGG loaded between jobs (``load_weights`` memoises per process) and runs a job with
the job layer's :class:`~impasto.jobs.JobRun`: it resumes from the job's checkpoint when an earlier
attempt died, checkpoints by ``job.checkpoint_every`` (None: by time) and returns the finished image as
8-bit pixels; it never writes the output file itself. The coordinator that holds the job's lock does
(see :mod:`impasto.batch.runner`), so an output has exactly one writer however many times a job was
attempted.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from collections.abc import Mapping
from typing import Any

import torch

from impasto.batch.jobs import CONFIG_PATH_FIELDS, JobOutput, JobSpec
from impasto.batch.protocol import job_from_message, output_message
from impasto.errors import ImpastoError
from impasto.io import atomic_write_json, load_image, resize_to, to_uint8
from impasto.jobs import CheckpointPolicy, JobControl, JobRun
from impasto.jobs import JobSpec as RunSpec
from impasto.jobs.worker import WorkerContext

RUNNER = "impasto.batch.worker:run"
"""The pool's name for :func:`run`."""


def set_threads(threads: int) -> None:
    """Give this worker process *threads* torch threads (the pool splits the cores between workers)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _job_dir(job: JobSpec) -> str:
    """The job's folder of transient state, created if need be: ``job.workdir`` when this machine can
    write there, else a node-local folder (a Ray node without the output folder mounted), where
    checkpoints survive worker deaths on this node only."""
    folder = os.path.dirname(job.workdir)
    if not (os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)):
        folder = os.path.join(tempfile.gettempdir(), "impasto-batch-state")
    path = os.path.join(folder, os.path.basename(job.workdir))
    os.makedirs(path, exist_ok=True)
    return path


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def execute(job: JobSpec, *, local_paths: Mapping[str, str] | None = None,
            control: JobControl | None = None) -> JobOutput:
    """Run *job* to the end in this process and return its image.

    ``local_paths`` maps the planning machine's input paths to copies on this machine (Ray ships inputs
    through the object store); absent entries are used as they are (same machine or a shared path).

    The status file next to the checkpoint counts attempts: a job that finds a status of its own key
    left behind was started before by a worker that died, so this is attempt n+1.
    """
    from impasto.vgg import load_weights

    paths = dict(local_paths or {})

    def loc(p: str) -> str:
        return paths.get(p, p)

    cfg = job.config
    moved = {f: loc(getattr(cfg, f)) for f in CONFIG_PATH_FIELDS if getattr(cfg, f) is not None}
    if any(moved[f] != getattr(cfg, f) for f in moved):
        cfg = cfg.replace(**moved)
    content_path = loc(job.content)
    style_paths = [loc(s) for s in job.styles]
    weights = load_weights(cfg.weights, fmt=cfg.weights_format)  # memoised: loaded once per worker process

    workdir = _job_dir(job)
    status_path = os.path.join(workdir, os.path.basename(job.status_path))
    previous = _read_json(status_path)
    attempt = int(previous.get("attempt", 0)) + 1 if previous and previous.get("key") == job.key else 1
    spec = RunSpec(
        content=content_path, styles=tuple(style_paths), config=cfg,
        inputs={loc(p): sha for p, sha in job.inputs.items()},  # no re-hashing of the inputs every checkpoint
        output=None, checkpoint=CheckpointPolicy.from_every(job.checkpoint_every), key=job.key,
    )
    # A checkpoint written for other inputs, by another version or for another job is not resumed.
    run = JobRun(spec, control=control, checkpoint=os.path.join(workdir, os.path.basename(job.checkpoint)),
                 resume="if-valid", weights=weights)
    status = {"key": job.key, "job": job.name, "pid": os.getpid(), "host": socket.gethostname(),
              "attempt": attempt, "resumed_from": run.resumed_from, "step": run.resumed_from,
              "started": time.time()}
    atomic_write_json(status_path, status)
    result = None
    t0 = time.perf_counter()
    for ev in run:
        if ev.kind == "checkpoint":
            atomic_write_json(status_path, {**status, "step": ev.step, "total": ev.total_steps,
                                            "updated": time.time()})
        elif ev.kind in ("stopped", "cancelled"):
            raise ImpastoError(f"job {job.name} was {ev.kind} at step {ev.step}")
        elif ev.kind == "done":
            result = ev
    assert result is not None and result.image is not None and result.progress is not None
    rgb = to_uint8(result.image)
    alpha = None
    content_alpha = load_image(content_path).alpha
    if content_alpha is not None:
        a = content_alpha[0] if content_alpha.dim() == 4 else content_alpha
        alpha = to_uint8(resize_to(a, (rgb.shape[0], rgb.shape[1])))[:, :, 0]
    p = result.progress
    return JobOutput(
        rgb=rgb, alpha=alpha, steps=p.step, seconds=time.perf_counter() - t0, loss=float(p.loss),
        attempt=attempt, resumed_from=run.resumed_from, worker=worker_id(), stop_reason=p.stop_reason,
        restarts=p.restarts,
    )


def run(msg: dict[str, Any], ctx: WorkerContext) -> None:
    """The pool's runner: one job message in, its ``done`` event (:func:`output_message`) out."""
    ctx.emit("done", **output_message(execute(job_from_message(msg), control=ctx.control)))


__all__ = ["RUNNER", "execute", "run", "set_threads", "worker_id"]
