"""Pure colour and style-statistic functions: exact values on tiny hand-computed tensors."""

from __future__ import annotations

import pytest
import torch

from impasto import regions as artist
from impasto.errors import ImpastoError
from impasto.losses import gram_matrix, masked_gram
from impasto.losses.color import (
    color_stats,
    combine_luminance,
    luminance_only,
    match_color,
    rgb_to_yiq,
    yiq_to_rgb,
)
from impasto.losses.style import (
    W2Target,
    blend_quantiles,
    hist_loss,
    moments,
    normalize_grad,
    sorted_target,
    w2_loss,
)


def _img(seed: int, h: int = 8, w: int = 9) -> torch.Tensor:
    return torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed))


# -- colour ------------------------------------------------------------------------------------------
def test_yiq_known_values_and_round_trip() -> None:
    white = torch.ones(3, 1, 1)
    assert torch.allclose(rgb_to_yiq(white)[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    assert torch.allclose(rgb_to_yiq(red)[:, 0, 0], torch.tensor([0.299, 0.595716, 0.211456]), atol=1e-6)
    x = _img(0)
    assert torch.allclose(yiq_to_rgb(rgb_to_yiq(x)), x, atol=1e-6)


def test_match_color_gives_target_mean_and_covariance() -> None:
    src = _img(1) * 0.5
    tgt = _img(2) ** 2
    out = match_color(src, tgt, clamp=False)
    mu_o, cov_o = color_stats(out)
    mu_t, cov_t = color_stats(tgt)
    assert torch.allclose(mu_o, mu_t, atol=1e-5)
    assert torch.allclose(cov_o, cov_t, atol=1e-5)


def test_luminance_only_is_grey_with_reference_stats() -> None:
    x, ref = _img(3), _img(4)
    g = luminance_only(x, reference=ref)
    assert torch.equal(g[0], g[1]) and torch.equal(g[1], g[2])
    y, yr = rgb_to_yiq(g)[0], rgb_to_yiq(ref)[0]
    assert float(y.mean()) == pytest.approx(float(yr.mean()), abs=1e-3)  # clamp may nudge it


def test_combine_luminance_keeps_content_chroma_exactly() -> None:
    content = 0.25 + 0.5 * _img(5)  # mid-range: the combination stays inside the gamut
    stylised = luminance_only(0.3 + 0.4 * _img(6))
    out = combine_luminance(stylised, content)
    assert torch.allclose(rgb_to_yiq(out)[1:], rgb_to_yiq(content)[1:], atol=1e-5)
    assert torch.allclose(rgb_to_yiq(out)[0], rgb_to_yiq(stylised)[0], atol=1e-5)


def test_colour_functions_reject_bad_shapes() -> None:
    with pytest.raises(ImpastoError):
        rgb_to_yiq(torch.zeros(4, 2, 2))
    with pytest.raises(ImpastoError):
        combine_luminance(torch.zeros(3, 2, 2), torch.zeros(3, 3, 3))


# -- Gram, W2, histogram ---------------------------------------------------------------------------------
F1 = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # C=2, H=1, W=2


def test_masked_gram_full_mask_is_the_gram_and_half_mask_is_the_half() -> None:
    g, area = masked_gram(F1, torch.ones(1, 1, 1, 2), "chw")
    assert area == 2.0 and torch.equal(g, gram_matrix(F1, "chw"))
    g, area = masked_gram(F1, torch.tensor([[[[1.0, 0.0]]]]), "chw")
    assert area == 1.0 and torch.equal(g, gram_matrix(F1[..., :1], "chw"))
    g, _ = masked_gram(F1, None, "none")
    assert torch.equal(g, gram_matrix(F1, "none"))


def test_moments_with_and_without_mask() -> None:
    mean, srm = moments(F1)
    assert torch.equal(mean, torch.tensor([1.5, 3.5]))
    assert torch.allclose(srm, torch.tensor([[2.5, 5.5], [5.5, 12.5]]))
    mean, _ = moments(F1, torch.tensor([[[[0.0, 1.0]]]]))
    assert torch.equal(mean, torch.tensor([2.0, 4.0]))


def test_w2_of_identical_statistics_is_zero() -> None:
    f = torch.randn(1, 4, 5, 6, generator=torch.Generator().manual_seed(0))
    mean, srm = moments(f)
    assert float(w2_loss(mean, srm, W2Target(mean, srm))) == pytest.approx(0.0, abs=1e-4)


def test_w2_known_value_diagonal_gaussians() -> None:
    # Channel 0 has values ±2 (σ=2), channel 1 ±1 (σ=1), uncorrelated; target: both σ=1, channel-0
    # mean shifted by 3.
    f = torch.tensor([[[[2.0, -2.0, 2.0, -2.0]], [[1.0, 1.0, -1.0, -1.0]]]])
    t = torch.tensor([[[[4.0, 2.0, 4.0, 2.0]], [[1.0, 1.0, -1.0, -1.0]]]])
    mean, srm = moments(f)
    tm, ts = moments(t)
    # W2² = ‖Δμ‖² + Σ (σ − σ_t)² = 9 + (2 − 1)² = 10, divided by C = 2.
    assert float(w2_loss(mean, srm, W2Target(tm, ts))) == pytest.approx(5.0, abs=1e-4)


def test_hist_loss_known_value_and_permutation_zero() -> None:
    f = torch.tensor([[[[3.0, 1.0, 2.0]]]])
    target = sorted_target(torch.tensor([[[[20.0, 30.0, 10.0]]]]))
    assert torch.equal(target, torch.tensor([[10.0, 20.0, 30.0]]))
    # Remapped by rank: 3 -> 30, 1 -> 10, 2 -> 20.
    assert float(hist_loss(f, target)) == pytest.approx(((3 - 30) ** 2 + (1 - 10) ** 2 + (2 - 20) ** 2) / 3)
    assert float(hist_loss(torch.tensor([[[[30.0, 10.0, 20.0]]]]), target)) == 0.0
    # Masked: only the first two positions take part; ranked within the region, 3 -> 30 and 1 -> 10.
    m = torch.tensor([[[[1.0, 1.0, 0.0]]]])
    assert float(hist_loss(f, target, m)) == pytest.approx(((3 - 30) ** 2 + (1 - 10) ** 2) / 2)


def test_blend_quantiles_averages_the_quantile_functions() -> None:
    a = torch.tensor([[0.0, 1.0, 2.0]])
    b = torch.tensor([[10.0, 30.0]])  # resampled to 3 values: 10, 20, 30
    assert torch.allclose(blend_quantiles([a, b], [0.5, 0.5], 3), torch.tensor([[5.0, 10.5, 16.0]]))


def test_normalize_grad_scales_gradient_to_strength() -> None:
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (normalize_grad(x, 0.5) * torch.tensor([100.0, 300.0, -600.0])).sum().backward()
    assert x.grad is not None
    assert torch.allclose(x.grad, torch.tensor([100.0, 300.0, -600.0]) / 1000.0 * 0.5)


# -- regions ---------------------------------------------------------------------------------------------
def test_parse_region_and_colour() -> None:
    assert artist.parse_color("red") == (255, 0, 0)
    assert artist.parse_color("#00ff80") == (0, 255, 128)
    assert artist.parse_color("1,2,3") == (1, 2, 3)
    assert artist.parse_region("blue=2") == ((0, 0, 255), 1)
    assert artist.parse_region("white=content") == ((255, 255, 255), "content")
    assert artist.parse_region("red=starry.jpg") == ((255, 0, 0), "starry.jpg")  # a path: the CLI resolves it
    for bad in ("red", "mauve=1", "red=0", "red="):
        with pytest.raises(ImpastoError):
            artist.parse_region(bad)


def test_region_masks_nearest_colour() -> None:
    mask = torch.zeros(3, 2, 2)
    mask[0, :, 0] = 0.9  # almost red on the left
    mask[2, :, 1] = 0.8  # bluish on the right
    rm = artist.RegionMasks.from_image(mask, ["red=1", "blue=content"], n_styles=1)
    assert torch.equal(rm.onehot[0], torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    cw = rm.content_weight((2, 2))
    assert cw is not None and torch.equal(cw[0], torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    with pytest.raises(ImpastoError, match="only 1 style"):
        artist.RegionMasks.from_image(mask, ["red=2"], n_styles=1)
    with pytest.raises(ImpastoError, match="style number"):
        artist.RegionMasks.from_image(mask, ["red=starry.jpg"], n_styles=1)


def test_masked_gram_of_channels_last_features_matches() -> None:
    f = torch.randint(-3, 4, (1, 3, 4, 5)).float()
    m = torch.randint(0, 2, (1, 1, 4, 5)).float()
    nhwc = f.contiguous(memory_format=torch.channels_last)
    for mask in (None, m):
        want, area = masked_gram(f, mask, "none")
        got, area2 = masked_gram(nhwc, mask, "none")
        assert torch.equal(got, want) and area == area2
    flat = (f * m).reshape(3, 20)
    assert torch.equal(masked_gram(nhwc, m, "none")[0][0], flat @ flat.T)
