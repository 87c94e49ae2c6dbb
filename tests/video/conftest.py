"""Fixtures for the video tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from video_helpers import save_tiny

from impasto.vgg import VGGWeights


@pytest.fixture
def tiny_weights_file(tmp_path: Path, tiny_weights: Callable[..., VGGWeights]) -> Path:
    return save_tiny(tiny_weights(), tmp_path / "tiny_vgg19.pth")
