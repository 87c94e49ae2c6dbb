"""Fixtures of the batch tests (helpers are in batch_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from batch_helpers import tiny_vgg_file, write_grid


@pytest.fixture
def weights_file(tmp_path: Path) -> Path:
    return tiny_vgg_file(tmp_path / "tiny_vgg.safetensors")


@pytest.fixture
def grid(tmp_path: Path) -> tuple[Path, Path]:
    return write_grid(tmp_path)
