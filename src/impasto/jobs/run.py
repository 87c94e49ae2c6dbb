"""Running one job: start or resume from the one checkpoint format, checkpoint by one policy, stop,
suspend or cancel between steps, write the result with its metadata by the one writer, clean up.

The command line, the studio's worker, the batch worker and every video frame run a job through
:class:`JobRun`; what differs between them is what they do with its :class:`JobEvent` s (a progress
bar, JSON lines to a server, a status file, a frame store). Nothing here prints.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from torch import Tensor

from impasto.checkpoint import Checkpoint, load_checkpoint, remove_checkpoint, save_checkpoint
from impasto.engine import Progress, StyleTransfer
from impasto.errors import ImpastoError
from impasto.io import SavedResult, load_image, save_result
from impasto.jobs.spec import HISTORY_COLUMNS, Eta, JobSpec, result_metadata, thin_history
from impasto.vgg import VGGWeights

EventKind = Literal["started", "step", "checkpoint", "stopped", "cancelled", "done"]
ResumeMode = Literal["never", "if-valid", "required"]


class JobControl:
    """Commands to a running job, checked between steps (thread-safe: set them from a signal handler,
    a reader thread or another coroutine).

    ``stop``: write the checkpoint and end (``stopped``); ``cancel``: end without keeping anything."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._cancel = threading.Event()
        self.reason = ""

    def stop(self, reason: str = "stop") -> None:
        if not self._stop.is_set():
            self.reason = reason
        self._stop.set()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()


@dataclass
class JobEvent:
    """One thing that happened to a job.

    ``started`` (once, before the first step), ``step`` (each step, with the engine's ``progress``),
    ``checkpoint`` (a checkpoint was written after that step), then exactly one of ``stopped``
    (checkpoint written), ``cancelled`` or ``done`` (``image`` set; ``saved`` when the job wrote it)."""

    kind: EventKind
    step: int
    total_steps: int
    progress: Progress | None = None
    eta: float | None = None
    image: Tensor | None = None
    saved: SavedResult | None = None
    checkpoint: Path | None = None
    resumed_from: int = 0
    history: list[list[float]] = field(default_factory=list)


EngineFactory = Callable[[JobSpec], StyleTransfer]


class JobRun:
    """One attempt at a job; iterate it for its events.

    ``checkpoint``: the job's checkpoint file (None: the job is never checkpointed). ``resume``:
    ``never`` starts over (an existing checkpoint is replaced at the first save), ``if-valid`` continues
    from a checkpoint of this same job when one is there and starts over otherwise (``discarded`` says
    why), ``required`` continues from it or raises ImpastoError. ``engine`` builds the run's
    :class:`StyleTransfer` (video passes its warm start and temporal loss); ``checkpoint_extra`` is stored
    in every checkpoint (e.g. the video frame's index); a checkpoint is this job's when its inputs,
    configuration and ``spec.key`` match.
    """

    def __init__(
        self,
        spec: JobSpec,
        *,
        control: JobControl | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        resume: ResumeMode = "if-valid",
        weights: VGGWeights | None = None,
        engine: EngineFactory | None = None,
        checkpoint_extra: Mapping[str, Any] | None = None,
        image_every: int = 0,
    ) -> None:
        self.spec = spec
        self.control = control or JobControl()
        self.checkpoint_path = Path(checkpoint) if checkpoint is not None else None
        self.image_every = image_every
        self.extra = dict(checkpoint_extra or {})
        self.history: list[list[float]] = []
        self.resumed_from = 0
        self.discarded: str | None = None
        """Why an existing checkpoint was not resumed (``if-valid``), or None."""
        factory = engine or (lambda s: StyleTransfer(s.content, list(s.styles), s.config, weights=weights))
        ckpt = self._checkpoint_to_resume(resume)
        self.engine = factory(spec)
        if ckpt is not None:
            try:
                self.engine.load_state_dict(ckpt.state)
            except ImpastoError as e:
                if resume == "required":
                    raise ImpastoError(f"checkpoint {self.checkpoint_path}: {e}") from None
                self.discarded = str(e)
                self.engine = factory(spec)
            else:
                self.resumed_from = ckpt.step
                self.history = _history(ckpt.extra.get("history"))

    def _checkpoint_to_resume(self, mode: ResumeMode) -> Checkpoint | None:
        path = self.checkpoint_path
        if mode == "never" or path is None:
            return None
        if mode == "if-valid" and not path.exists():
            return None
        try:
            ckpt = load_checkpoint(path)
            self._check_same_job(ckpt)
        except ImpastoError as e:
            if mode == "required":
                raise
            self.discarded = str(e)
            return None
        return ckpt

    def _check_same_job(self, ckpt: Checkpoint) -> None:
        spec = self.spec
        if ckpt.sha256 != spec.input_hashes:
            raise ImpastoError(f"checkpoint {self.checkpoint_path} was written for other input images")
        if ckpt.config != spec.config:
            raise ImpastoError(f"checkpoint {self.checkpoint_path} was written with another configuration")
        if ckpt.extra.get("key", "") != spec.key:
            raise ImpastoError(f"checkpoint {self.checkpoint_path} belongs to another job")

    @property
    def total_steps(self) -> int:
        return sum(self.engine.steps)

    def current_image(self) -> Tensor:
        return self.engine.current_image()

    def save_checkpoint(self) -> Path | None:
        """Write the checkpoint now (call only between events); None when the job has no checkpoint file."""
        if self.checkpoint_path is None:
            return None
        extra = {**self.extra, "key": self.spec.key, "history": thin_history(self.history, 1000)}
        return save_checkpoint(self.checkpoint_path, self.engine, content=self.spec.content,
                               styles=list(self.spec.styles), hashes=self.spec.inputs, extra=extra)

    def __iter__(self) -> Iterator[JobEvent]:
        st, spec, control = self.engine, self.spec, self.control
        total = self.total_steps
        yield JobEvent("started", self.resumed_from, total, resumed_from=self.resumed_from,
                       history=list(self.history))
        eta = Eta(st.sizes, st.steps)
        last_ckpt = time.monotonic()
        result: Progress | None = None
        for ev in st.run(image_every=self.image_every):
            if ev.done:
                result = ev
                break
            self.history.append([ev.step, *(float(f"{v:.4g}") for v in (ev.loss, ev.content, ev.style, ev.tv))])
            yield JobEvent("step", ev.step, total, progress=ev, eta=eta.update(ev.step, ev.scale),
                           image=ev.image, resumed_from=self.resumed_from)
            if control.cancel_requested:
                yield JobEvent("cancelled", ev.step, total, resumed_from=self.resumed_from)
                return
            if control.stop_requested:
                path = self.save_checkpoint()
                yield JobEvent("stopped", ev.step, total, checkpoint=path, resumed_from=self.resumed_from)
                return
            if self.checkpoint_path is not None and spec.checkpoint.due(ev.step, time.monotonic() - last_ckpt):
                path = self.save_checkpoint()
                last_ckpt = time.monotonic()
                yield JobEvent("checkpoint", ev.step, total, checkpoint=path, resumed_from=self.resumed_from)
        assert result is not None and result.image is not None
        saved = None
        if spec.output is not None:
            saved = save_result(result.image, spec.output, alpha=_alpha(spec), inputs=list(spec.inputs),
                                metadata=self.metadata(result))
            # The result is safely on disk (or rescued beside it): the checkpoint has done its job.
            if self.checkpoint_path is not None:
                remove_checkpoint(self.checkpoint_path)
        yield JobEvent("done", result.step, total, progress=result, image=result.image, saved=saved,
                       resumed_from=self.resumed_from)

    def metadata(self, result: Progress, **fields: Any) -> dict[str, Any]:
        """The finished image's metadata (:func:`result_metadata` with the run's figures)."""
        return result_metadata(
            self.spec, steps=result.step, seconds=round(result.elapsed, 2), restarts=result.restarts,
            resumed_from_step=self.resumed_from or None,
            loss_history={"columns": list(HISTORY_COLUMNS), "rows": thin_history(self.history)}, **fields)


def _alpha(spec: JobSpec) -> Tensor | None:
    """The content's alpha channel, carried to the result (a cut-out stays cut out)."""
    if os.path.splitext(spec.content)[1].lower() not in (".png", ".webp", ".tif", ".tiff", ".gif"):
        return None
    try:
        return load_image(spec.content).alpha
    except ImpastoError:
        return None


def _history(rows: Any) -> list[list[float]]:
    if not isinstance(rows, list):
        return []
    out = []
    for row in rows:
        if isinstance(row, list) and row and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row):
            out.append([float(v) for v in row[: len(HISTORY_COLUMNS)]])
    return out


def run_job(spec: JobSpec, **kw: Any) -> Iterator[JobEvent]:
    """The events of one attempt at ``spec`` (see :class:`JobRun` for the keywords)."""
    return iter(JobRun(spec, **kw))


__all__ = ["EngineFactory", "JobControl", "JobEvent", "JobRun", "ResumeMode", "run_job"]
