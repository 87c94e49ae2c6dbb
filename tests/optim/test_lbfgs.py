"""The compact L-BFGS gives torch.optim.LBFGS(max_iter=1)'s iterates; the loss evaluator's gradients."""

from __future__ import annotations

import pytest
import torch

from impasto.optim.evaluator import LossEvaluator
from impasto.optim.lbfgs import CompactLBFGS, TwoLoopLBFGS


def _problem() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(80, 50, generator=gen, dtype=torch.float64)
    b = torch.randn(80, generator=gen, dtype=torch.float64)
    return a, b


def _f(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # Smooth, non-quadratic, bounded below: the curvature pairs change from step to step.
    return torch.log(torch.cosh(a @ x.reshape(-1) - b)).sum() + 0.05 * (x**2).sum() + 0.01 * (x**4).sum()


@pytest.mark.parametrize("kind", [CompactLBFGS, TwoLoopLBFGS])
@pytest.mark.parametrize("history", [1, 3, 100])
def test_same_iterates_as_torch_lbfgs(history: int, kind: type) -> None:
    a, b = _problem()
    x1 = torch.zeros(1, 1, 5, 10, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    ref = torch.optim.LBFGS([x1], lr=1.0, max_iter=1, history_size=history, tolerance_grad=0.0,
                            tolerance_change=0.0)
    opt = kind(x2, lr=1.0, history_size=history)
    for _ in range(40):  # well past the history size: the ring buffer wraps and grows

        def c1() -> torch.Tensor:
            ref.zero_grad()
            loss = _f(x1, a, b)
            loss.backward()
            return loss

        def c2() -> torch.Tensor:
            opt.zero_grad()
            loss = _f(x2, a, b)
            loss.backward()
            return loss

        l1, l2 = ref.step(c1), opt.step(c2)
        assert l1.item() == pytest.approx(l2.item(), rel=1e-12, abs=1e-12)
    assert float((x1 - x2).abs().max()) < 1e-10
    assert float(_f(x2, a, b)) < float(_f(torch.zeros(50, dtype=torch.float64), a, b)) - 1.0


@pytest.mark.parametrize("kind", [CompactLBFGS, TwoLoopLBFGS])
def test_rejected_pairs_match_torch_on_a_nonconvex_problem(kind: type) -> None:
    """Where sᵀy <= 1e-10 torch skips the pair; the device-side bookkeeping must skip the same ones."""
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(60, 30, generator=gen, dtype=torch.float64)
    b = torch.randn(60, generator=gen, dtype=torch.float64)

    def f(x: torch.Tensor) -> torch.Tensor:
        return (2 * torch.sin(a @ x - b)).sum() + 0.05 * (x**2).sum() + 0.002 * (x**4).sum()

    x1 = torch.zeros(30, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    ref = torch.optim.LBFGS([x1], lr=0.5, max_iter=1, history_size=100, tolerance_grad=0.0, tolerance_change=0.0)
    opt = kind(x2, lr=0.5, history_size=100)
    for _ in range(60):
        for o, x in ((ref, x1), (opt, x2)):

            def closure(o: torch.optim.Optimizer = o, x: torch.Tensor = x) -> torch.Tensor:
                o.zero_grad()
                loss = f(x)
                loss.backward()
                return loss

            o.step(closure)
    kept = len(ref.state[x1]["old_dirs"])
    assert kept < 59  # some pairs were rejected: the test exercises that path
    assert opt.pairs == kept
    assert float((x1 - x2).abs().max()) < 1e-9


@pytest.mark.parametrize("kind", [CompactLBFGS, TwoLoopLBFGS])
def test_first_step_matches_torch_scaling_and_zero_gradient_is_harmless(kind: type) -> None:
    x = torch.tensor([3.0, -4.0], requires_grad=True)
    opt = kind(x, lr=0.5, history_size=5)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (x**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    # g = (6, -8), |g|_1 = 14: step min(1, 1/14) * 0.5 along -g.
    assert torch.allclose(x.detach(), torch.tensor([3.0 - 6 / 28, -4.0 + 8 / 28]))
    y = torch.zeros(3, requires_grad=True)
    opt2 = kind(y, history_size=2)
    for _ in range(3):
        opt2.step(lambda: (y * 0.0).sum().requires_grad_())
    assert torch.equal(y.detach(), torch.zeros(3))


@pytest.mark.parametrize("kind", [CompactLBFGS, TwoLoopLBFGS])
def test_rejects_bad_arguments(kind: type) -> None:
    with pytest.raises(ValueError):
        kind(torch.zeros(4, 4).t().requires_grad_(True))
    with pytest.raises(ValueError):
        kind(torch.zeros(3, requires_grad=True), history_size=0)


def test_engine_default_path_does_not_import_torch_optim_machinery(
    small_images: tuple, tiny_weights: object  # type: ignore[type-arg]
) -> None:
    """A default L-BFGS run builds no torch.optim optimizer, whose constructor imports torch._dynamo."""
    from impasto.config import Config
    from impasto.engine import StyleTransfer

    content, style = small_images
    st = StyleTransfer(content, [style], Config(size=32, start_size=None, steps=2, device="cpu"),
                       weights=tiny_weights())  # type: ignore[operator]
    built: list[object] = []
    real = torch.optim.Optimizer.__init__

    def spy(self: torch.optim.Optimizer, *a: object, **k: object) -> None:
        built.append(self)
        real(self, *a, **k)  # type: ignore[arg-type]

    torch.optim.Optimizer.__init__ = spy  # type: ignore[method-assign]
    try:
        events = list(st.run())
    finally:
        torch.optim.Optimizer.__init__ = real  # type: ignore[method-assign]
    assert built == [] and events[-1].done
    assert events[1].loss < events[0].loss  # and it optimised


def test_loss_evaluator_sets_not_accumulates_gradients() -> None:
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    ev = LossEvaluator(lambda p: [(p**2).sum(), p.sum()], x)
    assert not ev.use_graph  # CPU tensors run eagerly
    for _ in range(3):
        outs = ev()
        assert [float(o) for o in outs] == [5.0, 3.0]
        assert x.grad is not None and x.grad.tolist() == [2.0, 4.0]


def _run_tiny_unit_quadratic(kind: type, first_step: float | None, steps: int = 8) -> list[float]:
    """A quadratic in 0-255 pixel units whose loss is of order 1, like the relative balance's: its
    gradient is about 4e-5 per pixel, so torch's first step (g itself, as ‖g‖₁ < 1) yields a pair with
    sᵀy ≈ 4e-13, which is never stored."""
    gen = torch.Generator().manual_seed(2)
    target = torch.rand(1, 3, 16, 16, generator=gen) * 255.0
    x = (torch.rand(1, 3, 16, 16, generator=gen) * 255.0).requires_grad_(True)
    opt = kind(x, lr=1.0, history_size=10, first_step=first_step)
    losses = []
    for _ in range(steps):

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = ((x - target) ** 2).sum() / (target**2).sum() * 3.0
            loss.backward()
            return loss

        losses.append(float(opt.step(closure).detach()))
    return losses


@pytest.mark.parametrize("kind", [CompactLBFGS, TwoLoopLBFGS])
def test_torch_first_step_stalls_a_loss_of_small_unit_and_first_step_does_not(kind: type) -> None:
    stalled = _run_tiny_unit_quadratic(kind, None)
    assert stalled[-1] == pytest.approx(stalled[0], rel=1e-5)  # no curvature pair is ever stored
    moving = _run_tiny_unit_quadratic(kind, 2.55)
    assert moving[0] == stalled[0] and moving[-1] < 1e-3 * moving[0]  # a quadratic: L-BFGS solves it


@pytest.mark.parametrize("kind", [CompactLBFGS, TwoLoopLBFGS])
def test_first_step_moves_the_pixels_by_that_rms(kind: type) -> None:
    x = torch.linspace(0, 255, 300).reshape(1, 3, 10, 10).contiguous().requires_grad_(True)
    before = x.detach().clone()
    opt = kind(x, lr=1.0, history_size=5, first_step=2.55)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = 1e-9 * (x**3).sum()
        loss.backward()
        return loss

    opt.step(closure)
    move = x.detach() - before
    assert float(move.pow(2).mean().sqrt()) == pytest.approx(2.55, rel=1e-5)
    assert bool((move <= 0).all())  # along -g (the gradient 3e-9·x² is positive)
