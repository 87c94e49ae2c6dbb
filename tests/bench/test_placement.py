"""The colour-placement figure (impasto.bench.placement) on hand-made pictures."""

from __future__ import annotations

import pytest
import torch

from impasto.bench.placement import agreement_of, palette, palette_map, placement_agreement, placement_look

ORANGE = torch.tensor([1.0, 0.55, 0.1]).view(3, 1, 1)
BLUE = torch.tensor([0.05, 0.1, 0.6]).view(3, 1, 1)


def _halves(top: torch.Tensor, bottom: torch.Tensor, h: int = 20, w: int = 24) -> torch.Tensor:
    x = torch.empty(3, h, w)
    x[:, : h // 2] = top
    x[:, h // 2:] = bottom
    return x


def test_agreement_exact_values() -> None:
    a = torch.tensor([[0, 0], [1, 1]])
    b = torch.tensor([[0, 1], [1, 1]])
    p = agreement_of(a, b, 2)
    # agree 3/4; label frequencies (1/2, 1/2) and (1/4, 3/4): chance 1/8 + 3/8 = 1/2; κ = (3/4 − 1/2)/(1/2).
    assert (p.agreement, p.chance, p.kappa) == pytest.approx((0.75, 0.5, 0.5))
    with pytest.raises(ValueError, match="differ in size"):
        agreement_of(a, b[:1], 2)


def test_palette_finds_the_paintings_colours_sorted_by_lightness() -> None:
    painting = _halves(ORANGE, BLUE)
    c = palette(painting, k=2)
    assert c.shape == (2, 3)
    assert float(c[0, 0]) < float(c[1, 0])  # blue is darker than orange
    labels = palette_map(painting, c)
    assert labels[:10].eq(1).all() and labels[10:].eq(0).all()
    assert torch.equal(palette(painting, k=2), c)  # a fixed seed: the same palette every time


def test_same_placement_is_one_swapped_is_below_zero() -> None:
    painting = _halves(ORANGE, BLUE)
    sky_orange = _halves(ORANGE, BLUE)
    sky_blue = _halves(BLUE, ORANGE)
    same = placement_agreement(sky_orange, sky_orange, painting, k=2)
    assert (same.agreement, same.kappa) == pytest.approx((1.0, 1.0))
    swapped = placement_agreement(sky_blue, sky_orange, painting, k=2)
    assert swapped.agreement == pytest.approx(0.0)
    assert swapped.kappa == pytest.approx(-1.0)
    # The reference is resized to the result's size first.
    small = placement_agreement(sky_orange, _halves(ORANGE, BLUE, 40, 48), painting, k=2)
    assert small.agreement == pytest.approx(1.0)


def test_look_has_a_row_per_picture_and_the_painting() -> None:
    painting = _halves(ORANGE, BLUE)
    look = placement_look(painting, [_halves(BLUE, ORANGE, 10, 30), painting], height=16, k=2)
    assert look.shape[0] == 3 and look.shape[1] == 3 * 16
    assert look.shape[2] == 2 * 48  # the widest row: a 10x30 picture at 16 px high, then its map
    assert float(look.min()) >= 0.0 and float(look.max()) <= 1.0
