"""CIELAB round trip and the tone-placed palette (impasto.losses.color.match_tones)."""

from __future__ import annotations

import pytest
import torch

from impasto.config import Config
from impasto.errors import ImpastoError
from impasto.losses.color import lab_to_srgb, match_tones, srgb_to_lab


def test_lab_known_values_and_round_trip() -> None:
    white = torch.ones(3, 1, 1)
    assert srgb_to_lab(white)[:, 0, 0].tolist() == pytest.approx([100.0, 0.0, 0.0], abs=1e-3)
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    # sRGB red in CIELAB D65 (Bruce Lindbloom's calculator): L 53.24, a 80.09, b 67.20.
    assert srgb_to_lab(red)[:, 0, 0].tolist() == pytest.approx([53.24, 80.09, 67.20], abs=0.01)
    x = torch.rand(3, 17, 23, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.allclose(lab_to_srgb(srgb_to_lab(x)), x, atol=1e-10)


def _two_tone_painting() -> torch.Tensor:
    """Top half bright orange, bottom half dark blue: The Scream's sky and fjord, as a toy."""
    p = torch.empty(3, 40, 40)
    p[:, :20] = torch.tensor([1.0, 0.55, 0.1]).view(3, 1, 1)
    p[:, 20:] = torch.tensor([0.05, 0.1, 0.35]).view(3, 1, 1)
    return p


def _photo() -> torch.Tensor:
    """A bright blue sky over a dark green ground, a little noise so tones spread."""
    g = torch.Generator().manual_seed(0)
    x = torch.empty(3, 30, 30)
    x[:, :15] = torch.tensor([0.45, 0.65, 0.95]).view(3, 1, 1)
    x[:, 15:] = torch.tensor([0.1, 0.3, 0.1]).view(3, 1, 1)
    return (x + 0.01 * torch.randn(x.shape, generator=g)).clamp(0, 1)


def test_bright_sky_takes_the_paintings_bright_colour() -> None:
    out = match_tones(_photo(), [_two_tone_painting()])
    sky, ground = out[:, :15].mean(dim=(1, 2)), out[:, 15:].mean(dim=(1, 2))
    # The sky is orange (red well above blue), the ground the painting's dark blue.
    assert float(sky[0]) > 0.8 and float(sky[2]) < 0.3
    assert float(ground[2]) > float(ground[0]) and float(ground.max()) < 0.45


def test_lightness_is_histogram_matched() -> None:
    photo = _photo()
    painting = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(3))
    out = match_tones(photo, [painting])
    lo, lp = srgb_to_lab(out)[0].flatten().sort().values, srgb_to_lab(painting)[0].flatten()
    q = torch.linspace(0.05, 0.95, 10, dtype=torch.float64)
    # Out-of-gamut chroma is clipped in sRGB, which moves lightness a little; within 3 L* units.
    assert torch.allclose(torch.quantile(lo, q), torch.quantile(lp, q), atol=3.0)
    assert out.shape == photo.shape and out.dtype == photo.dtype
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_blend_weights_choose_between_paintings() -> None:
    orange = torch.tensor([1.0, 0.55, 0.1]).view(3, 1, 1).expand(3, 20, 20).contiguous()
    blue = torch.tensor([0.1, 0.2, 0.9]).view(3, 1, 1).expand(3, 20, 20).contiguous()
    photo = _photo()
    mostly_orange = match_tones(photo, [orange, blue], [0.9, 0.1])
    mostly_blue = match_tones(photo, [orange, blue], [0.1, 0.9])
    assert float(mostly_orange[0].mean()) > float(mostly_blue[0].mean()) + 0.3
    with pytest.raises(ImpastoError, match="at least one target"):
        match_tones(photo, [])


def test_init_tones_through_initial_image() -> None:
    from impasto.inputs import initial_image
    from impasto.vgg.preprocess import CAFFE

    photo, painting = _photo(), _two_tone_painting()
    x = initial_image(Config(init="tones"), photo, (30, 30), CAFFE, [painting], [1.0])
    assert torch.allclose(x[0], match_tones(photo, [painting], [1.0]), atol=1e-6)
    with pytest.raises(ImpastoError, match="init 'tones' needs the style images"):
        initial_image(Config(init="tones"), photo, (30, 30), CAFFE)
