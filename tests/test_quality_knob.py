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
    cfg = Config(size=512, start_size=128, steps=100, step_ratio=0.5)
    assert [n for _, n in cfg.schedule(384, 512)] == [100, 50, 25, 12, 6]  # round(12.5) = 12 (half to even)
    assert [n for _, n in cfg.replace(quality="draft").schedule(384, 512)] == [12, 6, 3, 2, 1]
    # One scale (every preset): the ratio never applies.
    assert Config(size=256, start_size=None, steps=37, step_ratio=0.5).schedule(192, 256) == [((192, 256), 37)]
    # Explicit scale_steps win; a ratio never rounds a scale to 0 steps.
    assert [n for _, n in cfg.replace(scale_steps=(5, 4, 3, 2, 1)).schedule(384, 512)] == [5, 4, 3, 2, 1]
    assert [n for _, n in cfg.replace(steps=2, step_ratio=0.1).schedule(384, 512)] == [2, 1, 1, 1, 1]
    with pytest.raises(ImpastoError, match="step_ratio must be between 0.05 and 4"):
        Config(step_ratio=0.0)
