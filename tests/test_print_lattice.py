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


def test_variants_join_overrides_and_take_none() -> None:
    from impasto.config import Config

    script = load_script("print_lattice")
    base = Config()
    cfg = script.variant_config(base, "start_size=none+init=content+steps=40")
    assert (cfg.start_size, cfg.init, cfg.steps) == (None, "content", 40)
    assert script.variant_config(cfg, "pooling=avg").pooling == "avg"
    assert script.variant_config(base, "style_max_zoom=1").style_max_zoom == 1.0
    assert script.variant_config(base, "default") is base
    layers = script.variant_config(base, "style_layers=relu2_1,relu3_1")
    assert layers.style_layers == ("relu2_1", "relu3_1")


def test_make_testbed_crops_the_two_pictures(tmp_path: Path) -> None:
    script = load_script("print_lattice")
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    sources = {"rocket.jpg": (427, 640), "starry_night.jpg": (640, 1024)}
    for name, (h, w) in sources.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(images / name.replace(".jpg", ".png"))
        (images / name.replace(".jpg", ".png")).rename(images / name)  # the crops read by name, whatever the format
    assert script.main(["--make-testbed", str(tmp_path / "bed"), "--images", str(images)]) == 0
    for role, (name, (left, top, right, bottom)) in script.TESTBED.items():
        with Image.open(tmp_path / "bed" / f"testbed_{role}.png") as crop, Image.open(images / name) as src:
            assert crop.size == (right - left, bottom - top)
            assert np.array_equal(np.asarray(crop), np.asarray(src.convert("RGB").crop((left, top, right, bottom))))
