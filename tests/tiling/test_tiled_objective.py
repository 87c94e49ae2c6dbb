"""The tiled objective against a whole-image forward/backward with the tiny random VGG."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

from impasto.errors import ImpastoError
from impasto.losses import content_loss, tv_loss
from impasto.losses.content import content_scale
from impasto.losses.tv import tv_penalty
from impasto.objective import LossForms, LossWeights, Objective
from impasto.tiling import TiledObjective, alignment, check_tileable, required_halo
from impasto.tiling.grid import layer_halos
from impasto.vgg import VGGFeatures
from impasto_test_support import tiny_vgg

SHALLOW = (("relu2_2",), ("relu1_1", "relu2_1", "relu3_1"))
"""Layers whose halo (12 px) is smaller than the 64x48 test picture, so the crops really are crops."""
DEEP = (("relu4_2",), ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"))
"""Gatys et al.'s layers (the presets' and, before issue 19, the default's): halo 80 px, tiles aligned to 16 px."""


def _model(layers: tuple[tuple[str, ...], tuple[str, ...]], dtype: torch.dtype = torch.float32) -> VGGFeatures:
    return VGGFeatures(tiny_vgg(), list(layers[0]) + list(layers[1])).use_channels_last(True).to(dtype)


def _images(h: int, w: int, dtype: torch.dtype = torch.float32,
            ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    content = torch.rand(1, 3, h, w, generator=g, dtype=dtype)
    styles = [torch.rand(1, 3, 40, 56, generator=g, dtype=dtype), torch.rand(1, 3, 50, 30, generator=g, dtype=dtype)]
    x = torch.rand(1, 3, h, w, generator=g, dtype=dtype) * 255
    return content, styles, x


def _pair(layers: Any, forms: LossForms, size: tuple[int, int], tile: int, halo: int | None = None,
          dtype: torch.dtype = torch.float32, tv: float = 1e-3) -> tuple[Objective, TiledObjective, torch.Tensor]:
    model = _model(layers, dtype)
    content, styles, x = _images(*size, dtype=dtype)
    wts = LossWeights(5.0, 55.0, tv, (1.0,) * len(layers[0]), tuple(0.5 + i for i in range(len(layers[1]))))
    kw: dict[str, Any] = dict(content_layers=layers[0], style_layers=layers[1], forms=forms, weights=wts,
                              pixel_scale=255.0)
    whole = Objective.build(model, content, styles, [0.6, 0.4], **kw)
    tiled = TiledObjective.build(model, content, styles, [0.6, 0.4], tile=tile, halo=halo, **kw)
    return whole, tiled, x


def _loss_and_grad(objective: Any, x: torch.Tensor) -> tuple[Any, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    terms = objective(x)
    terms.total.backward()
    assert x.grad is not None
    return terms, x.grad


def _assert_match(whole: Objective, tiled: TiledObjective, x: torch.Tensor, rtol: float) -> float:
    """Total, per-term values and gradient agree; returns the gradient's largest error relative to its
    largest entry."""
    t1, g1 = _loss_and_grad(whole, x)
    t2, g2 = _loss_and_grad(tiled, x)
    scale = float(t1.total.detach().abs())
    assert float(t2.total.detach()) == pytest.approx(float(t1.total.detach()), rel=rtol)
    assert t2.per.keys() == t1.per.keys()
    for k in t1.per:  # each term to the total's tolerance (a small term's Gram difference cancels)
        assert float(t2.per[k].detach()) == pytest.approx(float(t1.per[k].detach()), rel=rtol, abs=rtol * scale), k
    for a, b in ((t1.content, t2.content), (t1.style, t2.style), (t1.tv, t2.tv)):
        assert float(b.detach()) == pytest.approx(float(a.detach()), rel=rtol, abs=rtol * scale)
    err = float((g2 - g1).abs().max() / g1.abs().max())
    assert err < rtol, err
    return err


def test_halo_is_computed_from_the_convolutions_and_poolings() -> None:
    model = _model(DEEP)
    # c: +1 per 3x3 conv, ceil(c/2) per pooling, times 2^pools: relu5_1 has c = 5 at 1/16 (80 px).
    assert layer_halos(model) == {"relu1_1": 1, "relu2_1": 4, "relu3_1": 12, "relu4_1": 32, "relu4_2": 40,
                                  "relu5_1": 80}
    assert (required_halo(model), alignment(model)) == (80, 16)
    shallow = _model(SHALLOW)
    assert (required_halo(shallow), alignment(shallow)) == (12, 4)


# Every loss form against the defaults (relative balance, gram), one axis at a time, and each form
# under balance "none" too; tiles of 24 px on 64x48 with the 12 px halo.
FORM_CASES = [
    {},
    {"content": "sse"}, {"content": "half_sse"}, {"content": "coursera"},
    {"gram_norm": "none", "style": "paper"}, {"gram_norm": "hw"}, {"gram_norm": "abcd"},
    {"style": "sse"}, {"style": "keras"}, {"style": "paper"},
    {"tv": "l1"},
    {"style_kind": "w2"},
    {"clamp_input": True},
]


@pytest.mark.parametrize("balance", ["none", "relative"])
@pytest.mark.parametrize("changes", FORM_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
def test_tiled_equals_whole_for_every_form_and_balance(balance: str, changes: dict[str, Any]) -> None:
    forms = LossForms(balance=balance, **changes)
    whole, tiled, x = _pair(SHALLOW, forms, (48, 64), tile=24)
    if forms.clamp_input:
        x = x * 1.3 - 30  # some pixels out of range, so the straight-through clamp matters
    assert len(tiled.schedule.tiles(0)) == 6 and tiled.schedule.halo == 12
    _assert_match(whole, tiled, x, rtol=1e-4)


def test_targets_computed_in_tiles_equal_the_whole_images() -> None:
    whole, tiled, _ = _pair(SHALLOW, LossForms(balance="relative"), (48, 64), tile=24)
    for name, t in whole.content_targets.items():
        torch.testing.assert_close(tiled.base.content_targets[name], t, rtol=1e-5, atol=1e-5 * float(t.abs().max()))
    for name, layer in whole.slots[0].layers.items():
        assert layer.gram is not None
        torch.testing.assert_close(tiled.base.slots[0].layers[name].gram, layer.gram, rtol=1e-5, atol=0.0)
        assert tiled.base.slots[0].norms[name] == pytest.approx(whole.slots[0].norms[name], rel=1e-5)
    assert tiled.base.content_norms == pytest.approx(whole.content_norms, rel=1e-6)


@pytest.mark.parametrize("balance", ["none", "relative"])
@pytest.mark.parametrize("kind", ["gram", "w2"])
def test_default_layers_with_their_80px_halo(balance: str, kind: str) -> None:
    whole, tiled, x = _pair(DEEP, LossForms(balance=balance, style_kind=kind), (160, 192), tile=32)
    assert len(tiled.schedule.tiles(0)) == 30
    _assert_match(whole, tiled, x, rtol=1e-4)


def test_in_float64_the_tiled_gradient_is_exact_to_rounding() -> None:
    whole, tiled, x = _pair(SHALLOW, LossForms(), (48, 64), tile=24, dtype=torch.float64)
    assert _assert_match(whole, tiled, x, rtol=1e-10) < 1e-10


@pytest.mark.parametrize("halo", [0, 4, 8])
def test_a_halo_below_the_receptive_field_is_not_exact(halo: int) -> None:
    # TV off: it needs no halo (the tile reads one pixel past its core), so only the network shows the gap.
    whole, tiled, x = _pair(SHALLOW, LossForms(), (48, 64), tile=24, halo=halo, tv=0.0)
    t1, g1 = _loss_and_grad(whole, x)
    t2, g2 = _loss_and_grad(tiled, x)
    assert float((g2 - g1).abs().max() / g1.abs().max()) > 1e-3
    _, exact, _ = _pair(SHALLOW, LossForms(), (48, 64), tile=24, halo=12, tv=0.0)
    assert float((_loss_and_grad(exact, x)[1] - g1).abs().max() / g1.abs().max()) < 1e-4


def test_tv_alone_needs_no_halo() -> None:
    forms = LossForms()
    whole, tiled, x = _pair(SHALLOW, forms, (48, 64), tile=24, halo=0, tv=1.0)
    # Only the TV term: zero the network terms' weights in both.
    for obj in (whole, tiled.base):
        obj.weights = dataclasses.replace(obj.weights, content=0.0, style=0.0)
    tiled.spec = TiledObjective.spec_for(tiled.base, 48, 64)
    _assert_match(whole, tiled, x, rtol=1e-5)


def test_moving_borders_give_the_same_loss_and_gradient() -> None:
    whole, tiled, x = _pair(SHALLOW, LossForms(), (48, 64), tile=24)
    t1, g1 = _loss_and_grad(tiled, x)
    first = tiled.last_tiles
    t2, g2 = _loss_and_grad(tiled, x)
    assert tiled.last_tiles != first and tiled.evaluations == 2
    assert float(t2.total.detach()) == pytest.approx(float(t1.total.detach()), rel=1e-5)
    assert float((g2 - g1).abs().max() / g1.abs().max()) < 1e-4


def test_content_and_tv_helpers_match_the_loss_forms() -> None:
    g = torch.Generator().manual_seed(0)
    f, p = torch.randn(1, 5, 7, 9, generator=g), torch.randn(1, 5, 7, 9, generator=g)
    sse = float((f - p).pow(2).sum())
    for form in ("mse", "sse", "half_sse", "coursera"):
        assert float(content_loss(f, p, form)) == pytest.approx(content_scale(form, tuple(f.shape)) * sse, rel=1e-6)
    with pytest.raises(ValueError):
        content_scale("bogus", (1, 1, 1, 1))
    x = torch.randn(1, 3, 6, 8, generator=g)
    for form in ("l1", "l2"):
        parts = tv_penalty(x[:, :, 1:] - x[:, :, :-1], form) + tv_penalty(x[..., 1:] - x[..., :-1], form)
        assert float(parts) == float(tv_loss(x, form))


@pytest.mark.parametrize(
    "forms, kw, setting",
    [
        (LossForms(style_kind="hist"), {}, "style_kind 'hist'"),
        (LossForms(normalize_gradients=True), {}, "normalize_gradients"),
        (LossForms(), {"regions": True}, "mask/regions"),
        (LossForms(), {"extra": "temporal"}, "the extra loss 'temporal'"),
    ],
)
def test_what_cannot_be_tiled_is_refused_in_one_line(forms: LossForms, kw: dict[str, Any], setting: str) -> None:
    with pytest.raises(ImpastoError) as err:
        check_tileable(forms, **kw)
    text = str(err.value)
    assert text.startswith(setting) and "\n" not in text and "tiles" in text


def test_build_refuses_hist() -> None:
    model = _model(SHALLOW)
    content, styles, _ = _images(48, 64)
    wts = LossWeights(1.0, 1.0, 0.0, (1.0,), (1.0, 1.0, 1.0))
    with pytest.raises(ImpastoError, match="hist"):
        TiledObjective.build(model, content, styles, [0.5, 0.5], content_layers=SHALLOW[0], style_layers=SHALLOW[1],
                             forms=LossForms(style_kind="hist"), weights=wts, pixel_scale=255.0, tile=24)
