"""Named step hooks: what the engine does around each optimiser step besides the step itself.

Each is optional (``None`` in :class:`~impasto.optim.hooks.StepHooks` when its field is off), holds
its own state and can save and restore it, so a run's state is the sum of its parts:

- :class:`TrustRegion`: shrink an L-BFGS step whose RMS pixel change exceeds a limit.
- :class:`DivergenceGuard`: go back to the lowest-loss pixels when the loss jumps or is not finite.
- :class:`IterateAverage`: the exponential moving average of the iterates (``ema``).
- :class:`ToleranceStop`: stop a scale once the pixels barely move.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from impasto.errors import ImpastoError


class ScalesLastStep(Protocol):
    def scale_last_step(self, factor: Tensor) -> None: ...


class TrustRegion:
    """Shrink the step just taken so its RMS pixel change is at most ``limit`` (pixel_scale units).

    L-BFGS stores s = t·d for its next curvature pair, so the step length t it remembers is scaled by
    the same factor as the move: the history stays consistent with where the pixels really went.
    Without a line search, L-BFGS's first steps at a new scale can be wild (RMS changes of 100/255 were
    measured right after an upsampling); healthy steps are 1-5/255.
    """

    def __init__(self, limit: float) -> None:
        self.limit = limit

    def apply(self, opt: ScalesLastStep | torch.optim.Optimizer, x: Tensor, before: Tensor) -> None:
        with torch.no_grad():
            delta = x - before
            factor = torch.clamp(self.limit / (delta.pow(2).mean().sqrt() + 1e-12), max=1.0)
            x.copy_(before + delta * factor)
            if isinstance(opt, torch.optim.Optimizer):
                state = opt.state[x]
                if "t" in state:  # torch.optim.LBFGS
                    state["t"] = float(state["t"]) * float(factor)
            else:
                opt.scale_last_step(factor)


class DivergenceGuard:
    """Keep this scale's lowest-loss pixels on the device; restart from them after a jump.

    A step whose loss is not finite, or above ``factor`` × the lowest loss of the scale, sends the
    pixels back to that image and the engine starts its optimiser again with an empty history, at most
    ``max_restarts`` times per run. torch's L-BFGS without a line search can leave a good basin in one
    step (pytorch-stylecnn on an H100 jumped 3.4e7-fold); healthy runs jump too (gatys from noise rises
    45-fold at step 8 and recovers), hence a factor of 1000, not 10.
    """

    def __init__(self, factor: float, max_restarts: int) -> None:
        self.factor = factor
        self.max_restarts = max_restarts
        self.restarts = 0
        self.best_x: Tensor | None = None
        self.best_loss: Tensor | None = None

    def begin_scale(self, x: Tensor) -> None:
        self.best_loss = torch.full((), math.inf, device=x.device)
        self.best_x = x.detach().clone()

    def observe(self, loss: Tensor, x: Tensor) -> None:
        """Inside the loss evaluation: remember ``x`` if its loss is the lowest (no host sync)."""
        assert self.best_x is not None and self.best_loss is not None
        better = loss < self.best_loss  # False for NaN
        self.best_x.copy_(torch.where(better, x.detach(), self.best_x))
        self.best_loss.copy_(torch.where(better, loss, self.best_loss))

    def should_restart(self, loss: float, lowest: float, step: int) -> bool:
        if math.isfinite(loss) and loss <= self.factor * lowest:
            return False
        self.restarts += 1
        if self.restarts > self.max_restarts or not math.isfinite(lowest):
            raise ImpastoError(
                f"the loss diverged ({loss:.3g} at step {step}) after {self.restarts - 1} restarts: "
                "lower the learning rate or the weights"
            )
        return True

    def restore(self, x: Tensor) -> None:
        assert self.best_x is not None
        with torch.no_grad():
            x.copy_(self.best_x)

    def state_dict(self) -> dict[str, Any]:
        return {"restarts": self.restarts, "best_x": self.best_x, "best_loss": self.best_loss}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.restarts = int(state["restarts"])
        self.best_x = state["best_x"].to(device)
        self.best_loss = state["best_loss"].to(device)


class IterateAverage:
    """Bias-corrected exponential moving average of one scale's iterates (not its starting image), as
    Adam's moment estimates: avg_t = Σ (1-d) d^(t-i) x_i / (1 - d^t)."""

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self._sum: Tensor | None = None
        self._norm = 0.0
        self.value: Tensor | None = None

    def begin_scale(self) -> None:
        self._sum, self._norm, self.value = None, 0.0, None

    def update(self, x: Tensor) -> None:
        with torch.no_grad():
            d = self.decay
            self._sum = x.detach() * (1 - d) if self._sum is None else self._sum * d + x.detach() * (1 - d)
            self._norm = self._norm * d + (1 - d)
            self.value = self._sum / self._norm

    def state_dict(self) -> dict[str, Any]:
        return {"sum": self._sum, "norm": self._norm, "value": self.value}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self._sum = None if state["sum"] is None else state["sum"].to(device)
        self._norm = float(state["norm"])
        self.value = None if state["value"] is None else state["value"].to(device)


class ToleranceStop:
    """Stop a scale when the mean absolute pixel change per step (0-255 units, whatever pixel_scale
    is), averaged over the last ``window`` steps, falls below ``tol``."""

    def __init__(self, tol: float, window: int, pixel_scale: float) -> None:
        self.tol = tol
        self.window = window
        self.pixel_scale = pixel_scale
        self.changes: list[float] = []

    def begin_scale(self) -> None:
        self.changes = []

    def record(self, x: Tensor, before: Tensor) -> None:
        with torch.no_grad():
            self.changes.append(float((x.detach() - before).abs().mean()) * 255.0 / self.pixel_scale)

    def reason(self, size: tuple[int, int]) -> str | None:
        """Why the scale should stop now, or None."""
        if len(self.changes) < self.window:
            return None
        recent = sum(self.changes[-self.window:]) / self.window
        if recent >= self.tol:
            return None
        return (f"tol: mean pixel change {recent:.3g} < {self.tol:g} over the last "
                f"{self.window} steps at {size[1]}x{size[0]}")

    def state_dict(self) -> dict[str, Any]:
        return {"changes": list(self.changes)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.changes = [float(c) for c in state["changes"]]


@dataclass
class StepHooks:
    """The hooks one run uses (None: that feature is off)."""

    trust: TrustRegion | None
    guard: DivergenceGuard | None
    average: IterateAverage | None
    tolerance: ToleranceStop | None

    @property
    def needs_before(self) -> bool:
        """Whether the pixels before a step must be kept (trust region, tolerance)."""
        return self.trust is not None or self.tolerance is not None

    def begin_scale(self, x: Tensor) -> None:
        if self.guard is not None:
            self.guard.begin_scale(x)
        if self.average is not None:
            self.average.begin_scale()
        if self.tolerance is not None:
            self.tolerance.begin_scale()

    def state_dict(self) -> dict[str, Any]:
        return {
            "guard": None if self.guard is None else self.guard.state_dict(),
            "average": None if self.average is None else self.average.state_dict(),
            "tolerance": None if self.tolerance is None else self.tolerance.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        if self.guard is not None:
            self.guard.load_state_dict(state["guard"], device)
        if self.average is not None:
            self.average.load_state_dict(state["average"], device)
        if self.tolerance is not None:
            self.tolerance.load_state_dict(state["tolerance"])
