"""The independent figures (impasto.bench.independent): exact values on hand-made cases."""

from __future__ import annotations

import math

import pytest
import torch

from impasto.bench.colour import srgb_to_lab
from impasto.bench.independent import (
    GABOR_ORIENTATIONS,
    GABOR_WAVELENGTHS,
    IndependentJudge,
    band_energies,
    cnn_distance,
    color_distance_sw,
    floor_crops,
    independent_figures,
    luma,
    random_cnn,
    structure_agreement,
    sw_directions,
    texture_distance,
)


def _texture(seed: int, h: int = 64, w: int = 80) -> torch.Tensor:
    """A stationary "painting": blue/orange diagonal strokes with random phase, plus fine noise."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    phase = float(torch.rand(1, generator=g)) * 6.28
    s = 0.5 + 0.5 * torch.sin((xx + yy) * 0.8 + phase)
    a = torch.tensor([0.95, 0.6, 0.1]).view(3, 1, 1)
    b = torch.tensor([0.1, 0.2, 0.7]).view(3, 1, 1)
    img = s * a + (1 - s) * b + 0.08 * torch.randn(3, h, w, generator=g)
    return img.clamp(0, 1)


def _photo(h: int = 64, w: int = 80) -> torch.Tensor:
    """A smooth "photo": a sky gradient over a green ground with a bright disc."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    sky = torch.stack([0.4 + 0.3 * yy, 0.6 + 0.2 * yy, 0.9 - 0.2 * yy])
    ground = torch.stack([0.2 + 0 * yy, 0.35 + 0.1 * xx, 0.15 + 0 * yy])
    img = torch.where(yy < 0.6, sky, ground)
    disc = ((yy - 0.3) ** 2 + (xx - 0.7) ** 2) < 0.02
    return torch.where(disc, torch.tensor([1.0, 0.9, 0.4]).view(3, 1, 1), img)


def test_identical_images_give_zero_distances_and_full_agreement() -> None:
    x = _texture(1)
    assert texture_distance(x, x) == 0.0
    assert cnn_distance(x, x) == 0.0
    assert color_distance_sw(x, x) == 0.0
    assert structure_agreement(_photo(), _photo()) == pytest.approx(1.0, abs=1e-12)


def test_the_photo_scores_one_and_the_painting_its_floor_by_construction() -> None:
    photo, paint = _photo(), _texture(2)
    judge = IndependentJudge(photo, paint)
    s = judge(photo)
    for v in (s.texture, s.cnn, s.color, s.structure):
        assert v == pytest.approx(1.0, abs=1e-9)
    p = judge(paint)  # the painting at the result's size: raw distance 0, structure 0 by construction
    assert p.raw["texture"] == 0.0 and p.raw["cnn"] == 0.0 and p.raw["color"] == 0.0
    assert p.structure == pytest.approx(0.0, abs=1e-12)
    r = p.raw
    assert p.texture == pytest.approx(-r["texture_floor"] / (r["texture_ceiling"] - r["texture_floor"]))
    assert p.color == pytest.approx(-r["color_floor"] / (r["color_ceiling"] - r["color_floor"]))
    assert r["structure_ceiling"] == 1.0


def test_another_sample_of_a_stationary_painting_scores_near_the_floor() -> None:
    photo, paint = _photo(), _texture(3)
    s = independent_figures(photo, paint, _texture(4))  # same texture, another phase and noise
    assert abs(s.texture) < 0.1
    assert abs(s.cnn) < 0.1
    assert abs(s.color) < 0.1
    assert abs(s.structure) < 0.15


def test_flat_colours_give_their_cie76_difference_exactly() -> None:
    a = torch.tensor([0.8, 0.3, 0.2]).view(3, 1, 1).expand(3, 16, 20)
    b = torch.tensor([0.2, 0.5, 0.7]).view(3, 1, 1).expand(3, 12, 12)  # another size: quantiles compare
    de = float(torch.linalg.vector_norm(srgb_to_lab(a)[:, 0, 0] - srgb_to_lab(b)[:, 0, 0]))
    assert color_distance_sw(a, b) == pytest.approx(de, rel=1e-6)  # projections sorted in float32
    d = sw_directions()  # rows of orthonormal bases: Σ u uᵀ = (n/3)·I
    assert torch.allclose(d.T @ d, torch.eye(3, dtype=torch.float64) * d.shape[0] / 3, atol=1e-12)


def test_a_colour_shift_at_equal_luma_moves_colour_but_not_texture() -> None:
    x = _texture(5) * 0.6 + 0.2  # room to shift without clipping
    shift = 0.15 * torch.tensor([0.587, -0.299, 0.0]).view(3, 1, 1)
    y = x + shift
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert torch.allclose(luma(x), luma(y), atol=1e-6)
    assert texture_distance(y, x) < 1e-4
    assert color_distance_sw(y, x) > 5.0


def test_blur_takes_energy_from_the_high_band_first() -> None:
    x = _texture(6, 96, 96)
    k = torch.ones(1, 1, 5, 5) / 25.0
    blurred = torch.nn.functional.conv2d(torch.nn.functional.pad(x.unsqueeze(1), (2, 2, 2, 2), mode="reflect"),
                                         k).squeeze(1)
    e0, e1 = band_energies(x), band_energies(blurred)
    ratio = (e1 / e0).tolist()
    assert len(ratio) == len(GABOR_WAVELENGTHS)
    assert ratio[0] < 0.05  # λ = 4 px: a 5×5 box blur removes it
    assert ratio[-1] > 0.5  # λ = 32 px: mostly kept
    assert ratio == sorted(ratio)  # high bands lose the most
    assert texture_distance(blurred, x) > 1.0


def test_structure_agreement_is_minus_one_for_edges_turned_90_degrees() -> None:
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    vertical = (0.5 + 0.4 * torch.sin(xx * 0.4)).expand(3, 64, 64)
    horizontal = (0.5 + 0.4 * torch.sin(yy * 0.4)).expand(3, 64, 64)
    assert structure_agreement(horizontal, vertical) == pytest.approx(-1.0, abs=0.02)
    assert structure_agreement(vertical * 0.5 + 0.2, vertical) == pytest.approx(1.0, abs=1e-9)  # contrast: none


def test_random_cnns_are_fixed_by_their_seeds() -> None:
    a, b = random_cnn(11), random_cnn(11)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(random_cnn(12)[0], a[0])


def test_floor_crops_and_bank_shape() -> None:
    x = torch.zeros(3, 40, 80)
    c1, c2 = floor_crops(x)
    assert tuple(c1.shape) == (3, 30, 60) and tuple(c2.shape) == (3, 30, 60)
    assert len(band_energies(_texture(7))) == len(GABOR_WAVELENGTHS) and GABOR_ORIENTATIONS == 4
    assert not math.isnan(independent_figures(_photo(), _texture(8), _texture(9)).texture)
