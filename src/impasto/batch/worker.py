"""Running one job inside a worker process (a local pool process or a Ray actor), resumably.

A worker keeps the VGG loaded between jobs (``load_weights`` memoises per process), resumes a job from
its checkpoint when an earlier attempt died, checkpoints every ``job.checkpoint_every`` steps and
returns the finished image as 8-bit pixels; it never writes the output file itself. The coordinator
that holds the job's lock does (see :mod:`impasto.batch.runner`), so an output has exactly one writer
however many times a job was attempted.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from impasto.batch.jobs import CONFIG_PATH_FIELDS, JobOutput, JobSpec
from impasto.cli.run import AUTO_CHECKPOINT_SECONDS  # checkpoint_every=None: as a single run's 'auto'
from impasto.errors import ImpastoError


def set_threads(threads: int) -> None:
    """Give this worker process *threads* torch threads (the pool splits the cores between workers)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _to_uint8(x: torch.Tensor) -> np.ndarray[Any, Any]:
    """[C, H, W] float in [0, 1] -> [H, W, C] uint8, rounded exactly as ``save_image`` rounds."""
    x = torch.nan_to_num(x.detach().to("cpu", torch.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


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


def _write_json_atomic(path: str, data: Mapping[str, Any]) -> None:
    """Replace *path* with *data* in one rename: a reader sees the old or the new status, never half."""
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".status.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(dict(data), fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def execute(job: JobSpec, *, local_paths: Mapping[str, str] | None = None) -> JobOutput:
    """Run *job* to the end in this process and return its image.

    ``local_paths`` maps the planning machine's input paths to copies on this machine (Ray ships inputs
    through the object store); absent entries are used as they are (same machine or a shared path).

    The status file next to the checkpoint counts attempts: a job that finds a status of its own key
    left behind was started before by a worker that died, so this is attempt n+1.
    """
    from impasto import StyleTransfer
    from impasto.checkpoint import resume, save_checkpoint
    from impasto.io import load_image, resize_to
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
    hashes = {loc(p): sha for p, sha in job.inputs.items()}  # saves re-hashing the inputs every checkpoint
    weights = load_weights(cfg.weights, fmt=cfg.weights_format)  # memoised: loaded once per worker process

    workdir = _job_dir(job)
    ckpt_path = os.path.join(workdir, os.path.basename(job.checkpoint))
    status_path = os.path.join(workdir, os.path.basename(job.status_path))
    previous = _read_json(status_path)
    attempt = int(previous.get("attempt", 0)) + 1 if previous and previous.get("key") == job.key else 1

    st: StyleTransfer | None = None
    resumed_from = 0
    if os.path.exists(ckpt_path):
        try:
            st, ck = resume(ckpt_path, weights=weights)
            if ck.extra.get("batch_key") != job.key:
                raise ImpastoError("checkpoint of another job")
            resumed_from = ck.step
        except ImpastoError:
            # Written for other inputs or by another version: worthless here, start again.
            with contextlib.suppress(OSError):
                os.unlink(ckpt_path)
            st = None
    content = load_image(content_path)
    if st is None:
        st = StyleTransfer(content, style_paths, cfg, weights=weights)

    status = {"key": job.key, "job": job.name, "pid": os.getpid(), "host": socket.gethostname(),
              "attempt": attempt, "resumed_from": resumed_from, "step": resumed_from, "started": time.time()}
    _write_json_atomic(status_path, status)
    every = job.checkpoint_every
    result = None
    t0 = last_ckpt = time.perf_counter()
    for ev in st.run():
        if ev.done:
            result = ev
            break
        now = time.perf_counter()
        due = (every is None and now - last_ckpt >= AUTO_CHECKPOINT_SECONDS) or (every and ev.step % every == 0)
        if due:
            last_ckpt = now
            save_checkpoint(ckpt_path, st, content=content_path, styles=style_paths, hashes=hashes,
                            extra={"batch_key": job.key, "job": job.name})
            _write_json_atomic(status_path, {**status, "step": ev.step, "total": ev.total_steps,
                                             "updated": time.time()})
    assert result is not None and result.image is not None
    rgb = _to_uint8(result.image)
    alpha = None
    if content.alpha is not None:
        a = content.alpha[0] if content.alpha.dim() == 4 else content.alpha
        alpha = _to_uint8(resize_to(a, (rgb.shape[0], rgb.shape[1])))[:, :, 0]
    return JobOutput(
        rgb=rgb, alpha=alpha, steps=result.step, seconds=time.perf_counter() - t0, loss=float(result.loss),
        attempt=attempt, resumed_from=resumed_from, worker=worker_id(), stop_reason=result.stop_reason,
        restarts=result.restarts,
    )


__all__ = ["execute", "set_threads", "worker_id"]
