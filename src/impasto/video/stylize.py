"""The frame loop of Ruder, Dosovitskiy and Brox (2016), *Artistic style transfer for videos*.

Frame 1 is optimised like a still image (the configuration as given, coarse-to-fine by default). Each
later frame t starts from stylised frame t-1 warped into frame t by the backward optical flow, runs
fewer steps at the output size only, and (with a temporal weight) is kept close to the warped
previous result(s) wherever the flow passed the forward-backward consistency check. Independent
per-frame stylisation is the same loop with the warm start and the temporal loss turned off.

Each frame is a job of :mod:`impasto.jobs` (:class:`~impasto.jobs.JobRun`): the one checkpoint format
(the frame index in its ``extra``), the one checkpoint policy, stop between steps. What is video's own
is here: flow, warping, the temporal loss (an engine ``extra_loss``), the frame store and the ETA across
frames. The loop is a generator of :class:`VideoProgress` events and never prints. Each finished frame
goes to a :class:`~impasto.video.io.FrameStore` at once (atomically), and the in-progress frame is
checkpointed in the store's folder, so a killed run resumes at the first missing frame, from its
checkpoint. Previous results are always read back from the stored 8-bit frames, never kept as floats,
so a resumed run computes exactly what an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import Tensor

from impasto import __version__
from impasto.config import Config
from impasto.engine import ImageLike, Progress, StyleTransfer
from impasto.errors import ImpastoError
from impasto.inputs import as_rgb
from impasto.io import LoadedImage
from impasto.jobs import CheckpointPolicy, Eta, JobControl, JobRun, JobSpec
from impasto.vgg import VGGWeights, load_weights
from impasto.video.flow import FLOW_METHODS, compute_flow, long_term_weights, reliability_mask, warp
from impasto.video.io import Clip, FrameStore
from impasto.video.temporal import DEFAULT_TEMPORAL_WEIGHT, TemporalLoss


@dataclass(frozen=True)
class VideoOptions:
    """What the video mode adds to a still image's :class:`~impasto.config.Config`."""

    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT
    """γ of the temporal loss in the paper's units (see :mod:`impasto.video.temporal`); 0 turns it off."""
    temporal_frames: tuple[int, ...] = (1,)
    """Previous frames the temporal loss looks at: (1,) short-term; (1, 2, 4) the paper's long-term."""
    warm_start: bool = True
    """Start frame t from stylised frame t-1 warped by the flow (else from the config's init)."""
    frame_steps: int | None = None
    """Steps for each frame after the first (at the output size only); None: :func:`default_frame_steps`.
    Ignored without the warm start: independent frames all get the full configuration."""
    flow: str = "dis"
    checkpoint: CheckpointPolicy = field(default_factory=CheckpointPolicy)
    """When the in-progress frame is checkpointed (the job layer's one policy; default once a minute)."""

    def validate(self) -> None:
        if not (math.isfinite(self.temporal_weight) and self.temporal_weight >= 0):
            raise ImpastoError(f"temporal weight must be a finite number >= 0 (got {self.temporal_weight})")
        if not self.temporal_frames or any(j < 1 for j in self.temporal_frames):
            raise ImpastoError(f"temporal frames must be whole numbers >= 1, e.g. 1,2,4 (got {self.temporal_frames})")
        if self.frame_steps is not None and self.frame_steps < 1:
            # 0 steps would leave a later frame's loss undefined (NaN) and fail only at its first write.
            raise ImpastoError(f"frame steps must be >= 1 (got {self.frame_steps})")
        if self.flow not in FLOW_METHODS:
            raise ImpastoError(f"flow must be one of {', '.join(FLOW_METHODS)} (got {self.flow!r})")
        steps, seconds = self.checkpoint.steps, self.checkpoint.seconds
        if steps is not None and steps < 1 or seconds is not None and not seconds > 0:
            raise ImpastoError(f"checkpoint policy must be whole steps >= 1 and seconds > 0 (got {self.checkpoint})")

    @property
    def mode(self) -> str:
        """``independent``, ``warm-start`` or ``temporal`` (warm start + temporal loss)."""
        if not self.warm_start and self.temporal_weight == 0:
            return "independent"
        return "temporal" if self.temporal_weight > 0 else "warm-start"


@dataclass(frozen=True)
class VideoProgress:
    """One event of a video run.

    ``kind``: ``start`` (once: how many frames were already there), ``step`` (one optimiser step of
    frame ``frame``; ``progress`` is the engine's event), ``frame`` (frame ``frame`` finished and
    written to ``path``), then ``done`` (all frames exist) or ``stopped`` (the job's control asked to
    stop: the frame in progress is checkpointed to ``path``, or ``path`` is None when none was running).
    """

    kind: str
    frame: int
    """Index from 0 of the frame concerned."""
    n_frames: int
    elapsed: float
    """Seconds since this run (not the whole job, if it was resumed) started."""
    eta: float | None = None
    """Estimated seconds left for the whole clip (:class:`impasto.jobs.Eta` over the frames' steps)."""
    progress: Progress | None = None
    frame_seconds: float | None = None
    loss: float | None = None
    """The frame's final loss (``frame`` events)."""
    terms: dict[str, float] | None = None
    path: str | None = None
    resumed_step: int = 0
    """``frame``/``stopped``: the step the frame resumed from its checkpoint (0: from scratch)."""
    image: Tensor | None = None
    """``frame`` events: the frame as written ([3, H, W] in [0, 1], 8-bit values)."""


FRAME_STEPS = 25
"""Steps per later frame: measured on marple8 at 256 px, 25 steps from the warped previous frame were 16x
steadier than independent frames, 100 steps only 4x (the result drifts from its warm start)."""


def default_frame_steps(config: Config) -> int:
    """:data:`FRAME_STEPS`, or the configuration's ``steps`` when it asks for fewer."""
    return max(1, min(config.steps, FRAME_STEPS))


def _normalise_manifest(m: dict[str, Any]) -> dict[str, Any]:
    """A stored manifest's configuration with today's defaults for fields it predates (partial = default)."""
    if isinstance(m.get("config"), dict):
        return {**m, "config": Config.from_dict(m["config"]).to_dict()}
    return m


def _quantised(img: Tensor) -> Tensor:
    """What an 8-bit PNG of ``img`` holds: the loop works from these so resumes are exact."""
    return (img.clamp(0.0, 1.0) * 255.0).round() / 255.0


def _pixels_sha256(img: Tensor) -> str:
    """sha256 of an image's pixels (and shape): what a frame's checkpoint is tied to, no file read."""
    t = img.detach().cpu().contiguous()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.numpy().tobytes())
    return h.hexdigest()


def _style_label(style: ImageLike, k: int) -> str:
    if isinstance(style, (str, os.PathLike)):
        return os.fspath(style)
    if isinstance(style, LoadedImage) and style.path is not None:
        return str(style.path)
    return f"style-{k + 1}"


class VideoStylizer:
    """Stylise a clip frame by frame into a :class:`FrameStore`; see the module docstring.

    ``control`` (an :class:`impasto.jobs.JobControl`) stops the run between steps: the frame in
    progress is checkpointed and the loop ends with a ``stopped`` event."""

    def __init__(
        self,
        clip: Clip,
        styles: Sequence[ImageLike],
        config: Config,
        store: FrameStore,
        options: VideoOptions | None = None,
        *,
        weights: VGGWeights | None = None,
        manifest: dict[str, Any] | None = None,
        restart: bool = False,
        control: JobControl | None = None,
    ) -> None:
        self.options = options if options is not None else VideoOptions()
        self.options.validate()
        if not clip.frames:
            raise ImpastoError("the clip has no frames")
        h, w = int(clip.frames[0].shape[1]), int(clip.frames[0].shape[2])
        # The clip is already at the output size: the engine must not resize it again.
        self.config = config.replace(size=max(h, w))
        self.clip = clip
        self.styles = list(styles)
        self.store = store
        self.weights = weights if weights is not None else load_weights(config.weights, fmt=config.weights_format)
        self.control = control if control is not None else JobControl()
        self.n = len(clip.frames)
        self.manifest = {
            **(manifest or {}),
            "impasto_version": __version__,
            "config": self.config.to_dict(),
            # Everything that changes the frames (not the checkpoint policy, which only says when state is saved).
            "video": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.options).items()
                      if not k.startswith("checkpoint")},
            "frames": self.n,
            "size": [h, w],
        }
        # A frame's job is this run's (same manifest) frame i, of these style pixels.
        self.key = hashlib.sha256(json.dumps(self.manifest, sort_keys=True).encode()).hexdigest()[:16]
        self.style_hashes = {_style_label(s, k): _pixels_sha256(as_rgb(s)) for k, s in enumerate(self.styles)}
        self.restart = restart
        self._flows: dict[tuple[int, int], Tensor] = {}

    # -- per-frame set-up ---------------------------------------------------------------------------
    def frame_config(self, i: int) -> Config:
        """Frame 0 (and every frame of an independent run): the full configuration. Later frames of a
        warm-started run: ``frame_steps`` steps at the output size (the warm start is already there)."""
        if i == 0 or not self.options.warm_start:
            return self.config
        steps = self.options.frame_steps if self.options.frame_steps is not None else default_frame_steps(self.config)
        return self.config.replace(steps=steps, start_size=None, scale_steps=None)

    def frame_schedule(self, i: int) -> list[tuple[tuple[int, int], int]]:
        h, w = (int(x) for x in self.clip.frames[i].shape[1:])
        return self.frame_config(i).schedule(h, w)

    def frame_steps_total(self, i: int) -> int:
        return sum(steps for _, steps in self.frame_schedule(i))

    def flow(self, a: int, b: int) -> Tensor:
        """Optical flow from content frame ``a`` to ``b`` (cached: each pair is needed twice)."""
        key = (a, b)
        if key not in self._flows:
            self._flows[key] = compute_flow(self.clip.frame(a), self.clip.frame(b), self.options.flow)
        return self._flows[key]

    def temporal_targets(self, i: int) -> tuple[list[Tensor], list[Tensor]]:
        """Stylised frames i-j warped into frame i and their long-term weights, nearest j first."""
        js = sorted(j for j in set(self.options.temporal_frames) if i - j >= 0)
        warped, masks = [], []
        for j in js:
            back = self.flow(i, i - j)
            fwd = self.flow(i - j, i)
            prev = self.store.load(i - j)
            warped.append(warp(prev, back).clamp(0.0, 1.0))
            masks.append(reliability_mask(fwd, back))
        return warped, long_term_weights(masks)

    def _luminance_space(self, img: Tensor) -> Tensor:
        """With luminance-only colour preservation the engine optimises grey images: so must targets be."""
        if self.config.preserve_color == "luminance":
            from impasto.losses.color import luminance_only

            return luminance_only(img)
        return img

    def _make(self, i: int) -> StyleTransfer:
        """Frame ``i``'s engine: the frame's pixels, the warm start and the temporal loss."""
        cfg = self.frame_config(i)
        init: Tensor | None = None
        extra = None
        if i > 0 and (self.options.warm_start or self.options.temporal_weight > 0):
            if self.options.warm_start:
                prev = self.store.load(i - 1)
                init = self._luminance_space(warp(prev, self.flow(i, i - 1)).clamp(0.0, 1.0))
            if self.options.temporal_weight > 0:
                warped, weights = self.temporal_targets(i)
                extra = TemporalLoss([self._luminance_space(w) for w in warped], weights,
                                     self.options.temporal_weight)
        # Drop flows no later frame needs.
        keep = i - max(self.options.temporal_frames)
        self._flows = {k: v for k, v in self._flows.items() if min(k) >= keep}
        return StyleTransfer(self.clip.frame(i), self.styles, cfg, weights=self.weights, init_image=init,
                             extra_loss=extra)

    def frame_job(self, i: int) -> JobRun:
        """Frame ``i`` as a job: resumed from the store's checkpoint when it is this run's frame ``i``
        (any other file there, whatever it holds, is ignored and replaced at the first checkpoint)."""
        content = f"{self.clip.source}#frame{i + 1}"  # a label: the engine gets the frame's pixels
        spec = JobSpec(content=content, styles=tuple(self.style_hashes), config=self.frame_config(i),
                       inputs={content: _pixels_sha256(self.clip.frames[i]), **self.style_hashes},
                       checkpoint=self.options.checkpoint, key=f"video {self.key} frame {i + 1}")
        return JobRun(spec, control=self.control, checkpoint=self.store.checkpoint_path, resume="if-valid",
                      engine=lambda _spec: self._make(i), checkpoint_extra={"kind": "video", "frame": i})

    def _clip_eta(self, first: int) -> tuple[Eta, list[int], list[int]]:
        """One :class:`Eta` over the steps of frames ``first``.. (each frame's scales in turn), and each
        frame's offsets into it (scales, steps)."""
        sizes: list[tuple[int, int]] = []
        steps: list[int] = []
        scale_at, step_at = [0] * self.n, [0] * self.n
        total = 0
        for i in range(first, self.n):
            scale_at[i], step_at[i] = len(sizes), total
            for size, n in self.frame_schedule(i):
                sizes.append(size)
                steps.append(n)
                total += n
        return Eta(sizes, steps), scale_at, step_at

    # -- the loop -------------------------------------------------------------------------------------
    def run(self) -> Iterator[VideoProgress]:
        first = self.store.open(self.manifest, restart=self.restart, normalise=_normalise_manifest)
        t0 = time.perf_counter()
        eta, scale_at, step_at = self._clip_eta(first)
        yield VideoProgress(kind="start", frame=first, n_frames=self.n, elapsed=0.0)
        for i in range(first, self.n):
            if self.control.stop_requested or self.control.cancel_requested:
                yield VideoProgress(kind="stopped", frame=i, n_frames=self.n, elapsed=time.perf_counter() - t0)
                return
            tf = time.perf_counter()
            job = self.frame_job(i)
            result: Progress | None = None
            for ev in job:
                p = ev.progress
                if ev.kind == "step" and p is not None:
                    yield VideoProgress(kind="step", frame=i, n_frames=self.n, elapsed=time.perf_counter() - t0,
                                        eta=eta.update(step_at[i] + p.step, scale_at[i] + p.scale), progress=p)
                elif ev.kind in ("stopped", "cancelled"):
                    yield VideoProgress(kind="stopped", frame=i, n_frames=self.n, elapsed=time.perf_counter() - t0,
                                        path=str(ev.checkpoint) if ev.checkpoint else None,
                                        resumed_step=job.resumed_from)
                    return
                elif ev.kind == "done":
                    result = p
            assert result is not None and result.image is not None
            img = _quantised(result.image)
            spent = time.perf_counter() - tf
            meta = {**self.manifest, "frame": i + 1, "loss": result.loss, "steps": result.step,
                    "seconds": round(spent, 3), "resumed_step": job.resumed_from,
                    "terms": {k: float(f"{v:.6g}") for k, v in result.terms.items()}}
            path = self.store.save(i, img, metadata=meta)
            self.store.clear_checkpoint()
            left = eta.update(step_at[i] + result.step, scale_at[i] + result.scale)
            yield VideoProgress(kind="frame", frame=i, n_frames=self.n, elapsed=time.perf_counter() - t0,
                                eta=0.0 if i == self.n - 1 else left, frame_seconds=spent, loss=result.loss,
                                terms=dict(result.terms), path=str(path), resumed_step=job.resumed_from, image=img)
        yield VideoProgress(kind="done", frame=self.n - 1, n_frames=self.n, elapsed=time.perf_counter() - t0)
