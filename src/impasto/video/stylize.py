"""The frame loop of Ruder, Dosovitskiy and Brox (2016), *Artistic style transfer for videos*.

Frame 1 is optimised like a still image (the configuration as given, coarse-to-fine by default). Each
later frame t starts from stylised frame t-1 warped into frame t by the backward optical flow, runs
fewer steps at the output size only, and (with a temporal weight) is kept close to the warped
previous result(s) wherever the flow passed the forward-backward consistency check. Independent
per-frame stylisation is the same loop with the warm start and the temporal loss turned off.

The loop is a generator of :class:`VideoProgress` events and never prints. Each finished frame goes
to a :class:`~impasto.video.io.FrameStore` at once (atomically), and the in-progress frame's optimiser
state is checkpointed every ``checkpoint_every`` steps, so a killed run resumes at the first missing
frame, from its checkpoint. Previous results are always read back from the stored 8-bit frames, never
kept as floats, so a resumed run computes exactly what an uninterrupted one would.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from torch import Tensor

from impasto import __version__
from impasto.config import Config
from impasto.engine import ImageLike, Progress, StyleTransfer
from impasto.errors import ImpastoError
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
    checkpoint_every: int = 20
    """Checkpoint the in-progress frame every N steps (0: not by steps)."""
    checkpoint_seconds: float | None = None
    """Also checkpoint when this many seconds have passed since the last checkpoint (None: not by time)."""

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
        if self.checkpoint_every < 0:
            raise ImpastoError(f"checkpoint_every must be >= 0 (got {self.checkpoint_every})")
        if self.checkpoint_seconds is not None and not self.checkpoint_seconds > 0:
            raise ImpastoError(f"checkpoint_seconds must be > 0 (got {self.checkpoint_seconds})")

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
    written to ``path``) and ``done`` (all frames exist).
    """

    kind: str
    frame: int
    """Index from 0 of the frame concerned."""
    n_frames: int
    elapsed: float
    """Seconds since this run (not the whole job, if it was resumed) started."""
    eta: float | None = None
    """Estimated seconds left for the whole clip (steps left × the current seconds per step)."""
    progress: Progress | None = None
    frame_seconds: float | None = None
    loss: float | None = None
    """The frame's final loss (``frame`` events)."""
    terms: dict[str, float] | None = None
    path: str | None = None
    resumed_step: int = 0
    """``start``/``frame``: the step the in-progress frame resumed from its checkpoint (0: from scratch)."""
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


class VideoStylizer:
    """Stylise a clip frame by frame into a :class:`FrameStore`; see the module docstring."""

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
        self.n = len(clip.frames)
        self.manifest = {
            **(manifest or {}),
            "impasto_version": __version__,
            "config": self.config.to_dict(),
            # Everything that changes the frames (not the checkpoint options, which only say when state is saved).
            "video": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.options).items()
                      if not k.startswith("checkpoint")},
            "frames": self.n,
            "size": [h, w],
        }
        self.restart = restart
        self._st: StyleTransfer | None = None
        self._frame: int | None = None
        self._flows: dict[tuple[int, int], Tensor] = {}

    # -- per-frame set-up ---------------------------------------------------------------------------
    def frame_config(self, i: int) -> Config:
        """Frame 0 (and every frame of an independent run): the full configuration. Later frames of a
        warm-started run: ``frame_steps`` steps at the output size (the warm start is already there)."""
        if i == 0 or not self.options.warm_start:
            return self.config
        steps = self.options.frame_steps if self.options.frame_steps is not None else default_frame_steps(self.config)
        return self.config.replace(steps=steps, start_size=None, scale_steps=None)

    def frame_steps_total(self, i: int) -> int:
        h, w = (int(x) for x in self.clip.frames[i].shape[1:])
        return sum(steps for _, steps in self.frame_config(i).schedule(h, w))

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

    # -- the loop -------------------------------------------------------------------------------------
    def checkpoint(self) -> bool:
        """Save the in-progress frame's state now (call only between events); True if there was one."""
        if self._st is None or self._frame is None or self._st.pixels is None:
            return False
        self.store.save_checkpoint(self._frame, self._st.state_dict())
        return True

    def run(self) -> Iterator[VideoProgress]:
        opts = self.options
        first = self.store.open(self.manifest, restart=self.restart, normalise=_normalise_manifest)
        t0 = time.perf_counter()
        remaining_after = [0] * self.n
        for k in range(self.n - 2, -1, -1):
            remaining_after[k] = remaining_after[k + 1] + self.frame_steps_total(k + 1)
        yield VideoProgress(kind="start", frame=first, n_frames=self.n, elapsed=0.0)
        for i in range(first, self.n):
            tf = time.perf_counter()
            st = self._make(i)
            state = self.store.load_checkpoint(i)
            if state is not None:
                try:
                    st.load_state_dict(state)
                except (ImpastoError, KeyError, RuntimeError, ValueError, TypeError):
                    st = self._make(i)  # an unusable checkpoint costs only this frame's progress
            self._st, self._frame = st, i
            result: Progress | None = None
            first_step: int | None = None
            resumed = 0
            last_ckpt = time.perf_counter()
            for ev in st.run():
                if ev.done:
                    result = ev
                    break
                if first_step is None:
                    first_step = ev.step - 1  # > 0 when the engine continues from a checkpoint
                    resumed = first_step
                due = bool(opts.checkpoint_every) and ev.step % opts.checkpoint_every == 0
                if opts.checkpoint_seconds is not None and time.perf_counter() - last_ckpt >= opts.checkpoint_seconds:
                    due = True
                if due:
                    self.store.save_checkpoint(i, st.state_dict())
                    last_ckpt = time.perf_counter()
                done_here = ev.step - first_step
                rate = (time.perf_counter() - tf) / max(done_here, 1)
                eta = rate * ((ev.total_steps - ev.step) + remaining_after[i])
                yield VideoProgress(kind="step", frame=i, n_frames=self.n, elapsed=time.perf_counter() - t0,
                                    eta=eta, progress=ev)
            assert result is not None and result.image is not None
            img = _quantised(result.image)
            spent = time.perf_counter() - tf
            meta = {**self.manifest, "frame": i + 1, "loss": result.loss, "steps": result.step,
                    "seconds": round(spent, 3), "resumed_step": resumed,
                    "terms": {k: float(f"{v:.6g}") for k, v in result.terms.items()}}
            path = self.store.save(i, img, metadata=meta)
            self.store.clear_checkpoint()
            self._st, self._frame = None, None
            per_step = spent / max(result.step - resumed, 1)
            yield VideoProgress(kind="frame", frame=i, n_frames=self.n, elapsed=time.perf_counter() - t0,
                                eta=per_step * remaining_after[i], frame_seconds=spent, loss=result.loss,
                                terms=dict(result.terms), path=str(path), resumed_step=resumed, image=img)
        yield VideoProgress(kind="done", frame=self.n - 1, n_frames=self.n, elapsed=time.perf_counter() - t0)

