"""Tile grid and its moving borders, the memory model with exact numbers on the tiny VGG, the seam figure."""

from __future__ import annotations

import math

import pytest
import torch

from impasto.errors import ImpastoError
from impasto.tiling.grid import TileSchedule, coverage, cuts, tile_grid
from impasto.tiling.memory import (
    activation_bytes,
    estimate_tiled,
    estimate_whole,
    network_bytes,
    pair_bytes,
    plan_scale,
    target_bytes,
)
from impasto.tiling.seams import energy_profiles, seam_figure
from impasto.units import format_bytes, parse_memory
from impasto.vgg import VGGFeatures
from impasto_test_support import tiny_vgg

CONTENT, STYLE = ["relu4_2"], ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def _model(pooling: str = "max") -> VGGFeatures:
    return VGGFeatures(tiny_vgg(), CONTENT + STYLE, pooling)


# -- grid ---------------------------------------------------------------------------------------------
def test_cuts_merge_pieces_narrower_than_the_alignment() -> None:
    assert cuts(100, 32, 0, 16) == [0, 32, 64, 100]  # the 4-px piece after 96 joins the last tile
    assert cuts(100, 32, 16, 16) == [0, 16, 48, 80, 100]
    assert cuts(20, 32, 0, 16) == [0, 20]
    with pytest.raises(ValueError):
        cuts(100, 24, 0, 16)


def test_tiles_read_their_halo_clipped_to_the_picture() -> None:
    tiles = tile_grid(48, 64, 24, 12, 4)
    assert [t.core for t in tiles[:2]] == [(0, 24, 0, 24), (0, 24, 24, 48)]
    assert tiles[1].net == (0, 36, 12, 60) and tiles[1].read == tiles[1].net
    assert tile_grid(48, 64, 24, 0, 4)[0].read == (0, 25, 0, 25)  # no halo: one more pixel for TV


@pytest.mark.parametrize("mode", ["staggered", "random"])
def test_borders_move_every_step_and_tiles_cover_the_picture_once(mode: str) -> None:
    sched = TileSchedule(100, 150, 64, 80, 16, mode, seed=7)
    offsets = [sched.offset(k) for k in range(12)]
    assert len(set(offsets)) >= 4
    if mode == "staggered":  # consecutive steps never share a border line
        for k in range(11):
            assert offsets[k][0] != offsets[k + 1][0] and offsets[k][1] != offsets[k + 1][1]
    for k in range(12):
        tiles = sched.tiles(k)
        assert all(c == 1 for row in coverage(100, 150, tiles) for c in row)
        assert all(t.core[0] % 16 == 0 and t.core[2] % 16 == 0 for t in tiles)
    assert TileSchedule(100, 150, 64, 80, 16, mode, seed=7).offset(5) == offsets[5]  # a function of k alone
    with pytest.raises(ImpastoError, match="tile schedule"):
        TileSchedule(10, 10, 16, 0, 16, "spiral")


# -- sizes with units ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [("1.5GiB", 3 * 2**29), ("512MiB", 2**29), ("2 GB", 2 * 10**9), ("4096B", 4096),
                                         ("1kb", 1000), ("3KiB", 3072), ("0.5TiB", 2**39), ("1TB", 10**12)])
def test_parse_memory(text: str, value: int) -> None:
    assert parse_memory(text) == value


@pytest.mark.parametrize("text", ["12", "1.5 GiBs", "-1GiB", "0MiB", "abc", "1e3MiB", "", "GiB"])
def test_parse_memory_refuses_in_one_line(text: str) -> None:
    with pytest.raises(ImpastoError) as err:
        parse_memory(text)
    assert str(err.value).startswith("max_memory") and "\n" not in str(err.value)


def test_format_bytes() -> None:
    assert (format_bytes(12), format_bytes(1536), format_bytes(3 * 2**30)) == ("12 B", "1.5 KiB", "3.0 GiB")


# -- the memory model, by hand on the tiny VGG (widths 4, 5, 6, 7, 7) at 64x48 --------------------------
def test_network_bytes_by_hand() -> None:
    # (out·in·9 + out) per conv up to conv5_1: 3->4, 4->4 | 4->5, 5->5 | 5->6, 3x 6->6 | 6->7, 3x 7->7 | 7->7
    params = (4 * 3 * 9 + 4) + (4 * 4 * 9 + 4) + (5 * 4 * 9 + 5) + (5 * 5 * 9 + 5) + (6 * 5 * 9 + 6) \
        + 3 * (6 * 6 * 9 + 6) + (7 * 6 * 9 + 7) + 3 * (7 * 7 * 9 + 7) + (7 * 7 * 9 + 7)
    assert network_bytes(_model()) == 4 * params == 16472


def test_activation_bytes_by_hand() -> None:
    h, w = 48, 64
    inputs = 3 * 3 * h * w * 4
    relus = 4 * (2 * 4 * h * w + 2 * 5 * (h // 2) * (w // 2) + 4 * 6 * (h // 4) * (w // 4)
                 + 4 * 7 * (h // 8) * (w // 8) + 7 * (h // 16) * (w // 16))
    pools = 4 * (4 * 24 * 32 + 5 * 12 * 16 + 6 * 6 * 8 + 7 * 3 * 4)
    indices = 2 * pools  # int64 per pooled value
    largest = 4 * 4 * h * w
    expected = inputs + relus + pools + indices + 3 * largest
    model = _model()
    assert activation_bytes(model, h, w) == expected == 464064
    # The ReLU/pooling/indices part is what VGGFeatures.activation_mib already counted.
    assert model.activation_mib(h, w) * 2**20 == relus + pools + indices
    assert activation_bytes(_model("avg"), h, w) == expected - indices


def test_estimates_by_hand() -> None:
    model = _model()
    h, w = 48, 64
    targets = 4 * 7 * 6 * 8 + 4 * (4**2 + 5**2 + 6**2 + 7**2 + 7**2)
    assert target_bytes(model, CONTENT, STYLE, h, w) == targets == 2044
    assert pair_bytes(h, w) == 2 * 3 * h * w * 4
    whole = estimate_whole(model, CONTENT, STYLE, h, w, 100)
    assert (whole.network, whole.pixels, whole.history, whole.targets, whole.activations) == (
        16472, 11 * 3 * h * w * 4, 100 * 73728, 2044, 464064)
    assert whole.total == 8260884
    tiled = estimate_tiled(model, CONTENT, STYLE, 480, 640, 5, 32, 80)
    assert tiled.pixels == 13 * 3 * 480 * 640 * 4 and tiled.history == 5 * 2 * 3 * 480 * 640 * 4
    assert tiled.activations == activation_bytes(model, 192, 192)  # crop = 32 + 2·80


def test_plan_keeps_the_whole_image_when_it_fits() -> None:
    model = _model()
    whole = estimate_whole(model, CONTENT, STYLE, 480, 640, 100)
    plan = plan_scale(model, CONTENT, STYLE, 480, 640, whole.total, 100)
    assert not plan.tiled and plan.pairs == 100 and plan.estimate == whole


def test_plan_caps_the_history_then_picks_the_largest_tile_that_fits() -> None:
    model = _model()
    h, w, budget = 480, 640, 62 * 2**20
    plan = plan_scale(model, CONTENT, STYLE, h, w, budget, 100)
    fixed = estimate_tiled(model, CONTENT, STYLE, h, w, 0, 16, 80).total
    assert (budget - fixed) // 2 // pair_bytes(h, w) == 0 and plan.pairs == 1  # at least one pair
    assert plan.tiled and plan.tile is not None and plan.tile % 16 == 0 and plan.halo == 80
    assert plan.estimate.total <= budget
    assert estimate_tiled(model, CONTENT, STYLE, h, w, plan.pairs, plan.tile + 16, 80).total > budget
    assert plan.whole.total > budget
    # A looser budget keeps more pairs (and the tiles grow).
    loose = plan_scale(model, CONTENT, STYLE, h, w, 80 * 2**20, 100)
    assert loose.pairs > plan.pairs


def test_plan_refuses_a_budget_below_the_fixed_part() -> None:
    with pytest.raises(ImpastoError) as err:
        plan_scale(_model(), CONTENT, STYLE, 480, 640, 40 * 2**20, 100)
    text = str(err.value)
    assert text.startswith("max_memory 40.0 MiB is below the") and "\n" not in text


# -- the seam figure ----------------------------------------------------------------------------------
def _texture(seed: int, n: int = 256) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(n) / n, torch.arange(n) / n, indexing="ij")
    smooth = 0.5 + 0.2 * torch.sin(2 * math.pi * (1.3 * xx + 0.7 * yy))
    return smooth.expand(3, n, n) + 0.05 * torch.randn(3, n, n, generator=g)


def _with_seams(img: torch.Tensor, step: float, tile: int = 64) -> torch.Tensor:
    out = img.clone()
    n = img.shape[1] // tile
    for i in range(n):
        for j in range(n):
            out[:, tile * i : tile * (i + 1), tile * j : tile * (j + 1)] += step * ((i + j) % 2)
    return out


BORDERS = [64, 128, 192]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seam_figure_is_one_without_a_seam(seed: int) -> None:
    fig = seam_figure(_texture(seed), BORDERS, BORDERS)
    assert fig.ratio == pytest.approx(1.0, abs=0.05)
    assert fig.band_count == 3 * 256 * 2 and fig.interior_count == 2 * 255 * 256 - fig.band_count


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seam_figure_sees_a_step_and_a_smear(seed: int) -> None:
    img = _texture(seed)
    assert seam_figure(_with_seams(img, 0.03), BORDERS, BORDERS).ratio > 1.1
    assert seam_figure(_with_seams(img, 0.1), BORDERS, BORDERS).ratio > 2.0
    blurred = img.clone()
    for b in BORDERS:  # a smeared join: the two pixels either side of the border made equal
        blurred[:, b - 1 : b + 1, :] = blurred[:, b - 1 : b + 1, :].mean(dim=1, keepdim=True)
        blurred[:, :, b - 1 : b + 1] = blurred[:, :, b - 1 : b + 1].mean(dim=2, keepdim=True)
    assert seam_figure(blurred, BORDERS, BORDERS).ratio < 0.2
    # Measured away from where the seams are, the figure stays near 1.
    assert seam_figure(_with_seams(img, 0.1), [96, 160], [96, 160]).ratio == pytest.approx(1.0, abs=0.1)
    with pytest.raises(ValueError):
        seam_figure(img, [], [])


def test_seam_figure_known_values_from_profiles() -> None:
    # rows i*i, constant along a row: down differences 1, 3, 5 (squared 1, 9, 25, five per row), none across
    img = (torch.arange(4.0) ** 2).view(1, 4, 1).expand(1, 4, 5)
    prof = energy_profiles(img.unsqueeze(0))
    assert prof.down.tolist() == [5.0, 45.0, 125.0] and prof.across.tolist() == [0.0] * 4
    fig = seam_figure(prof, [2], [])
    # band: the difference crossing row 2 (9 per pixel, 5 of them); interior: 5 + 125 over 10 down and
    # 16 zeros across
    assert (fig.band, fig.band_count, fig.interior_count) == (9.0, 5, 26)
    assert fig.interior == pytest.approx(130 / 26) and fig.ratio == pytest.approx(9 / 5)
    assert seam_figure(img, [2], []) == fig
    # a step at every 64th row and column of a texture is the profile's largest difference
    tex = energy_profiles(_with_seams(_texture(3, n=192), 0.05)[:, :, :160])
    assert (tex.height, tex.width) == (192, 160)
    assert int(tex.down.argmax()) in (63, 127) and int(tex.across.argmax()) in (63, 127)
