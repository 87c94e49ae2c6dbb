"""What a job is: its inputs (paths and content hashes), the resolved configuration, where its result
goes and how often it is checkpointed. The command line, the studio, batch and each video frame build
one :class:`JobSpec` and run it with :func:`impasto.jobs.run_job`."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from impasto import __version__
from impasto.config import Config
from impasto.errors import ImpastoError
from impasto.io import file_sha256

AUTO_CHECKPOINT_SECONDS = 60.0
"""The default checkpoint interval by time: a run shorter than this never writes one."""
MAX_HISTORY_ROWS = 300
"""Loss-history rows kept in an output's metadata (about 12 KB)."""
HISTORY_COLUMNS = ("step", "loss", "content", "style", "tv")


@dataclass(frozen=True)
class CheckpointPolicy:
    """When a running job writes its checkpoint: every ``steps`` steps and/or every ``seconds`` seconds
    (None: not by that measure; both None: never)."""

    steps: int | None = None
    seconds: float | None = AUTO_CHECKPOINT_SECONDS

    @classmethod
    def from_every(cls, every: int | None) -> CheckpointPolicy:
        """The front-ends' ``--checkpoint-every N|auto``: None (auto) by time, 0 never, N every N steps."""
        if every is None:
            return cls()
        return cls(steps=every or None, seconds=None)

    def due(self, step: int, since_last: float) -> bool:
        return bool(self.steps and step % self.steps == 0) or (
            self.seconds is not None and since_last >= self.seconds)

    @property
    def never(self) -> bool:
        return not self.steps and self.seconds is None


@dataclass(frozen=True)
class JobSpec:
    """One stylisation to produce."""

    content: str
    styles: tuple[str, ...]
    config: Config
    inputs: Mapping[str, str]
    """sha256 of every input file the job reads (content and styles at least), by path."""
    output: str | None = None
    """Where the finished image goes, written with its metadata by :func:`run_job`; None: the caller
    writes it (batch's coordinator, video's frame store) from the ``done`` event's image."""
    checkpoint: CheckpointPolicy = field(default_factory=CheckpointPolicy)
    frontend: Mapping[str, Any] = field(default_factory=dict)
    """The front-end's own options (recorded in the output's metadata, never read back as paths)."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Further fields of the output's metadata (they override the common ones, e.g. display names)."""
    key: str = ""
    """Identifies the job across attempts: a checkpoint with another key is not this job's."""

    @classmethod
    def create(cls, content: str | os.PathLike[str], styles: Sequence[str | os.PathLike[str]], config: Config,
               *, hashes: Mapping[str, str] | None = None, **kw: Any) -> JobSpec:
        """A spec whose input hashes are taken from ``hashes`` or read from the files."""
        known = dict(hashes or {})
        paths = [os.fspath(content), *(os.fspath(s) for s in styles)]
        for p in paths:
            if p not in known:
                known[p] = file_sha256(p)
        if not styles:
            raise ImpastoError("a job needs at least one style image")
        return cls(content=paths[0], styles=tuple(paths[1:]), config=config, inputs=known, **kw)

    @property
    def input_hashes(self) -> tuple[str, ...]:
        """sha256 of the content and style files, in that order (as a checkpoint records them)."""
        return tuple(self.inputs[p] for p in (self.content, *self.styles))


def result_metadata(spec: JobSpec, **fields: Any) -> dict[str, Any]:
    """What every output image carries: impasto version, inputs and the full configuration, the
    front-end's options, then ``fields`` and the spec's own metadata."""
    meta: dict[str, Any] = {
        "impasto_version": __version__,
        "content": os.path.abspath(spec.content),
        "styles": [os.path.abspath(s) for s in spec.styles],
        "config": spec.config.to_dict(),
    }
    if spec.frontend:
        meta["frontend"] = dict(spec.frontend)
    meta.update(fields)
    meta.update(spec.metadata)
    return meta


def thin_history(rows: list[list[float]], limit: int = MAX_HISTORY_ROWS) -> list[list[float]]:
    """At most ``limit`` rows, evenly spaced and always with the last: the metadata stays a few KB
    however long the run (a JPEG comment holds 64 KB), and the loss curve keeps its shape."""
    if len(rows) <= limit:
        return rows
    stride = math.ceil(len(rows) / limit)
    kept = rows[::stride]
    return kept if kept[-1] is rows[-1] else [*kept[: limit - 1], rows[-1]]


class Eta:
    """Seconds left, with each step weighted by the pixels of its scale (a 512 px step costs four 256 px
    ones), measured from the first step this process made (a resumed run's earlier steps ran elsewhere)."""

    def __init__(self, sizes: Sequence[tuple[int, int]], steps: Sequence[int]) -> None:
        self.work = [h * w for h, w in sizes]
        self.steps = list(steps)
        self.before = [sum(self.work[i] * self.steps[i] for i in range(k)) for k in range(len(self.steps))]
        self.total = sum(w * n for w, n in zip(self.work, self.steps))
        self._first: tuple[float, float] | None = None

    def done_work(self, step: int, scale: int) -> float:
        return self.before[scale] + self.work[scale] * (step - sum(self.steps[:scale]))

    def update(self, step: int, scale: int, now: float | None = None) -> float | None:
        """The estimate after global step ``step`` (at scale ``scale``); None until two steps are seen."""
        now = time.perf_counter() if now is None else now
        done = self.done_work(step, scale)
        if self._first is None:
            self._first = (now, done)
            return None
        t0, w0 = self._first
        if done <= w0:
            return None
        return max(0.0, (self.total - done) * (now - t0) / (done - w0))


def fmt_time(s: float | None) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour), ``--:--`` when unknown."""
    if s is None or not math.isfinite(s):
        return "--:--"
    s = int(round(s))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:d}:{s % 60:02d}"


__all__ = ["AUTO_CHECKPOINT_SECONDS", "HISTORY_COLUMNS", "MAX_HISTORY_ROWS", "CheckpointPolicy", "Eta", "JobSpec",
           "fmt_time", "result_metadata", "thin_history"]
