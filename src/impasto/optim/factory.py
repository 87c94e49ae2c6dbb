"""Which optimiser a run uses, as one injectable function (the benchmark swaps in torch's own L-BFGS)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto.optim.lbfgs import CompactLBFGS, TwoLoopLBFGS

Optimizer = torch.optim.Optimizer | CompactLBFGS | TwoLoopLBFGS


@dataclass(frozen=True)
class OptimizerSpec:
    """What the optimiser needs to know, read once from the Config."""

    kind: str
    """``lbfgs`` or ``adam``."""
    lr: float
    history: int
    """L-BFGS pairs kept at this scale (already capped by the memory budget)."""
    line_search: bool = False
    max_iter: int = 1
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    first_step: float | None = None
    """Plain L-BFGS: RMS pixel change of the first step (None: torch's min(1, 1/‖g‖₁)·lr); see
    :mod:`impasto.optim.lbfgs`."""

    @property
    def plain_lbfgs(self) -> bool:
        """torch's ``LBFGS(max_iter=1)`` without a line search: what impasto's own L-BFGS classes do."""
        return self.kind == "lbfgs" and not self.line_search and self.max_iter == 1


OptimizerFactory = Callable[[Tensor, OptimizerSpec], Optimizer]
"""``factory(pixels, spec)`` -> an optimiser of ``pixels`` (a leaf tensor updated in place)."""


def make_optimizer(x: Tensor, spec: OptimizerSpec) -> Optimizer:
    """The default factory.

    torch's LBFGS(max_iter=1) iterates without torch.optim (whose constructor imports torch._dynamo:
    seconds per process). On CUDA in compact form: two passes over the history and no host sync instead
    of ~200 syncs per step (see :mod:`impasto.optim.lbfgs`). Elsewhere the two-loop recursion: the
    compact form's float32 inner products are less stable (a masked 32 px test diverged on the CPU), and
    on a CPU the syncs cost nothing. A line search, or ``max_iter > 1`` (write-ups that count torch's
    outer step() calls, each running up to 20 inner iterations), uses torch's own class.
    """
    if spec.plain_lbfgs:
        if x.is_cuda:
            return CompactLBFGS(x, lr=spec.lr, history_size=spec.history, first_step=spec.first_step)
        return TwoLoopLBFGS(x, lr=spec.lr, history_size=spec.history, first_step=spec.first_step)
    if spec.kind == "lbfgs":
        return torch.optim.LBFGS(
            [x], lr=spec.lr, max_iter=spec.max_iter, history_size=spec.history,
            line_search_fn="strong_wolfe" if spec.line_search else None,
            tolerance_grad=0.0, tolerance_change=0.0,
        )
    return torch.optim.Adam([x], lr=spec.lr, betas=spec.adam_betas, eps=spec.adam_eps)


def carry_adam_state(opt: Optimizer, x: Tensor, previous: dict[str, Tensor], size: tuple[int, int]) -> None:
    """Start Adam at a new scale with the previous scale's moment estimates resized with the pixels, so
    the per-pixel step sizes it has learnt are not thrown away at each new scale."""
    if not isinstance(opt, torch.optim.Adam):
        return
    st: dict[str, Tensor] = {}
    for k, v in previous.items():
        if v.ndim == 4:
            v = F.interpolate(v, size=size, mode="bilinear", align_corners=False)
            if k == "exp_avg_sq":
                v = v.clamp_min(0.0)
        st[k] = v.contiguous()
    opt.state[x] = st


def adam_state(opt: Optimizer, x: Tensor) -> dict[str, Tensor] | None:
    """Adam's per-pixel moments at the end of a scale (None for other optimisers)."""
    if isinstance(opt, torch.optim.Adam):
        return {k: v for k, v in opt.state[x].items() if isinstance(v, Tensor)}
    return None


def release(opt: Optimizer) -> None:
    """Free an optimiser's state (L-BFGS keeps 2·history image-sized vectors) before the next scale
    allocates its own: peak memory is the largest scale's."""
    if isinstance(opt, (CompactLBFGS, TwoLoopLBFGS)):
        opt.release()
    else:
        opt.state.clear()
