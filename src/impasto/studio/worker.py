"""The studio's job runner: one style transfer for the server, inside a pool worker process
(:mod:`impasto.jobs.worker`, started by the manager's :class:`~impasto.jobs.pool.WorkerPool`).

The job message (made by :mod:`impasto.studio.manager`) names the stored uploads, the configuration, the
job's folder and the checkpoint interval. The run is the job layer's :class:`~impasto.jobs.JobRun`:
it resumes from ``checkpoint.pt`` when a killed server left one, writes ``result.png`` with its metadata
and removes the checkpoint. Its events become the studio's: ``started``, ``progress`` (with the ETA),
``preview`` (``preview.png`` rewritten at most every ``preview_seconds`` and at each new scale),
``checkpoint``, then one of ``done``, ``failed``, ``cancelled``, ``suspended``.
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path
from typing import Any

from impasto.config import Config
from impasto.io import atomic_write_bytes, to_pil
from impasto.jobs import CheckpointPolicy, JobRun, JobSpec
from impasto.jobs.worker import WorkerContext

RUNNER = "impasto.studio.worker:run"


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _write_preview(ctx: WorkerContext, job_dir: Path, img: Any, step: int) -> None:
    buf = io.BytesIO()
    to_pil(img).save(buf, format="PNG", compress_level=3)
    atomic_write_bytes(job_dir / "preview.png", buf.getvalue())
    ctx.emit("preview", step=step, size=[int(img.shape[-2]), int(img.shape[-1])])


def spec_for(job: dict[str, Any], weights: Any = None) -> JobSpec:
    """The job layer's spec of a studio job message."""
    job_dir = Path(job["dir"])
    content, styles = job["content"], list(job["styles"])
    every = int(job.get("checkpoint_every", 20))
    return JobSpec(
        content=content, styles=tuple(styles), config=Config.from_dict(job["config"]),
        # The uploads are named by their sha256: nothing needs hashing again.
        inputs=dict(zip([content, *styles], [job["content_sha256"], *job["styles_sha256"]])),
        output=str(job_dir / "result.png"),
        checkpoint=CheckpointPolicy(steps=every or None, seconds=None),
        metadata={"content": job["content_name"], "styles": job["style_names"],
                  "content_sha256": job["content_sha256"], "styles_sha256": job["styles_sha256"],
                  "weights": getattr(weights, "source", None), "studio_job": job["id"],
                  "resumed_from": job.get("resumes", [])},
        key=job["id"],
    )


def run(job: dict[str, Any], ctx: WorkerContext) -> None:
    """Run (or resume) one studio job, emitting its events (the worker reports a raised error as ``failed``)."""
    job_dir = Path(job["dir"])
    preview_seconds = float(job.get("preview_seconds", 2.0))
    run = JobRun(spec_for(job, ctx.weights), control=ctx.control, checkpoint=job_dir / "checkpoint.pt",
                 resume="if-valid", weights=ctx.weights)
    if run.discarded:
        ctx.emit("log", message=f"checkpoint not usable ({run.discarded}); starting again")
    t0 = time.perf_counter()
    last_preview, last_scale = -1e9, -1
    for ev in run:
        if ev.kind == "started":
            st = run.engine
            ctx.emit("started", total_steps=ev.total_steps, sizes=[list(s) for s in st.sizes], steps=list(st.steps),
                     resumed_from=ev.resumed_from, history=[row[:2] for row in ev.history])
        elif ev.kind == "step":
            p = ev.progress
            assert p is not None
            ctx.emit("progress", step=p.step, total_steps=p.total_steps, scale=p.scale, n_scales=p.n_scales,
                     size=list(p.size), loss=_finite(p.loss), content=_finite(p.content), style=_finite(p.style),
                     tv=_finite(p.tv), elapsed=round(time.perf_counter() - t0, 3), tiles=p.tiles,
                     eta=None if ev.eta is None else round(ev.eta, 1))
            if p.scale != last_scale or time.perf_counter() - last_preview >= preview_seconds:
                _write_preview(ctx, job_dir, run.current_image(), p.step)
                last_preview, last_scale = time.perf_counter(), p.scale
        elif ev.kind == "checkpoint":
            ctx.emit("checkpoint", step=ev.step)
        elif ev.kind == "cancelled":
            ctx.emit("cancelled", step=ev.step)
        elif ev.kind == "stopped":
            if ev.checkpoint is not None:
                ctx.emit("checkpoint", step=ev.step)
            ctx.emit("suspended", step=ev.step)
        elif ev.kind == "done":
            # The result is safe on disk and the checkpoint removed: the preview is brought up to date.
            assert ev.image is not None and ev.progress is not None
            _write_preview(ctx, job_dir, ev.image, ev.step)
            ctx.emit("done", step=ev.step, total_steps=ev.total_steps, loss=_finite(ev.progress.loss),
                     seconds=round(time.perf_counter() - t0, 3), stop_reason=ev.progress.stop_reason)


__all__ = ["RUNNER", "run", "spec_for"]
