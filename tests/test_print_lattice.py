"""scripts/print_lattice.py's dots figure: about 1 for a picture with natural (1/k amplitude) statistics,
large where dots of one size sit on it, and its --score mode on files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from impasto_test_support import load_script

SIDE = 512


def _natural(seed: int) -> np.ndarray:
    """Random phases with a 1/k amplitude spectrum: the statistics of natural pictures."""
    rng = np.random.default_rng(seed)
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(SIDE) * SIDE, np.fft.fftfreq(SIDE) * SIDE, indexing="ij"))
    k[0, 0] = 1.0
    field = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(0.0, 1.0, (SIDE, SIDE))) / k))
    return field / field.std()


def _lattice(period: float) -> np.ndarray:
    y, x = np.mgrid[:SIDE, :SIDE]
    return np.sin(2 * np.pi * (x + y) / period) + np.sin(2 * np.pi * (x - y) / period)


def test_dots_is_about_one_for_natural_statistics_and_large_with_a_lattice() -> None:
    dots = load_script("print_lattice").dots
    natural = [dots(_natural(seed)) for seed in range(3)]
    assert all(0.7 < d < 1.6 for d in natural), natural
    dotted = dots(_natural(0) + 0.3 * _lattice(16.0))  # dots 11 px apart on each axis' diagonal
    assert dotted > 8 * max(natural)
    # A lattice coarser than the reference period is not dots at these sizes.
    assert dots(_natural(0) + 0.3 * _lattice(96.0)) < 2.0


def test_score_reads_pictures_and_writes_json(tmp_path: Path) -> None:
    script = load_script("print_lattice")
    grey = _natural(1) + 0.3 * _lattice(16.0)
    pixels = np.clip(128 + 40 * grey, 0, 255).astype(np.uint8)
    path = tmp_path / "dotted.png"
    Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(path)
    out = tmp_path / "scores.json"
    assert script.main(["--score", str(path), "--json", str(out)]) == 0
    row = json.loads(out.read_text())["images"][0]
    assert (row["width"], row["height"]) == (SIDE, SIDE)
    assert len(row["dots"]) == len(script.PLACES) and min(row["dots"]) > 5
