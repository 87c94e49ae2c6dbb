"""The quality knob scales every scale's steps and nothing else."""

from __future__ import annotations

import pytest

from impasto.config import Config
from impasto.errors import ImpastoError


def test_quality_scales_steps_per_scale() -> None:
    base = Config(size=512, start_size=128, scale_steps=(80, 40, 24, 16, 8))
    sizes = [s for s, _ in base.schedule(384, 512)]
    assert [n for _, n in base.schedule(384, 512)] == [80, 40, 24, 16, 8]
    draft = base.replace(quality="draft")
    assert [n for _, n in draft.schedule(384, 512)] == [10, 5, 3, 2, 1]
    assert [s for s, _ in draft.schedule(384, 512)] == sizes
    fine = base.replace(quality="fine")
    assert [n for _, n in fine.schedule(384, 512)] == [160, 80, 48, 32, 16]
    # A scale given 0 steps stays at 0; one given 1 keeps at least 1.
    tiny = Config(size=64, start_size=32, scale_factor=2.0, scale_steps=(0, 1), quality="draft")
    assert [n for _, n in tiny.schedule(64, 64)] == [0, 1]


def test_quality_is_validated_and_defaults_to_standard() -> None:
    assert Config().quality == "standard"
    with pytest.raises(ImpastoError, match="quality must be one of draft, standard, fine"):
        Config(quality="ultra")
    assert Config.from_dict({"quality": "fine"}).quality == "fine"


def test_step_ratio_spreads_steps_towards_the_cheap_scales() -> None:
    cfg = Config(size=512, start_size=128, steps=100, step_ratio=0.5, min_scale_steps=1)
    assert [n for _, n in cfg.schedule(384, 512)] == [100, 50, 25, 12, 6]  # round(12.5) = 12 (half to even)
    assert [n for _, n in cfg.replace(quality="draft").schedule(384, 512)] == [12, 6, 3, 2, 1]
    # One scale (every preset): the ratio never applies.
    assert Config(size=256, start_size=None, steps=37, step_ratio=0.5).schedule(192, 256) == [((192, 256), 37)]
    # Explicit scale_steps win; a ratio never rounds a scale to 0 steps.
    assert [n for _, n in cfg.replace(scale_steps=(5, 4, 3, 2, 1)).schedule(384, 512)] == [5, 4, 3, 2, 1]
    assert [n for _, n in cfg.replace(steps=2, step_ratio=0.1).schedule(384, 512)] == [2, 1, 1, 1, 1]
    with pytest.raises(ImpastoError, match="step_ratio must be between 0.05 and 4"):
        Config(step_ratio=0.0)


def test_min_scale_steps_floors_the_ratio_but_never_raises_steps() -> None:
    cfg = Config(size=512, start_size=128, steps=100, step_ratio=0.5, min_scale_steps=16)
    assert [n for _, n in cfg.schedule(384, 512)] == [100, 50, 25, 16, 16]
    # The quality knob scales the floored schedule, as it scales any other.
    assert [n for _, n in cfg.replace(quality="draft").schedule(384, 512)] == [12, 6, 3, 2, 2]
    # A run asking for fewer steps than the floor keeps its own count at every scale.
    assert [n for _, n in cfg.replace(steps=10).schedule(384, 512)] == [10, 10, 10, 10, 10]
    # A growing ratio is untouched by the floor.
    assert [n for _, n in cfg.replace(steps=4, step_ratio=2.0).schedule(384, 512)] == [4, 8, 16, 32, 64]
    with pytest.raises(ImpastoError, match="min_scale_steps must be a whole number from 1"):
        Config(min_scale_steps=0)


def test_default_schedule_at_512_and_at_print_size() -> None:
    """The default spends its steps where they are cheap: 40, 27, 18 at 256, 362, 512 px (2/3 per scale),
    and a print's fine scales keep 16 each."""
    assert Config().schedule(384, 512) == [((192, 256), 40), ((272, 362), 27), ((384, 512), 18)]
    poster = Config(size=6000).schedule(4000, 6000)
    assert [n for _, n in poster] == [40, 27, 18] + [16] * 8
    assert poster[-1][0] == (4000, 6000)


def test_palette_start_has_the_paintings_colour_statistics() -> None:
    import torch

    from impasto.inputs import initial_image, palette_start
    from impasto.losses.color import color_stats
    from impasto.vgg import CAFFE

    g = torch.Generator().manual_seed(0)
    content = 0.4 + 0.1 * torch.rand(3, 16, 20, generator=g)
    a = 0.3 + 0.2 * torch.rand(3, 12, 12, generator=g)
    b = 0.5 + 0.1 * torch.rand(3, 12, 12, generator=g)
    mu_a, cov_a = color_stats(a)
    start = palette_start(content, [a])
    mu, cov = color_stats(start)
    assert torch.allclose(mu, mu_a, atol=1e-6) and torch.allclose(cov, cov_a, atol=1e-6)
    # Two paintings, weighted 3:1: the mixture's moments (equal-size images: their pixels pooled 3:1).
    mix = palette_start(content, [a, b], [0.75, 0.25])
    pooled = torch.cat([a, a, a, b], dim=2)
    mu_p, cov_p = color_stats(pooled)
    mu_m, cov_m = color_stats(mix)
    assert torch.allclose(mu_m, mu_p, atol=1e-6) and torch.allclose(cov_m, cov_p, atol=1e-6)
    cfg = Config(init="palette")
    x = initial_image(cfg, content, (8, 10), CAFFE, styles=[a])
    assert x.shape == (1, 3, 8, 10)
    with pytest.raises(ImpastoError, match="init 'palette' needs the style images"):
        initial_image(cfg, content, (8, 10), CAFFE)


def test_palette_start_through_the_engine(small_images: tuple, tiny_weights) -> None:  # type: ignore[type-arg,no-untyped-def]
    import torch

    from impasto.engine import StyleTransfer
    from impasto.inputs import palette_start
    from impasto.io import resize_to

    content, style = small_images
    st = StyleTransfer(content, [style], Config(size=32, start_size=None, steps=1, init="palette"),
                       weights=tiny_weights())
    want = resize_to(palette_start(st.inputs.content, st.inputs.styles, st.inputs.blend), st.sizes[0])
    assert torch.allclose(st.initial[0], want.clamp(0, 1), atol=1e-6)
