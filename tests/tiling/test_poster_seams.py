"""scripts/poster_seams.py: seams in a finished print at every grid of its last scale's schedule, against
grids that are never tile borders."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch
from PIL import Image

from impasto import cli, engine
from impasto.tiling.grid import TileSchedule
from impasto.tiling.seams import energy_profiles
from impasto.vgg import VGGWeights
from impasto_test_support import load_script, tight_budget

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "poster_seams.py"


def _script() -> ModuleType:
    return load_script("poster_seams")


def _texture(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(h) / h, torch.arange(w) / w, indexing="ij")
    smooth = 0.5 + 0.2 * torch.sin(2 * math.pi * (1.3 * xx + 0.7 * yy))
    return smooth.expand(3, h, w) + 0.05 * torch.randn(3, h, w, generator=g)


def test_a_seam_left_at_one_grid_stands_above_the_never_border_control() -> None:
    mod = _script()
    sched = TileSchedule(192, 256, tile=64, halo=16, unit=8)
    clean = mod.scan(energy_profiles(_texture(192, 256)), sched)
    assert clean["grids"] == 8 and len(clean["tile_ratios"]) == len(clean["control_ratios"]) == 8
    assert clean["tile_max"] == pytest.approx(1.0, abs=0.08)
    assert clean["median_over_control_median"] == pytest.approx(1.0, abs=0.05)
    # a step of 0.1 along evaluation 5's borders: only that grid sees it
    img = _texture(192, 256)
    rows, cols = mod.grid_borders(sched, 5)
    for r in rows:
        img[:, r:, :] += 0.1
    for c in cols:
        img[:, :, c:] += 0.1
    seamed = mod.scan(energy_profiles(img), sched)
    assert seamed["worst_k"] == 5 and seamed["tile_max"] > 1.3
    assert seamed["control_max"] < 1.1 and seamed["tile_median"] < 1.1


def test_crossings_spread_over_the_grid() -> None:
    mod = _script()
    assert mod.crossings([10, 20], [5, 15, 25], 3) == [(10, 5), (20, 5), (20, 25)]
    assert mod.crossings([10], [5], 3) == [(10, 5)]
    assert mod.crossings([], [5], 3) == []


def test_a_tiled_cli_result_is_scanned_from_its_own_metadata(
        small_images: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        tiny_weights: Callable[..., VGGWeights], capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(engine, "load_weights", lambda path=None, fmt="auto": tiny_weights())
    content, style = small_images
    out = tmp_path / "print.png"
    assert cli.main([str(content), str(style), "-o", str(out), "--size", "128", "--start-size", "none",
                     "--device", "cpu", "-q", "--lbfgs-history", "3", "--content-layers", "relu2_2",
                     "--style-layers", "relu1_1,relu2_1,relu3_1", "--steps", "2",
                     "--max-memory", tight_budget(small_images)]) == 0
    js, crops = tmp_path / "seams.json", tmp_path / "crops.png"
    assert _script().main([str(out), str(content), str(style), "--json", str(js), "--crops", str(crops),
                           "--crop", "24"]) == 0
    data = json.loads(js.read_text())
    assert data["size"] == [96, 128] and data["unit"] == 4 and data["grids"] == data["tile"] // 4
    assert 0.5 < data["tile_median"] < 2.0 and 0.5 < data["control_median"] < 2.0
    with Image.open(crops) as im:
        assert im.size[1] == 24 and im.size[0] == 24 * len(data["crossings"]) + 8 * (len(data["crossings"]) - 1)
    # a result that ran whole has no borders; an auto budget is not guessed: one line, exit 2 each
    whole = tmp_path / "whole.png"
    for flags, said in ((["--max-memory", "1GiB"], "ran whole under its budget"),
                        ([], "ran with --max-memory auto")):
        assert cli.main([str(content), str(style), "-o", str(whole), "--size", "128", "--start-size", "none",
                         "--device", "cpu", "-q", "--steps", "1", *flags]) == 0
        capsys.readouterr()
        assert _script().main([str(whole), str(content), str(style)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], err
