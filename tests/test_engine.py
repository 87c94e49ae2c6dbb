"""The optimisation loop: events, reproducibility, initialisations, and real stylisation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from impasto import losses
from impasto.config import Config
from impasto.engine import StyleTransfer, stylize, stylize_iter
from impasto.errors import ImpastoError
from impasto.inputs import IMAGENET_MEAN_RGB, as_rgb
from impasto.io.images import load_image, resize_to
from impasto.objective import LossTerms
from impasto.optim import make_optimizer
from impasto.vgg.features import VGGFeatures
from impasto.vgg.weights import VGGWeights
from impasto_test_support import spy_objective

TINY = Config(size=32, start_size=None, steps=3, device="cpu")


def test_events_and_final_image(small_images: tuple[Path, Path], tiny_weights: Callable[..., VGGWeights]) -> None:
    content, style = small_images
    events = list(stylize_iter(content, style, TINY, image_every=2, weights=tiny_weights()))
    steps = [e for e in events if not e.done]
    assert [e.step for e in steps] == [1, 2, 3]
    assert events[-1].done and events[-1].stop_reason == "steps"
    assert [e.image is not None for e in steps] == [False, True, False]
    final = events[-1].image
    assert final is not None and final.shape == (3, 24, 32)
    assert 0.0 <= float(final.min()) and float(final.max()) <= 1.0
    for e in steps:
        assert e.loss == pytest.approx(e.content + e.style + e.tv, rel=1e-5)
        assert set(e.terms) == {"content/relu4_2"} | {f"style/relu{i}_1" for i in range(1, 5)}
        assert e.size == (24, 32) and e.total_steps == 3


def test_seed_makes_runs_reproducible(
    small_images: tuple[Path, Path], tiny_weights: Callable[..., VGGWeights]
) -> None:
    content, style = small_images
    cfg = TINY.replace(init="noise", optimizer="adam")
    a = stylize(content, style, cfg, weights=tiny_weights())
    b = stylize(content, style, cfg, weights=tiny_weights())
    c = stylize(content, style, cfg.replace(seed=1), weights=tiny_weights())
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_initialisations(small_images: tuple[Path, Path], tiny_weights: Callable[..., VGGWeights]) -> None:
    content, style = small_images
    c = resize_to(load_image(content).rgb, (24, 32))
    w = tiny_weights()

    def start(**kw: object) -> torch.Tensor:
        return StyleTransfer(content, [style], TINY.replace(**kw), weights=w).current_image()

    assert torch.equal(start(init="content"), c)
    assert torch.equal(start(init="white"), torch.ones(3, 24, 32))
    noise = start(init="noise", noise="uniform", noise_scale=0.05)
    mean = torch.tensor(IMAGENET_MEAN_RGB).view(3, 1, 1)
    assert (noise - mean).abs().max() <= 0.05 + 1e-6
    assert noise.std() > 0.01
    blend = start(init="blend", noise="uniform", noise_scale=0.05, noise_ratio=0.6)
    torch.testing.assert_close(blend, (0.6 * noise + 0.4 * c).clamp(0, 1))
    g = start(init="noise", noise="gaussian", noise_scale=0.1, noise_mean=0.5, clamp=False)
    assert abs(float(g.mean()) - 0.5) < 0.02 and abs(float(g.std()) - 0.1) < 0.02
    from_file = start(init="file", init_file=str(style))
    torch.testing.assert_close(from_file, resize_to(load_image(style).rgb, (24, 32)))


def test_coarse_to_fine_scales(small_images: tuple[Path, Path], tiny_weights: Callable[..., VGGWeights]) -> None:
    content, style = small_images
    cfg = TINY.replace(size=64, start_size=32, scale_factor=2.0, steps=2, optimizer="adam")
    events = [e for e in stylize_iter(content, style, cfg, weights=tiny_weights()) if not e.done]
    assert [e.size for e in events] == [(24, 32), (24, 32), (48, 64), (48, 64)]
    assert [e.scale for e in events] == [0, 0, 1, 1] and events[-1].step == 4


def test_bad_inputs(small_images: tuple[Path, Path], tiny_weights: Callable[..., VGGWeights]) -> None:
    content, style = small_images
    with pytest.raises(ImpastoError):
        StyleTransfer(content, [style], TINY.replace(style_layers=("relu9_1",)), weights=tiny_weights())
    with pytest.raises(ImpastoError):
        StyleTransfer(content, [style], TINY.replace(style_blend_weights=(1.0, 2.0)), weights=tiny_weights())
    with pytest.raises(ImpastoError):
        as_rgb(torch.zeros(4, 8, 8))


def _gram_distance(model: VGGFeatures, x: torch.Tensor, style: torch.Tensor, layers: list[str]) -> float:
    with torch.no_grad():
        fx, fs = model(x.unsqueeze(0)), model(style.unsqueeze(0))
        return sum(
            float(((losses.gram_matrix(fx[n], "chw") - losses.gram_matrix(fs[n], "chw")) ** 2).mean())
            for n in layers
        )


@pytest.mark.slow
def test_real_weights_stylise(real_weights: VGGWeights, shared_images: Path) -> None:
    """Loss falls by more than half, the result moves toward the style and keeps the content."""
    content = load_image(shared_images / "tubingen.jpg")
    style = load_image(shared_images / "starry_night.jpg")
    cfg = Config(size=96, start_size=None, steps=40, device="cpu")
    events = list(stylize_iter(content, style, cfg, weights=real_weights))
    first, last = events[0], events[-1]
    assert last.loss < 0.5 * first.loss
    out = last.image
    assert out is not None
    c = resize_to(content.rgb, out.shape[-2:])
    s = resize_to(style.rgb, (60, 96))
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    model = VGGFeatures(real_weights, layers + ["relu4_2"])
    assert _gram_distance(model, out, s, layers) < 0.5 * _gram_distance(model, c, s, layers)
    # Content kept: at the content layer the result is much nearer the photo than the painting is.
    with torch.no_grad():
        fo, fc = model(out.unsqueeze(0))["relu4_2"], model(c.unsqueeze(0))["relu4_2"]
        fs = model(resize_to(style.rgb, out.shape[-2:]).unsqueeze(0))["relu4_2"]
    assert float((fo - fc).norm()) < 0.95 * float((fs - fc).norm())
    # ... and in pixels it stays much nearer the photo than the painting.
    s_same = resize_to(style.rgb, out.shape[-2:])
    assert float((out - c).abs().mean()) < 0.6 * float((out - s_same).abs().mean())
    assert float((out - c).abs().mean()) > 0.02  # and it did change


@pytest.mark.slow
def test_real_weights_paper_form_and_adam(real_weights: VGGWeights, small_images: tuple[Path, Path]) -> None:
    """The paper's un-normalised Gram with E_l = 1/(4N²M²)Σ(G−A)², optimised by Adam: the loss falls."""
    content, style = small_images
    cfg = Config(size=48, start_size=None, steps=30, optimizer="adam", gram_norm="none", style_loss="paper",
                 content_loss="half_sse", content_weight=1.0, style_weight=1e3, tv_weight=0.0, pooling="avg",
                 device="cpu")
    events = list(stylize_iter(content, style, cfg, weights=real_weights))
    assert events[-1].loss < 0.5 * events[0].loss


def test_lbfgs_trust_region_limits_every_step(
    small_images: tuple[Path, Path], tiny_weights: Callable[..., VGGWeights]
) -> None:
    content, style = small_images
    cfg = TINY.replace(steps=6, lbfgs_max_step=0.002, clamp=False, style_weight=1e6)
    st = StyleTransfer(content, [style], cfg, weights=tiny_weights())
    prev = st.current_image()
    moved = []
    for ev in st.run():
        if ev.done:
            break
        now = st.current_image()
        rms = float((now - prev).pow(2).mean().sqrt())
        assert rms <= 0.002 + 1e-6
        moved.append(rms)
        prev = now
    assert max(moved) > 0.0019  # the limit was reached, so it did bind


def test_first_lbfgs_step_is_a_tenth_of_the_trust_region(
    small_images: tuple[Path, Path], tiny_weights: Callable[..., VGGWeights]
) -> None:
    """Whatever the loss's unit: torch's first step would move these pixels by far less (or far more)."""
    content, style = small_images
    for balance in ("relative", "none"):
        cfg = TINY.replace(steps=2, clamp=False, balance=balance)
        st = StyleTransfer(content, [style], cfg, weights=tiny_weights())
        assert st.optimizer_spec((32, 32)).first_step == pytest.approx(0.04 * 255 * 0.1)
        next(iter(st.run()))
        assert st.pixels is not None
        move = st.pixels.detach() / 255.0 - st.initial  # unclipped, in 0-1 units
        assert float(move.pow(2).mean().sqrt()) == pytest.approx(0.004, rel=1e-4)
    # No trust region (the presets, the benchmark's torch-equivalent runs): torch's own first step.
    assert StyleTransfer(content, [style], TINY.replace(lbfgs_max_step=None),
                         weights=tiny_weights()).optimizer_spec((32, 32)).first_step is None


def test_limit_step_keeps_lbfgs_history_consistent() -> None:
    from impasto.optim import TrustRegion

    x = torch.zeros(1, 3, 4, 4, requires_grad=True)
    target = torch.full_like(x, 100.0)
    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=1, tolerance_grad=0.0, tolerance_change=0.0)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (x - target).pow(2).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    for _ in range(2):
        before = x.detach().clone()
        opt.step(closure)
        t_full = float(opt.state[x]["t"])
        move = float((x.detach() - before).pow(2).mean().sqrt())
        TrustRegion(1.0).apply(opt, x, before)
        after = float((x.detach() - before).pow(2).mean().sqrt())
        assert after == pytest.approx(min(move, 1.0), rel=1e-5)
        # s = t·d must equal the real move: t shrinks by the same factor as the step.
        assert float(opt.state[x]["t"]) == pytest.approx(t_full * after / move, rel=1e-5)


def _spike_at(st: StyleTransfer, calls: set[int], factor: float) -> list[torch.Tensor]:
    """Make the loss of the given evaluations (from 1) ``factor`` times larger; record each input."""
    seen: list[torch.Tensor] = []

    def spiked(px: torch.Tensor, objective: Callable[[torch.Tensor], LossTerms]) -> LossTerms:
        seen.append(px.detach().clone())
        terms = objective(px)
        if len(seen) in calls:
            terms = dataclasses.replace(terms, total=terms.total * factor)
        return terms

    spy_objective(st, spiked)
    return seen


def test_divergence_guard_goes_back_to_the_best_image(
    small_images: tuple[Path, Path], tiny_weights: Callable[..., VGGWeights]
) -> None:
    content, style = small_images
    st = StyleTransfer(content, [style], TINY.replace(steps=5), weights=tiny_weights())
    seen = _spike_at(st, {3}, 1e4)
    events = [e for e in st.run() if not e.done]
    assert [e.restarts for e in events] == [0, 0, 1, 1, 1]
    # Evaluation 4 starts from the best pixels seen so far (evaluation 2's: losses fall from 1 to 2).
    assert events[1].loss < events[0].loss
    assert torch.equal(seen[3], seen[1])
    assert events[-1].loss < events[1].loss  # and the run goes on improving from there


def test_divergence_guard_gives_up_and_can_be_turned_off(
    small_images: tuple[Path, Path], tiny_weights: Callable[..., VGGWeights]
) -> None:
    content, style = small_images
    st = StyleTransfer(content, [style], TINY.replace(steps=12), weights=tiny_weights())
    _spike_at(st, set(range(2, 13)), 1e4)
    with pytest.raises(ImpastoError, match="diverged .* after 5 restarts"):
        list(st.run())
    st = StyleTransfer(content, [style], TINY.replace(steps=4, restart_factor=None), weights=tiny_weights())
    seen = _spike_at(st, {3}, 1e4)
    events = [e for e in st.run() if not e.done]
    assert [e.restarts for e in events] == [0, 0, 0, 0]
    assert events[2].loss > 1e3 * events[1].loss  # the spike is reported, nothing is undone
    assert not torch.equal(seen[3], seen[1])
    with pytest.raises(ImpastoError, match="restart_factor must be > 1"):
        TINY.replace(restart_factor=1.0).validate()


def test_lbfgs_history_shrinks_to_its_memory_budget(
    small_images: tuple[Path, Path], tiny_weights: Callable[..., VGGWeights]
) -> None:
    cfg = Config()
    # 2 vectors of 3·h·w float32 per pair: 24 MiB per pair at 1024², 96 MiB at 2048²; budget 1024 MiB.
    assert [cfg.history_for(s, s) for s in (512, 1024, 2048)] == [100, 42, 10]
    assert cfg.replace(lbfgs_history_mib=None).history_for(4096, 4096) == 100
    assert cfg.history_for(20000, 20000) == 1
    content, style = small_images
    tight = TINY.replace(lbfgs_history_mib=2 * 3 * 24 * 32 * 4 * 3 / 2**20)  # room for exactly 3 pairs
    st = StyleTransfer(content, [style], tight, weights=tiny_weights())
    x = torch.zeros(1, 3, 24, 32, requires_grad=True)
    assert make_optimizer(x, st.optimizer_spec((24, 32))).history_size == 3  # type: ignore[union-attr]
    st20 = StyleTransfer(content, [style], tight.replace(lbfgs_max_iter=20), weights=tiny_weights())
    assert make_optimizer(x, st20.optimizer_spec((24, 32))).defaults["history_size"] == 3  # type: ignore[union-attr]
    with pytest.raises(ImpastoError, match="lbfgs_history_mib"):
        TINY.replace(lbfgs_history_mib=0.0).validate()


def test_recompute_activations_auto_turns_on_only_for_large_cpu_scales(
    small_images: tuple[Path, Path], tiny_weights: Callable[..., VGGWeights], monkeypatch: pytest.MonkeyPatch
) -> None:
    content, style = small_images
    for mode, budget, want in (("auto", 1e9, False), ("auto", 0.0, True), ("on", 1e9, True), ("off", 0.0, False)):
        cfg = TINY.replace(steps=1, recompute_activations=mode, recompute_auto_mib=budget)
        st = StyleTransfer(content, [style], cfg, weights=tiny_weights())
        events = list(st.run())
        assert st.model.checkpointing is want, mode
        assert events[-1].done and events[0].loss > 0
