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
