"""The optimisation: pixels, optimiser, scales. Yields :class:`Progress` events; never prints.

Data flow: images (:mod:`impasto.io`) -> frozen VGG features (:mod:`impasto.vgg`) -> the objective of
each scale (:mod:`impasto.objective`, built from the pure :mod:`impasto.losses`) -> this loop (with the
optimisers and step hooks of :mod:`impasto.optim`) -> front-ends that consume the events.

The loop is Gatys et al. (2016): optimise the pixels of an image so that its VGG responses match the
content image's at the content layers and its Gram matrices match the style image's at the style
layers. Departures from the paper are opt-in through :class:`~impasto.config.Config` and named there.

The run's state is a value: :meth:`StyleTransfer.state_dict` between two steps (while :meth:`run` is
suspended at a yield) holds everything the rest of the run depends on, and a fresh instance with the
same inputs and configuration that loads it continues bit-identically on the CPU.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto import __version__
from impasto.config import Config
from impasto.errors import ImpastoError
from impasto.inputs import ImageLike, Inputs, as_rgb, finish, initial_image, resolve_device, seed_of
from impasto.io import resize_long_side, resize_to
from impasto.objective import ExtraLoss, LossForms, LossWeights, Objective
from impasto.optim import (
    DivergenceGuard,
    IterateAverage,
    LossEvaluator,
    Optimizer,
    OptimizerFactory,
    OptimizerSpec,
    StepHooks,
    ToleranceStop,
    TrustRegion,
    make_optimizer,
)
from impasto.optim.evaluator import GRAPH_MAX_PIXELS
from impasto.optim.factory import adam_state, carry_adam_state, release
from impasto.tiling import TiledObjective, check_tileable
from impasto.tiling.allocator import bound_allocator, relax_allocator
from impasto.tiling.cost import (
    COMMITTED_RATE,
    GIVEN_RATE,
    MEASURED_RATE,
    RunCost,
    default_rate,
    evaluations_per_step,
    process_overhead,
    run_cost,
)
from impasto.tiling.memory import ScalePlan, plan_scale, resolve_budget
from impasto.vgg import VGGFeatures, VGGWeights, canonical_layer, load_weights

STATE_FORMAT = "impasto-state/1"
FIRST_STEP_FRACTION = 0.1
"""The first L-BFGS step of a scale moves the pixels by this fraction of the trust region (RMS), i.e.
about one grey level at the defaults. torch's own first step stalls some runs of the relative balance
(see :mod:`impasto.optim.lbfgs`); of 1, 0.25 and 0.1 of the trust region, 0.1 reached the lowest loss
after 13 steps on a scale that had stalled and as low as 0.25 after 25 (``scripts/first_step_stall.py``,
``docs/quality.md``)."""

BOUND_FRACTION = 0.75
"""A whole-image scale modelled at this fraction of ``max_memory`` or more runs with the allocator bound
(:mod:`impasto.tiling.allocator`) as tiled scales do: the model counts live tensors, and the heap's
retention is of their order (the poster's 1699 px whole scale, modelled at 5.7 GiB, peaked at 6.1 GiB
resident with glibc's defaults: ``docs/perf/poster_6000_cpu_run2.json``)."""


@dataclass
class Progress:
    """One optimiser step (or the final event, ``done=True``)."""

    step: int
    """Global step, counting from 1 across all scales (0 for the event before the first step)."""
    total_steps: int
    scale: int
    """Index of the current scale, from 0."""
    n_scales: int
    size: tuple[int, int]
    """(height, width) being optimised."""
    loss: float
    content: float
    style: float
    tv: float
    """Weighted loss terms; ``loss`` is their sum (evaluated at the pixels before this step)."""
    elapsed: float
    """Seconds of optimisation so far (set-up excluded; a resumed run counts its earlier part)."""
    image: Tensor | None = None
    """Current pixels, [3, H, W] RGB in [0, 1] on the CPU, when asked for (and always when done)."""
    done: bool = False
    stop_reason: str | None = None
    terms: dict[str, float] = field(default_factory=dict)
    """Per-layer weighted terms, e.g. ``{"style/relu1_1": ...}``."""
    restarts: int = 0
    """Divergence restarts so far (see ``Config.restart_factor``)."""
    tiles: int = 0
    """Tiles of this step's last evaluation (0: the scale runs whole; see ``Config.max_memory``)."""


def _tree(obj: Any, device: torch.device | None, copy: bool = True) -> Any:
    """Nested dicts/lists/tuples with every tensor moved to ``device`` (None: the CPU), cloned unless
    ``copy`` is False and it is already there."""
    if isinstance(obj, Tensor):
        return obj.detach().to(device or "cpu", copy=copy)
    if isinstance(obj, dict):
        return {k: _tree(v, device, copy) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_tree(v, device, copy) for v in obj)
    return obj


@dataclass
class _Position:
    """Where a run is: ``done`` steps finished at scale ``scale``; ``stopped`` when that scale ended early."""

    scale: int = 0
    done: int = 0
    step: int = 0
    stopped: str | None = None


class StyleTransfer:
    """One run: holds the model, the inputs and the pixels being optimised.

    ``run()`` is a generator of :class:`Progress`; interrupting it leaves ``current_image()`` valid, so
    front-ends can save what exists so far, and ``state_dict()`` taken at a yield resumes the run.
    """

    def __init__(
        self,
        content: ImageLike,
        styles: Sequence[ImageLike],
        config: Config | None = None,
        *,
        weights: VGGWeights | None = None,
        init_image: Tensor | None = None,
        extra_loss: ExtraLoss | None = None,
        optimizer_factory: OptimizerFactory = make_optimizer,
        tile_executor: Any = None,
    ) -> None:
        """``init_image`` ([3, H, W] RGB in [0, 1]; resized to the first scale) overrides ``config.init``:
        a warm start, e.g. the previous frame of a balance sweep or a video. ``extra_loss`` adds a term to
        the objective (see :class:`~impasto.objective.ExtraLoss`). ``tile_executor``: a
        :class:`~impasto.tiling.executors.TileExecutor` that runs the tiles of tiled scales (instead of one
        started from ``config.devices``), e.g. workers a front-end keeps between runs; the caller closes it."""
        self.config = cfg = config if config is not None else Config()
        self.inputs = Inputs.prepare(content, styles, cfg)
        self.device = resolve_device(cfg.device)
        self.weights = weights if weights is not None else load_weights(cfg.weights, fmt=cfg.weights_format)
        arch = self.weights.arch
        self.content_layers = [canonical_layer(x, arch) for x in cfg.content_layers]
        self.style_layers = [canonical_layer(x, arch) for x in cfg.style_layers]
        self.model = VGGFeatures(self.weights, self.content_layers + self.style_layers, cfg.pooling)
        self.model.use_channels_last(True).to(self.device)
        self.extra_loss = extra_loss
        self.optimizer_factory = optimizer_factory
        self.forms = LossForms.from_config(cfg)
        self.loss_weights = LossWeights.from_config(cfg)
        self._digest = self._input_digest(init_image)
        plan = cfg.schedule(int(self.inputs.content.shape[-2]), int(self.inputs.content.shape[-1]))
        self.sizes = [size for size, _ in plan]
        self.steps = [steps for _, steps in plan]
        self._plans: dict[tuple[int, int], ScalePlan] = {}
        self._budget: int | None = None
        self._executor: Any = None
        self._given_executor = tile_executor
        self.hooks = self._hooks()
        self.pixels: Tensor | None = None
        self._opt: Optimizer | None = None
        self._pos = _Position()
        self._elapsed = 0.0
        self._last = (math.nan, math.nan, math.nan, math.nan)
        self._terms: dict[str, float] = {}
        self._stop_reason = "steps"
        self._loaded: dict[str, Any] | None = None
        self._tiled: TiledObjective | None = None
        self._allocator_bound = False
        self.initial: Tensor
        """The first scale's start, [1, 3, H, W] in [0, 1]."""
        if init_image is not None:
            x = resize_to(as_rgb(init_image), self.sizes[0]).unsqueeze(0)
            self.initial = (x.clamp(0.0, 1.0) if cfg.clamp else x).contiguous()
        else:
            self.initial = initial_image(cfg, self.inputs.content, self.sizes[0], self.weights.preprocess,
                                         self.inputs.styles, self.inputs.blend)

    # -- set-up ----------------------------------------------------------------------------------
    def _input_digest(self, init_image: Tensor | None) -> str:
        """sha256 of the input pixels and the configuration: what a saved state must match."""
        h = hashlib.sha256(self.config.state_json().encode())
        inp = self.inputs
        for t in [inp.content_rgb, *inp.styles, *([as_rgb(init_image)] if init_image is not None else [])]:
            h.update(str(tuple(t.shape)).encode())
            h.update(t.contiguous().numpy().tobytes())
        return h.hexdigest()

    def _hooks(self) -> StepHooks:
        cfg = self.config
        spec = self.optimizer_spec(self.sizes[0])
        trust = (TrustRegion(cfg.lbfgs_max_step * cfg.pixel_scale)
                 if cfg.lbfgs_max_step is not None and spec.plain_lbfgs else None)
        guard = DivergenceGuard(cfg.restart_factor, cfg.max_restarts) if cfg.restart_factor is not None else None
        average = IterateAverage(cfg.ema) if cfg.ema is not None else None
        tolerance = ToleranceStop(cfg.tol, cfg.tol_window, cfg.pixel_scale) if cfg.tol is not None else None
        return StepHooks(trust, guard, average, tolerance)

    def optimizer_spec(self, size: tuple[int, int]) -> OptimizerSpec:
        """What the optimiser of the scale of this size is built from (see ``optimizer_factory``)."""
        cfg = self.config
        # With a trust region, a scale's first step (and the first after a restart) is a gradient step of
        # a tenth of its length, whatever the loss's unit; without one, torch's rule, as the write-ups ran.
        first = (cfg.lbfgs_max_step * cfg.pixel_scale * FIRST_STEP_FRACTION
                 if cfg.lbfgs_max_step is not None else None)
        plan = self._plans.get(size)
        history = plan.pairs if plan is not None else cfg.history_for(*size)
        return OptimizerSpec(cfg.optimizer, cfg.effective_lr(), history, cfg.lbfgs_line_search,
                             cfg.lbfgs_max_iter, cfg.adam_betas, cfg.adam_eps, first)

    def memory_budget(self) -> int | None:
        """``max_memory`` in bytes (None: no budget). ``auto`` is resolved once, from the memory available
        when first asked (:func:`~impasto.tiling.memory.auto_budget`), and kept in the run's state, so a
        resumed run plans its scales as the interrupted one did."""
        cfg = self.config
        if cfg.max_memory is None:
            return None
        if self._budget is None:
            self._budget = resolve_budget(cfg.max_memory,
                                          self.device.type if self.device.type == "cpu" else str(self.device))
        return self._budget

    def process_overhead(self) -> int:
        """What the process holds besides a scale's estimate: the runtime allowance
        (:data:`~impasto.tiling.memory.RUNTIME_BYTES`) and, on the CPU, the input images as prepared (one
        formula with the front-ends that price a job unloaded: :func:`~impasto.tiling.cost.process_overhead`)."""
        inp = self.inputs
        hw = (int(inp.content.shape[-2]), int(inp.content.shape[-1]))
        return process_overhead("cpu" if self.device.type == "cpu" else "cuda", hw,
                                [(int(s.shape[-2]), int(s.shape[-1])) for s in inp.styles])

    def memory_plan(self, size: tuple[int, int]) -> ScalePlan | None:
        """How the scale of this size runs under ``max_memory`` (None: no budget, the whole image as ever);
        see :func:`~impasto.tiling.memory.plan_scale`. Front-ends can show it before a run starts."""
        budget = self.memory_budget()
        if budget is None:
            return None
        return plan_scale(self.model, self.content_layers, self.style_layers, size[0], size[1],
                          budget, self.config.history_for(*size), self.process_overhead())

    def cost(self, seconds_per_mpixel: float | None = None, *, measure: bool = False) -> RunCost:
        """What this run will cost, before it starts: each scale's modelled peak memory, whole and as
        planned under ``max_memory``, and its time from a step rate: ``seconds_per_mpixel``, or with
        ``measure`` one measured now (:func:`measure_rate`, a second or two), else the committed
        measurement for this device type (see :mod:`impasto.tiling.cost`)."""
        source = GIVEN_RATE if seconds_per_mpixel is not None else MEASURED_RATE if measure else COMMITTED_RATE
        if seconds_per_mpixel is None:
            seconds_per_mpixel = (measure_rate(self.config, self.weights) if measure
                                  else default_rate(self.device.type))
        return run_cost(self.model, self.content_layers, self.style_layers, list(zip(self.sizes, self.steps)),
                        self.config.history_for, self.memory_budget(), self.process_overhead(), str(self.device),
                        seconds_per_mpixel, source)

    def _plan_scales(self) -> None:
        """Plan every scale under the budget before the first step; a scale that needs tiles and a setting
        that cannot be tiled is refused now, not after the coarse scales ran."""
        self._plans = {}
        for size in self.sizes:
            plan = self.memory_plan(size)
            if plan is None:
                continue
            self._plans[size] = plan
            if plan.tiled:
                check_tileable(self.forms, regions=self.inputs.regions is not None,
                               extra=self.extra_loss.name if self.extra_loss is not None else None)

    def _scale_inputs(self, size: tuple[int, int]) -> tuple[Tensor, list[Tensor]]:
        """The content at ``size`` and the styles at ``style_scale`` times its long side (at most
        ``style_max_zoom`` times their own), on the device."""
        content = resize_to(self.inputs.content, size).unsqueeze(0).to(self.device)
        return content, [resize_long_side(s, self.style_long_side(size, s)).unsqueeze(0).to(self.device)
                         for s in self.inputs.styles]

    def style_long_side(self, size: tuple[int, int], style: Tensor) -> int:
        """The long side a style image of this run has at the scale of ``size``."""
        cfg = self.config
        long = round(cfg.style_scale * max(size))
        if cfg.style_max_zoom is not None:
            long = min(long, round(cfg.style_max_zoom * max(style.shape[-2:])))
        return max(16, long)

    def tiled_objective(self, size: tuple[int, int], tile: int) -> TiledObjective:
        """The objective of :meth:`objective` evaluated in tiles of side ``tile`` (see :mod:`impasto.tiling`)."""
        cfg = self.config
        content, styles = self._scale_inputs(size)
        return TiledObjective.build(
            self.model, content, styles, self.inputs.blend, content_layers=self.content_layers,
            style_layers=self.style_layers, forms=self.forms, weights=self.loss_weights,
            pixel_scale=cfg.pixel_scale, tile=tile, seed=cfg.seed or 0,
        )

    def objective(self, size: tuple[int, int]) -> Objective:
        """The objective at one scale, targets computed once (the benchmark's judge uses it too)."""
        cfg = self.config
        content, styles = self._scale_inputs(size)
        return Objective.build(
            self.model, content, styles, self.inputs.blend, content_layers=self.content_layers,
            style_layers=self.style_layers, forms=self.forms, weights=self.loss_weights,
            pixel_scale=cfg.pixel_scale, regions=self.inputs.regions, extra=self.extra_loss,
        )

    # -- results ---------------------------------------------------------------------------------
    def current_image(self) -> Tensor:
        """The pixels as they are now: [3, H, W] RGB in [0, 1] on the CPU."""
        if self.pixels is None:
            x = self.initial
        else:
            avg = self.hooks.average.value if self.hooks.average is not None else None
            x = (avg if avg is not None else self.pixels.detach()) / self.config.pixel_scale
        return finish(x[0].clamp(0.0, 1.0).float().cpu(), self.config, self.inputs)

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self, *, copy: bool = True) -> dict[str, Any]:
        """The complete run state, valid while ``run()`` is suspended at a yield or done.

        ``copy=False`` skips cloning tensors that are already on the CPU: for serialising at once (a
        checkpoint), where a copy of the L-BFGS history (450 MiB at 512 px) would only double the memory.
        """
        pos = self._pos

        def tree(obj: Any) -> Any:
            return _tree(obj, None, copy)

        state: dict[str, Any] = {
            "format": STATE_FORMAT,
            "version": __version__,
            "digest": self._digest,
            "position": {"scale": pos.scale, "done": pos.done, "step": pos.step, "stopped": pos.stopped},
            "pixels": None if self.pixels is None else tree(self.pixels),
            "optimizer": None if self._opt is None else tree(self._opt.state_dict()),
            "hooks": tree(self.hooks.state_dict()),
            "elapsed": self._elapsed,
            "last": list(self._last),
            "terms": dict(self._terms),
            "stop_reason": self._stop_reason,
            "torch_rng": torch.get_rng_state(),
        }
        if self._tiled is not None:
            # Where the moving tile grid stands (only a tiled scale has the key: other states are as before).
            state["tile_evaluations"] = self._tiled.evaluations
        if self._budget is not None and (self.config.max_memory or "").strip().lower() == "auto":
            state["memory_budget"] = self._budget  # the resolved auto budget: a resume plans the same scales
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` on the next ``run()``; refuses a state from other inputs or versions."""
        if state.get("format") != STATE_FORMAT:
            raise ImpastoError(f"not an impasto run state (format {state.get('format')!r}, expected {STATE_FORMAT})")
        if state.get("version") != __version__:
            raise ImpastoError(
                f"this run state was saved by impasto {state.get('version')}, this is {__version__}: "
                "start the run again"
            )
        if state.get("digest") != self._digest:
            raise ImpastoError("this run state belongs to other input images or another configuration")
        self._check_state(state)
        self._loaded = state
        if "memory_budget" in state:
            self._budget = state["memory_budget"]

    def _check_state(self, state: dict[str, Any]) -> None:
        """Refuse a state whose fields do not fit this run (a crafted or damaged checkpoint), before any
        of it is used: types, the position within the schedule, the pixels' shape and finiteness, the
        RNG state's size, and every optimiser or hook tensor the size of the pixels or a scalar."""

        def bad(what: str) -> ImpastoError:
            return ImpastoError(f"the saved run state is damaged ({what})")

        keys = {"format", "version", "digest", "position", "pixels", "optimizer", "hooks", "elapsed", "last",
                "terms", "stop_reason", "torch_rng"}
        if not keys <= set(state) <= keys | {"tile_evaluations", "memory_budget"}:
            raise bad("unexpected fields")
        if "memory_budget" in state and (type(state["memory_budget"]) is not int or state["memory_budget"] <= 0):
            raise bad("memory budget")
        if "tile_evaluations" in state and (type(state["tile_evaluations"]) is not int
                                            or state["tile_evaluations"] < 0):
            raise bad("tile schedule")
        pos = state["position"]
        if not isinstance(pos, dict) or set(pos) != {"scale", "done", "step", "stopped"}:
            raise bad("position")
        scale, done, step = pos["scale"], pos["done"], pos["step"]
        if not all(type(v) is int for v in (scale, done, step)) or not 0 <= scale < len(self.sizes):
            raise bad("position")
        if not (0 <= done <= self.steps[scale] and done <= step <= sum(self.steps[:scale]) + done):
            raise bad("position")
        if pos["stopped"] is not None and not isinstance(pos["stopped"], str):
            raise bad("position")
        pixels = state["pixels"]
        n = 3 * self.sizes[scale][0] * self.sizes[scale][1]
        if pixels is not None:
            if not isinstance(pixels, Tensor) or tuple(pixels.shape) != (1, 3, *self.sizes[scale]):
                raise bad("pixels of the wrong shape")
            if not pixels.is_floating_point() or not bool(torch.isfinite(pixels).all()):
                raise bad("pixels that are not finite numbers")

        def tensors_fit(obj: Any, depth: int = 0) -> bool:
            if depth > 6:
                return False
            if isinstance(obj, Tensor):
                return obj.is_floating_point() and obj.numel() in (1, n) if obj.numel() else True
            if isinstance(obj, dict):
                return all(isinstance(k, (str, int)) and tensors_fit(v, depth + 1) for k, v in obj.items())
            if isinstance(obj, (list, tuple)):
                return len(obj) <= 100_000 and all(tensors_fit(v, depth + 1) for v in obj)
            return obj is None or isinstance(obj, (int, float, str, bool))

        for name in ("optimizer", "hooks"):
            if state[name] is not None and not (isinstance(state[name], dict) and tensors_fit(state[name])):
                raise bad(name)
        if not isinstance(state["hooks"], dict) or set(state["hooks"]) != {"guard", "average", "tolerance"}:
            raise bad("hooks")
        if isinstance(state["elapsed"], bool) or not isinstance(state["elapsed"], (int, float)):
            raise bad("elapsed time")
        last = state["last"]
        if not isinstance(last, list) or len(last) != 4 or not all(isinstance(v, (int, float)) for v in last):
            raise bad("last losses")
        terms = state["terms"]
        if not isinstance(terms, dict) or not all(isinstance(k, str) and isinstance(v, (int, float))
                                                  for k, v in terms.items()):
            raise bad("loss terms")
        if not isinstance(state["stop_reason"], str):
            raise bad("stop reason")
        rng = state["torch_rng"]
        want = torch.get_rng_state()
        if not isinstance(rng, Tensor) or rng.dtype != want.dtype or rng.shape != want.shape:
            raise bad("random number generator state")

    def _restore(self, opt: Optimizer, state: dict[str, Any]) -> None:
        if state["optimizer"] is not None:
            opt.load_state_dict(_tree(state["optimizer"], self.device))
        self.hooks.load_state_dict(state["hooks"], self.device)
        p = state["position"]
        self._pos = _Position(p["scale"], p["done"], p["step"], p["stopped"])
        self._elapsed = float(state["elapsed"])
        self._last = (float(state["last"][0]), float(state["last"][1]), float(state["last"][2]),
                      float(state["last"][3]))
        self._terms = dict(state["terms"])
        self._stop_reason = str(state["stop_reason"])
        torch.set_rng_state(state["torch_rng"])
        if self._tiled is not None:
            self._tiled.evaluations = int(state.get("tile_evaluations", 0))

    # -- the loop --------------------------------------------------------------------------------
    def run(self, image_every: int = 0) -> Iterator[Progress]:
        """Optimise, yielding one :class:`Progress` per step and a final one with ``done=True``.

        ``image_every``: attach the current image to every N-th step's event (0: only the last).
        """
        try:
            yield from self._run(image_every)
        finally:
            self.close_workers()
            self._bound_allocator(None)

    def _bound_allocator(self, plan: ScalePlan | None) -> None:
        """A scale on the CPU that the budget binds (tiled, or modelled at :data:`BOUND_FRACTION` of the
        budget or more) runs with the C allocator returning freed blocks at once (see
        :mod:`impasto.tiling.allocator`: otherwise the heap keeps what was freed and the process outgrows
        its budget); other scales, and whatever runs after, with its faster default."""
        binds = plan is not None and (plan.tiled or plan.peak >= BOUND_FRACTION * plan.budget)
        want = binds and self.device.type == "cpu"
        if want and not self._allocator_bound:
            self._allocator_bound = bound_allocator()
        elif not want and self._allocator_bound:
            relax_allocator()
            self._allocator_bound = False

    def _tile_executor(self) -> Any:
        """The executor of ``Config.devices`` (started at the first tiled scale, kept until the run ends;
        None: tiles run here)."""
        if self._given_executor is not None:
            return self._given_executor
        if not self.config.devices:
            return None
        if self._executor is None:
            from impasto.tiling.executors import make_executor

            self._executor = make_executor(self.model, self.config.devices)
        return self._executor

    def close_workers(self) -> None:
        """Stop the tile workers of ``Config.devices`` (done when :meth:`run` ends or is closed)."""
        ex, self._executor = self._executor, None
        if ex is not None:
            ex.close()

    def _run(self, image_every: int) -> Iterator[Progress]:
        cfg = self.config
        total_steps = sum(self.steps)
        loaded, self._loaded = self._loaded, None
        if loaded is not None and loaded["pixels"] is None:
            loaded = None  # saved before the first step: nothing to continue
        first = loaded["position"]["scale"] if loaded is not None else 0
        if loaded is None:
            torch.manual_seed(seed_of(cfg))
        carried: dict[str, Tensor] | None = None
        self._plan_scales()
        for si in range(first, len(self.sizes)):
            size = self.sizes[si]
            plan = self._plans.get(size)
            objective: Objective | TiledObjective
            self._bound_allocator(plan)
            if plan is None or plan.tile is None:
                self._tiled = None
                self.model.checkpointing = cfg.wants_recompute(self.device.type, self.model.activation_mib(*size))
                objective = self.objective(size)
            else:
                crop = (min(size[0], plan.tile + 2 * plan.halo), min(size[1], plan.tile + 2 * plan.halo))
                self.model.checkpointing = cfg.wants_recompute(self.device.type, self.model.activation_mib(*crop))
                objective = self._tiled = self.tiled_objective(size, plan.tile)
                objective.executor = self._tile_executor()
            restore = loaded if si == first else None
            x0 = restore["pixels"] if restore is not None else self._start_pixels(size)
            x = x0.to(self.device).contiguous().requires_grad_(True)
            self.pixels = x
            opt = self._opt = self.optimizer_factory(x, self.optimizer_spec(size))
            if carried is not None:
                carry_adam_state(opt, x, carried, size)
            self.hooks.begin_scale(x)
            if restore is not None:
                try:
                    self._restore(opt, restore)
                except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
                    raise ImpastoError(f"the saved run state does not fit this run ({type(e).__name__})") from None
                # The optimiser and hooks hold copies now. Kept, the saved state (its L-BFGS history,
                # previous gradient and direction, hook tensors) would stay alive to the end of the run,
                # outside the memory model: about 16 picture vectors, 1.2 GiB, for a 6000 px poster
                # resumed at 3193 px with its 6 pairs stored, through its 4377 and 6000 px scales too.
                loaded = restore = None
            else:
                self._pos = _Position(si, 0, self._pos.step, None)
                self._stop_reason = "steps"
            yield from self._scale(si, x, objective, total_steps, image_every)
            opt = self._opt
            carried = adam_state(opt, x)
            release(opt)
        self._opt = None
        self._tiled = None
        yield Progress(
            step=self._pos.step, total_steps=total_steps, scale=len(self.sizes) - 1, n_scales=len(self.sizes),
            size=self.sizes[-1], loss=self._last[0], content=self._last[1], style=self._last[2],
            tv=self._last[3], elapsed=self._elapsed, image=self.current_image(), done=True,
            stop_reason=self._stop_reason, terms=dict(self._terms),
            restarts=self.hooks.guard.restarts if self.hooks.guard is not None else 0,
        )

    def _start_pixels(self, size: tuple[int, int]) -> Tensor:
        """The first scale's start, or the previous scale's result (its average with ``ema``) upsampled.
        The previous scale's pixels and optimiser are dropped here, so memory is bounded by the largest
        scale."""
        cfg = self.config
        if self.pixels is None:
            return self.initial * cfg.pixel_scale
        avg = self.hooks.average.value if self.hooks.average is not None else None
        prev = avg if avg is not None else self.pixels.detach()
        x0 = F.interpolate(prev, size=size, mode="bicubic", align_corners=False)
        return x0.clamp(0.0, cfg.pixel_scale) if cfg.clamp else x0

    def _scale(self, si: int, x: Tensor, objective: Objective | TiledObjective, total_steps: int,
               image_every: int) -> Iterator[Progress]:
        """The steps of one scale, from wherever ``self._pos`` says this scale stands."""
        cfg, hooks = self.config, self.hooks
        size = self.sizes[si]
        names: list[str] = []
        pending: list[Tensor] = []

        def evaluate(px: Tensor) -> list[Tensor]:
            terms = objective(px)
            names[:] = terms.per.keys()
            return terms.flat()

        # Zeroes x.grad, runs forward and backward; a CUDA graph replay on NVIDIA GPUs up to
        # GRAPH_MAX_PIXELS. The tiled objective synchronises with the host (tile loops): never captured.
        tiled = isinstance(objective, TiledObjective)
        graph = cfg.cuda_graph and x.is_cuda and not tiled and size[0] * size[1] <= GRAPH_MAX_PIXELS
        evaluator = LossEvaluator(evaluate, x, graph=graph)

        def closure() -> Tensor:
            if cfg.clamp_before_eval:
                # In place and outside the evaluator: x keeps its address (CUDA graphs read it).
                with torch.no_grad():
                    x.clamp_(0.0, cfg.pixel_scale)
            outs = evaluator()
            with torch.no_grad():
                vals = torch.stack([v.detach() for v in outs])
                if hooks.guard is not None:
                    hooks.guard.observe(vals[0], x)
            # Read back after the optimiser's step: reading here would make the host wait for the GPU
            # before it could queue the step's own work.
            pending[:] = [vals]
            return outs[0]

        if self._pos.stopped is not None:
            return
        start = time.perf_counter() - self._elapsed
        while self._pos.done < self.steps[si]:
            assert self._opt is not None
            before = x.detach().clone() if hooks.needs_before else None
            self._opt.step(closure)  # type: ignore[arg-type]
            if hooks.trust is not None:
                assert before is not None
                hooks.trust.apply(self._opt, x, before)
            if cfg.clamp:
                with torch.no_grad():
                    x.clamp_(0.0, cfg.pixel_scale)
            self._pos.done += 1
            self._pos.step += 1
            step = self._pos.step
            # One device sync per step, for every number of the last evaluation.
            lowest_t = hooks.guard.best_loss if hooks.guard is not None else None
            vals = (torch.cat([pending[0], lowest_t.view(1)]) if lowest_t is not None else pending[0]).tolist()
            self._last = (vals[0], vals[1], vals[2], vals[3])
            self._terms = dict(zip(names, vals[4:4 + len(names)]))
            if hooks.guard is not None and hooks.guard.should_restart(vals[0], vals[-1], step):
                # Diverged: back to this scale's lowest-loss pixels with an empty optimiser history.
                hooks.guard.restore(x)
                self._opt = self.optimizer_factory(x, self.optimizer_spec(size))
            elif not math.isfinite(vals[0]):
                raise ImpastoError(f"the loss became {vals[0]} at step {step}: lower the learning rate or the weights")
            if hooks.average is not None:
                hooks.average.update(x)
            if hooks.tolerance is not None:
                assert before is not None
                hooks.tolerance.record(x, before)
                self._pos.stopped = hooks.tolerance.reason(size)
                if self._pos.stopped is not None:
                    self._stop_reason = self._pos.stopped
            self._elapsed = time.perf_counter() - start
            want = image_every > 0 and step % image_every == 0
            yield Progress(
                step=step, total_steps=total_steps, scale=si, n_scales=len(self.sizes), size=size,
                loss=self._last[0], content=self._last[1], style=self._last[2], tv=self._last[3],
                elapsed=self._elapsed, image=self.current_image() if want else None, terms=dict(self._terms),
                restarts=hooks.guard.restarts if hooks.guard is not None else 0,
                tiles=len(objective.last_tiles) if isinstance(objective, TiledObjective) else 0,
            )
            if self._pos.stopped is not None:
                return


PROBE_SIDE = 192
"""Side of the square picture :func:`measure_rate` times (about 0.4 s a step on the 2-core CPU)."""
_rates: dict[tuple[Any, ...], float] = {}


def random_weights(structure: VGGWeights, seed: int = 0) -> VGGWeights:
    """Weights of ``structure``'s shapes with random values (He-scaled, so activations neither vanish into
    slow denormal floats nor overflow): a network that takes as long as the real one and is never read
    from a file."""
    g = torch.Generator().manual_seed(seed)
    convs = [(torch.randn(tuple(w.shape), generator=g) * math.sqrt(2.0 / (w.shape[1] * w.shape[2] * w.shape[3])),
              torch.zeros(tuple(b.shape))) for w, b in structure.convs]
    return VGGWeights(structure.arch, convs, structure.preprocess, f"random values of {structure.source}")


def measure_rate(config: Config, structure: VGGWeights, *, side: int = PROBE_SIDE) -> float:
    """Seconds per step per megapixel of ``config``'s objective on its device, measured here and now.

    Three one-scale steps of a ``side`` x ``side`` picture of random pixels are run with ``config``'s
    losses, layers and optimiser on a network of ``structure``'s shapes with random values
    (:func:`random_weights`; a convolution's time does not depend on its values), with one L-BFGS
    evaluation per step; the last two are timed (the first pays for setting up kernels), and a step of
    ``config`` costs :func:`~impasto.tiling.cost.evaluations_per_step` of them. Work is linear
    in the pixels, so the rate prices any size; the probe's fixed per-step costs make it err on the slow
    side for large pictures. Cached per process by what the time depends on."""
    device = resolve_device(config.device)
    probe = config.replace(
        size=side, start_size=None, steps=3, scale_steps=None, quality="standard", lbfgs_max_iter=1,
        lbfgs_line_search=False, max_memory=None, devices=(), mask=None, regions=(), tol=None, init="content",
        weights=None, seed=0, style_blend_weights=None, recompute_activations="off",
    )
    timed = ("content_layers", "style_layers", "pooling", "style_kind", "optimizer", "lbfgs_history",
             "preserve_color", "normalize_gradients", "ema", "clamp", "balance")
    key = (device.type, device.index, structure.arch, tuple(tuple(w.shape) for w, _ in structure.convs),
           *(repr(getattr(probe, f)) for f in timed))
    if key not in _rates:
        pixels = torch.rand((2, 3, side, side), generator=torch.Generator().manual_seed(0))
        st = StyleTransfer(pixels[0], [pixels[1]], probe, weights=random_weights(structure))
        times = [ev.elapsed for ev in st.run() if not ev.done]
        _rates[key] = (times[-1] - times[0]) / (len(times) - 1) / (side * side / 1e6)
    return _rates[key] * evaluations_per_step(config)


def stylize_iter(
    content: ImageLike,
    styles: Sequence[ImageLike] | ImageLike,
    config: Config | None = None,
    *,
    image_every: int = 0,
    weights: VGGWeights | None = None,
) -> Iterator[Progress]:
    """Run style transfer, yielding a :class:`Progress` per step; the last event has the result."""
    style_list: list[ImageLike] = list(styles) if isinstance(styles, (list, tuple)) else [styles]  # type: ignore[list-item]
    yield from StyleTransfer(content, style_list, config, weights=weights).run(image_every)


def stylize(
    content: ImageLike,
    styles: Sequence[ImageLike] | ImageLike,
    config: Config | None = None,
    *,
    weights: VGGWeights | None = None,
) -> Tensor:
    """Run style transfer to the end and return the image, [3, H, W] RGB in [0, 1]."""
    result: Tensor | None = None
    for ev in stylize_iter(content, styles, config, weights=weights):
        if ev.done:
            result = ev.image
    assert result is not None
    return result


__all__ = ["ImageLike", "Progress", "StyleTransfer", "as_rgb", "measure_rate", "random_weights", "resolve_device",
           "stylize", "stylize_iter"]

