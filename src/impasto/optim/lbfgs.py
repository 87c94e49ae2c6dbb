"""L-BFGS without ``torch.optim``: the iterates of ``torch.optim.LBFGS(max_iter=1)``, two ways.

:class:`CompactLBFGS` (CUDA) computes them in compact form without a single host sync;
:class:`TwoLoopLBFGS` (CPU) is torch's own two-loop recursion. Neither subclasses
``torch.optim.Optimizer``: constructing any ``torch.optim`` optimizer imports ``torch._dynamo`` (via
``torch._compile``), a one-off 2.6 s on this project's CPU machine and 7 s on the H100 machine, which
was most of a fresh process's first step. The engine still uses ``torch.optim.LBFGS`` for line
searches and ``max_iter > 1`` (presets), and ``torch.optim.Adam``.

Compact form
------------

``torch.optim.LBFGS`` computes the search direction with the two-loop recursion: for each of up to
``history_size`` stored pairs it takes a dot product and then calls ``add_(..., alpha=tensor)``, which
reads the scalar back to the host. With the default history of 100 that is about 200 host-device
round trips and 400 small kernels per step. On a GPU that overhead, not the network, set the step time
(about 9 ms/step at both 256 and 512 px on an H100).

Here the same product ``H·g`` of the L-BFGS inverse-Hessian approximation is computed in the compact
representation of Byrd, Nocedal and Schnabel (1994), as in Nocedal and Wright, *Numerical
Optimization*, eq. (7.24)::

    H = γI + [S  γY] · | R⁻ᵀ(D + γYᵀY)R⁻¹   −R⁻ᵀ | · | Sᵀ  |
                       | −R⁻¹                 0   |   | γYᵀ |

where the columns of S and Y are the stored steps s_i and gradient changes y_i (oldest first), R is the
upper triangle of SᵀY, D its diagonal and γ = sᵀy / yᵀy of the newest pair (torch's ``H_diag``). In
exact arithmetic this is the two-loop recursion's result. The history lives in one buffer whose rows
interleave s_i and y_i, so one matrix product gives every inner product a step needs and one more
product applies the correction: two passes over the history per step, whatever the history size. The
small (history × history) algebra runs in float64.

No step reads anything back to the host. Whether the newest pair is kept (sᵀy > 1e-10), where the ring
buffer's oldest pair is, how many pairs are valid and γ all live on the device; pairs that are not
valid yet are masked out of the small system (identity rows in R, zeros elsewhere) rather than sliced
away, so every shape is known on the host. The host can then queue step after step without waiting for
the GPU, which on an H100 at 512 px was 1.9 of 6.8 ms per step of idle GPU with the earlier version
(three host round trips per step). The only thing the host tracks is an upper bound on the number of
pairs (one per step), to grow the buffer by doubling rather than allocating the whole history at once.

Only what the engine uses is implemented: one iteration per ``step`` (``max_iter=1``), no line search,
tolerances of zero. Everything else about the iterates follows torch: the first step is
``min(1, 1/‖g‖₁)·lr`` along −g, later steps are ``lr`` along −H·g, a pair is stored only when
sᵀy > 1e-10, the oldest pair is dropped when the history is full, and no move is made along a direction
that is not a descent direction.

The first step, optionally
--------------------------

torch's first step depends on the loss's unit: ``min(1, 1/‖g‖₁)`` moves the pixels by 1 in L1 norm
over the whole image, or by g itself when ‖g‖₁ < 1. With a loss of order 10 (the relative balance) and
pixels in 0-255, g is about 1e-5 per pixel: the step is below float32's resolution of the pixel values,
the pair it yields has sᵀy far below 1e-10 and is never stored, so every later step is the same
negligible gradient step and the run stalls for good (measured: a 512 px scale whose loss did not move
in 25 steps). ``first_step`` (the RMS pixel change of the first step, in the units of x) replaces it:
t = first_step / RMS(g), the same move whatever the loss's unit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def _check(x: Tensor, history_size: int) -> None:
    if not x.is_contiguous():
        raise ValueError("L-BFGS here needs a contiguous tensor")
    if history_size < 1:
        raise ValueError("history_size must be >= 1")


def _flat_grad(x: Tensor) -> Tensor:
    return torch.zeros_like(x).reshape(-1) if x.grad is None else x.grad.reshape(-1)


class CompactLBFGS:
    """Drop-in for ``torch.optim.LBFGS([x], lr, max_iter=1, history_size, tolerance_grad=0,
    tolerance_change=0)`` on a single contiguous tensor ``x``."""

    def __init__(self, x: Tensor, lr: float = 1.0, history_size: int = 100, first_step: float | None = None) -> None:
        _check(x, history_size)
        self.x = x
        self.lr = float(lr)
        self.history_size = history_size
        self.first_step = first_step
        dev = x.device
        m = history_size
        self._buf: Tensor | None = None
        """[capacity, 2, n]: slot i holds s_i then y_i (zeros until first written)."""
        self._cap = 0
        self._sy = torch.zeros(m, m, dtype=torch.float64, device=dev)
        """_sy[i, j] = s_i · y_j by slot."""
        self._yy = torch.zeros(m, m, dtype=torch.float64, device=dev)
        self._count = torch.zeros((), dtype=torch.long, device=dev)
        """Number of stored pairs (device scalar)."""
        self._head = torch.zeros((), dtype=torch.long, device=dev)
        """Slot of the oldest pair; moves only once the history is full (device scalar)."""
        self._gamma = torch.ones((), dtype=torch.float64, device=dev)
        self._arange = torch.arange(m, device=dev)
        self._n_iter = 0
        self._prev_g: Tensor | None = None
        self._d: Tensor | None = None
        self._t: Tensor | None = None

    def _grow(self, pairs_bound: int, n: int) -> None:
        """Make room for ``pairs_bound`` pairs. Until the history is full the ring has not wrapped
        (the head is slot 0), so copying the old slots to the front keeps every slot index."""
        need = min(pairs_bound, self.history_size)
        if need <= self._cap:
            return
        new_cap = min(self.history_size, max(8, 2 * self._cap, need))
        buf = self.x.new_zeros((new_cap, 2, n))
        if self._buf is not None:
            buf[: self._cap].copy_(self._buf)
        self._buf, self._cap = buf, new_cap

    @torch.no_grad()
    def _direction(self, g: Tensor) -> Tensor:
        """−H·g for the flat gradient ``g``, updating the history with the last step first."""
        assert self._prev_g is not None and self._d is not None and self._t is not None
        m = self.history_size
        # At most one pair per step after the first: n_iter - 1 pairs after this one is stored.
        self._grow(self._n_iter - 1, g.numel())
        assert self._buf is not None
        cap = self._cap
        y = g - self._prev_g
        s = self._d * self._t
        ys, yy = torch.dot(y, s).double(), torch.dot(y, y).double()
        accept = ys > 1e-10
        # The next free slot, or the oldest one when full ((head + m) % m = head).
        slot = ((self._head + self._count) % m).view(1)
        pair = torch.stack([s, y]).unsqueeze(0)
        self._buf.index_copy_(0, slot, torch.where(accept, pair, self._buf.index_select(0, slot)))
        self._head = torch.where(accept & (self._count == m), (self._head + 1) % m, self._head)
        self._count = torch.clamp(self._count + accept.long(), max=m)
        self._gamma = torch.where(accept, ys / yy, self._gamma)

        hist = self._buf.reshape(2 * cap, -1)
        prods = (hist @ torch.stack([g, y, s], dim=1)).double()  # one pass: every inner product needed
        s_g, y_g = prods[0::2, 0], prods[1::2, 0]
        s_y, y_y, y_s = prods[0::2, 1:2], prods[1::2, 1:2], prods[1::2, 2:3]
        # New column and row of SᵀY and YᵀY for the slot just written (kept as they were if rejected).
        sy, yym = self._sy[:cap, :cap], self._yy[:cap, :cap]
        sy.index_copy_(1, slot, torch.where(accept, s_y, sy.index_select(1, slot)))
        sy.index_copy_(0, slot, torch.where(accept, y_s.T, sy.index_select(0, slot)))
        yym.index_copy_(1, slot, torch.where(accept, y_y, yym.index_select(1, slot)))
        yym.index_copy_(0, slot, torch.where(accept, y_y.T, yym.index_select(0, slot)))

        # Oldest first; the first `count` entries in this order are the valid pairs.
        ar = self._arange[:cap]
        idx = (self._head + ar) % m
        valid = (ar < self._count).double()
        both = valid[:, None] * valid[None, :]
        sy_c = sy[idx][:, idx]
        r = torch.triu(sy_c) * both + torch.diag(1.0 - valid)  # identity rows for empty slots
        dg = torch.diagonal(sy_c) * valid
        yy_c = yym[idx][:, idx] * both
        gamma = self._gamma
        u, w = s_g[idx] * valid, y_g[idx] * valid
        r_inv_u = torch.linalg.solve_triangular(r, u.unsqueeze(1), upper=True).squeeze(1)
        rhs = dg * r_inv_u + gamma * (yy_c @ r_inv_u) - gamma * w
        top = torch.linalg.solve_triangular(r.T, rhs.unsqueeze(1), upper=False).squeeze(1)
        coef = torch.zeros(cap, 2, dtype=torch.float64, device=g.device)
        coef[:, 0].index_copy_(0, idx, top)  # back from chronological order to slots
        coef[:, 1].index_copy_(0, idx, -gamma * r_inv_u)
        # Second pass: γg + S·top + γY·bottom (empty slots have zero coefficients).
        hg = torch.addmv(g * gamma.to(g.dtype), hist.T, coef.reshape(-1).to(g.dtype))
        return -hg

    def zero_grad(self) -> None:
        self.x.grad = None

    def scale_last_step(self, factor: Tensor) -> None:
        """The step just taken was shrunk by ``factor``: remember the step length that was really used
        (s = t·d is the next curvature pair). Stays on the device."""
        assert self._t is not None
        self._t = self._t * factor

    def release(self) -> None:
        """Drop the history (2·history_size image-sized vectors)."""
        self._buf, self._cap, self._prev_g, self._d = None, 0, None, None

    @property
    def pairs(self) -> int:
        """Curvature pairs stored now (reads a device scalar back)."""
        return int(self._count)

    _STATE = ("_buf", "_cap", "_sy", "_yy", "_count", "_head", "_gamma", "_n_iter", "_prev_g", "_d", "_t")

    def state_dict(self) -> dict[str, Any]:
        """Everything the next step depends on (tensors are the live ones: save or clone them)."""
        return {k: getattr(self, k) for k in self._STATE}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k in self._STATE:
            v = state[k]
            setattr(self, k, v.to(self.x.device) if isinstance(v, Tensor) else v)

    def step(self, closure: Callable[[], Tensor]) -> Tensor:
        with torch.enable_grad():
            loss = closure()
        with torch.no_grad():
            g = _flat_grad(self.x)
            self._n_iter += 1
            if self._n_iter == 1:
                d = -g
                t = (self.first_step / g.pow(2).mean().sqrt().clamp_min(1e-30) if self.first_step is not None
                     else torch.clamp(1.0 / g.abs().sum(), max=1.0) * self.lr)
            else:
                d = self._direction(g)
                t = torch.full((), self.lr, dtype=g.dtype, device=g.device)
            # torch stops (no move) when g·d > 0; a zero step keeps that without a host sync.
            t = torch.where(torch.dot(g, d) > 0, torch.zeros_like(t), t)
            self.x.view(-1).add_(d * t)
            self._prev_g = g.clone()
            self._d, self._t = d, t
        return loss


class TwoLoopLBFGS:
    """``torch.optim.LBFGS([x], lr, max_iter=1, history_size, tolerance_grad=0, tolerance_change=0)``,
    the same two-loop recursion and the same float arithmetic, as a plain class (see the module
    docstring for why). Each dot product is read back to the host, which costs nothing on a CPU."""

    def __init__(self, x: Tensor, lr: float = 1.0, history_size: int = 100, first_step: float | None = None) -> None:
        _check(x, history_size)
        self.x = x
        self.lr = float(lr)
        self.history_size = history_size
        self.first_step = first_step
        self._ys: list[Tensor] = []
        """Gradient changes y_i, oldest first (torch's ``old_dirs``)."""
        self._ss: list[Tensor] = []
        """Steps s_i (torch's ``old_stps``)."""
        self._ro: list[Tensor] = []
        self._h_diag: Tensor | float = 1.0
        self._n_iter = 0
        self._prev_g: Tensor | None = None
        self._d: Tensor | None = None
        self._t: Tensor | float = 0.0

    def zero_grad(self) -> None:
        self.x.grad = None

    def scale_last_step(self, factor: Tensor) -> None:
        self._t = self._t * float(factor)

    def release(self) -> None:
        self._ys, self._ss, self._ro, self._prev_g, self._d = [], [], [], None, None

    @property
    def pairs(self) -> int:
        """Curvature pairs stored now."""
        return len(self._ys)

    _STATE = ("_ys", "_ss", "_ro", "_h_diag", "_n_iter", "_prev_g", "_d", "_t")

    def state_dict(self) -> dict[str, Any]:
        """Everything the next step depends on (tensors are the live ones: save or clone them)."""
        return {k: getattr(self, k) for k in self._STATE}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k in self._STATE:
            setattr(self, k, state[k])

    def step(self, closure: Callable[[], Tensor]) -> Tensor:
        with torch.enable_grad():
            loss = closure()
        with torch.no_grad():
            g = _flat_grad(self.x)
            if float(g.abs().max()) <= 0.0:  # torch: gradient at tolerance_grad = 0, no step
                return loss
            self._n_iter += 1
            if self._n_iter == 1:
                d = g.neg()
                self._ys, self._ss, self._ro, self._h_diag = [], [], [], 1.0
            else:
                assert self._prev_g is not None and self._d is not None
                y = g.sub(self._prev_g)
                s = self._d.mul(self._t)
                ys = y.dot(s)
                if ys > 1e-10:
                    if len(self._ys) == self.history_size:
                        self._ys.pop(0)
                        self._ss.pop(0)
                        self._ro.pop(0)
                    self._ys.append(y)
                    self._ss.append(s)
                    self._ro.append(1.0 / ys)
                    self._h_diag = ys / y.dot(y)
                k = len(self._ys)
                al: list[Tensor] = [g] * k  # placeholders, all overwritten below
                q = g.neg()
                for i in range(k - 1, -1, -1):
                    al[i] = self._ss[i].dot(q) * self._ro[i]
                    q.add_(self._ys[i], alpha=-float(al[i]))
                d = r = torch.mul(q, self._h_diag)
                for i in range(k):
                    be_i = self._ys[i].dot(r) * self._ro[i]
                    r.add_(self._ss[i], alpha=float(al[i] - be_i))
            self._prev_g = g.clone()
            t: Tensor | float = self.lr
            if self._n_iter == 1 and self.first_step is not None:
                t = self.first_step / float(g.pow(2).mean().sqrt())  # g is not all zero (checked above)
            elif self._n_iter == 1:
                inv = 1.0 / g.abs().sum()
                t = inv * self.lr if inv < 1.0 else self.lr  # torch: min(1, 1/|g|_1) * lr
            self._d, self._t = d, t
            if g.dot(d) > 0:  # torch: not a descent direction, no move
                return loss
            self.x.view(-1).add_(d, alpha=float(t))
        return loss
