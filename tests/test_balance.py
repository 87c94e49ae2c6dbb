"""``balance="relative"``: every content and style layer's distance divided by its value at a blank
image, checked against the formula computed by hand and against what it is for (invariance to how
large a painting's features are)."""

from __future__ import annotations

import pytest
import torch

from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.errors import ImpastoError
from impasto.objective import LossForms, LossWeights, Objective
from impasto.vgg import VGGFeatures
from impasto_test_support import homogeneous_vgg, tiny_vgg

CONTENT, STYLE = ("relu4_2",), ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def _img(seed: int, h: int = 40, w: int = 48) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 0.8 + 0.1


class _Brightness:
    """An extra term (what video's temporal loss is to the objective): the mean pixel value."""

    name = "brightness"

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels.mean()


def _objective(model: VGGFeatures, content: torch.Tensor, style: torch.Tensor, balance: str,
               content_weight: float = 1.0, style_weight: float = 1.0, tv_weight: float = 0.0,
               extra: _Brightness | None = None) -> Objective:
    weights = LossWeights(content_weight, style_weight, tv_weight, (1.0,), (1.0,) * len(STYLE))
    return Objective.build(model, content, [style], [1.0], content_layers=CONTENT, style_layers=STYLE,
                           forms=LossForms(balance=balance), weights=weights, pixel_scale=1.0, extra=extra)


def test_relative_terms_are_the_squared_relative_distances() -> None:
    model = VGGFeatures(tiny_vgg(), CONTENT + STYLE)
    content, style, x = _img(1), _img(2, 56, 40), _img(3)
    terms = _objective(model, content, style, "relative", content_weight=3.0, style_weight=7.0)(x)
    fx, fc, fs = model(x), model(content), model(style)

    def gram(f: torch.Tensor) -> torch.Tensor:  # chw normalisation, by hand
        c = f.shape[1]
        m = f.reshape(c, -1)
        return m @ m.T / m.numel()

    for n in STYLE:
        g, a = gram(fx[n]), gram(fs[n])
        want = 7.0 / len(STYLE) * ((g - a) ** 2).sum() / (a**2).sum()  # the mean over the layers
        assert float(terms.per[f"style/{n}"]) == pytest.approx(float(want), rel=1e-4)
    p = fc["relu4_2"]
    want_c = 3.0 * ((fx["relu4_2"] - p) ** 2).sum() / (p**2).sum()
    assert float(terms.content) == pytest.approx(float(want_c), rel=1e-4)
    # At the style image itself every style term is zero, at the content image the content term.
    same_size = _img(9)
    assert float(_objective(model, content, same_size, "relative")(same_size).style) == pytest.approx(0.0, abs=1e-6)
    assert float(_objective(model, content, style, "relative")(content).content) == 0.0


def test_relative_balance_keeps_the_content_tv_and_extra_ratios() -> None:
    model = VGGFeatures(tiny_vgg(), CONTENT + STYLE)
    content, style, x = _img(10), _img(11), _img(12)
    raw = _objective(model, content, style, "none", 5.0, 100.0, 1e-3, _Brightness())(x)
    rel = _objective(model, content, style, "relative", 5.0, 100.0, 1e-3, _Brightness())(x)
    assert float(rel.tv) > 0.0
    assert float(rel.content) / float(rel.tv) == pytest.approx(float(raw.content) / float(raw.tv), rel=1e-4)
    extra, extra_raw = float(rel.per["extra/brightness"]), float(raw.per["extra/brightness"])
    assert float(rel.content) / extra == pytest.approx(float(raw.content) / extra_raw, rel=1e-4)
    # Both are divided by the content's blank-image value, mean(P²) for the mse form.
    p2 = float(model(content)["relu4_2"].pow(2).mean())
    assert float(rel.content) == pytest.approx(float(raw.content) / p2, rel=1e-4)


def test_relative_balance_ignores_how_large_the_features_are() -> None:
    # With bias-free convolutions features(k·x) = k·features(x): scaling every image by k multiplies the
    # raw style terms by k⁴ and the content term by k², and leaves the relative terms unchanged.
    model = VGGFeatures(homogeneous_vgg(), CONTENT + STYLE)
    content, style, x = _img(4), _img(5), _img(6)
    k = 0.5
    raw, raw_k = (_objective(model, content, style, "none")(x),
                  _objective(model, k * content, k * style, "none")(k * x))
    rel, rel_k = (_objective(model, content, style, "relative")(x),
                  _objective(model, k * content, k * style, "relative")(k * x))
    assert float(raw_k.style) == pytest.approx(k**4 * float(raw.style), rel=1e-4)
    assert float(raw_k.content) == pytest.approx(k**2 * float(raw.content), rel=1e-4)
    assert float(rel_k.style) == pytest.approx(float(rel.style), rel=1e-4)
    assert float(rel_k.content) == pytest.approx(float(rel.content), rel=1e-4)
    # Under the raw forms the deepest layer is negligible; relative, every layer counts.
    share = {n: float(rel.per[f"style/{n}"]) / float(rel.style) for n in STYLE}
    assert min(share.values()) > 0.01


def test_relative_run_lowers_the_loss(tiny_weights) -> None:  # type: ignore[no-untyped-def]
    cfg = Config(size=40, start_size=None, steps=8, balance="relative", content_weight=1.0, style_weight=10.0)
    st = StyleTransfer(_img(7)[0], [_img(8)[0]], cfg, weights=tiny_weights())
    losses = [ev.loss for ev in st.run()]
    assert losses[-1] < 0.7 * losses[0]


def test_balance_is_checked() -> None:
    with pytest.raises(ImpastoError, match="balance must be one of none, relative"):
        Config(balance="auto")
