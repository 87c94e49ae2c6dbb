"""The copied-object figure (impasto.bench.copies) on hand-made feature maps and a tiny random VGG."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from impasto.bench.copies import CopyJudge, copy_score_features, self_match, unit_rows
from impasto.vgg import VGGWeights


def _random_features(seed: int, c: int = 32, h: int = 12, w: int = 16) -> torch.Tensor:
    return torch.rand(c, h, w, generator=torch.Generator().manual_seed(seed)) ** 4  # sparse, non-negative


def test_the_painting_itself_is_all_copied_and_an_unrelated_image_not_at_all() -> None:
    paint = _random_features(1)
    assert copy_score_features(paint, paint).fraction == 1.0
    other = torch.zeros(32, 12, 16)
    other[0] = 1.0  # one channel only: far from every painting position
    s = copy_score_features(other, paint)
    assert s.fraction == 0.0 and not bool(s.copied.any())


def test_a_pasted_block_scores_its_area_exactly_at_the_feature_level() -> None:
    paint = _random_features(2)
    result = _random_features(3)
    result[:, 2:8, 4:12] = paint[:, 5:11, 1:9]  # 6 x 8 of 12 x 16 positions
    s = copy_score_features(result, paint)
    assert s.fraction == pytest.approx(48 / 192)
    assert bool(s.copied[2:8, 4:12].all())
    # Each copied position points at its source in the painting (row-major index in the 12 x 16 grid).
    assert int(s.source[2, 4]) == 5 * 16 + 1


def test_a_painting_that_repeats_itself_exactly_has_nothing_to_copy() -> None:
    tile = _random_features(4, h=3, w=4)
    paint = tile.repeat(1, 4, 4)  # a wallpaper: every place recurs 3 positions away
    s = copy_score_features(paint, paint, exclude=2)
    assert s.threshold == pytest.approx(1.0)
    assert s.fraction == 0.0  # repeating the painting's texture is not copying an object


def test_self_match_ignores_the_neighbourhood_by_hand() -> None:
    f = torch.zeros(2, 1, 4)
    f[0, 0, 0] = f[0, 0, 1] = 1.0  # positions 0 and 1 identical, neighbours
    f[1, 0, 2] = f[1, 0, 3] = 1.0  # positions 2 and 3 identical, neighbours
    rows = unit_rows(f)
    assert self_match(rows, (1, 4), exclude=0).tolist() == [1.0, 1.0, 1.0, 1.0]
    assert self_match(rows, (1, 4), exclude=1).tolist() == [0.0, 0.0, 0.0, 0.0]
    assert self_match(rows, (1, 4), exclude=3).tolist() == [-1.0, -1.0, -1.0, -1.0]  # nothing elsewhere


def test_judge_runs_a_network_end_to_end(tiny_weights: Callable[..., VGGWeights]) -> None:
    g = torch.Generator().manual_seed(5)
    paint = torch.rand(3, 64, 96, generator=g)
    judge = CopyJudge(paint, weights=tiny_weights())
    assert judge(paint).fraction == 1.0  # a random tiny VGG sees little else: only the plumbing is tested
    s = judge(torch.linspace(0, 1, 96).expand(3, 64, 96).clone())
    assert tuple(s.copied.shape) == (4, 6) and s.painting_grid == (4, 6)  # relu5_1: stride 16


@pytest.mark.slow
def test_real_vgg_flags_a_paste_and_not_neural_styles_picture(real_weights: VGGWeights) -> None:
    """The calibration the threshold was set on (docs/perf/copies_512.json), at 512 px."""
    from impasto.io import load_image, resize_long_side
    from impasto_test_support import SHARED_IMAGES

    reference = SHARED_IMAGES.parent / "reference" / "tubingen_starry.png"
    if not (SHARED_IMAGES / "starry_night.jpg").is_file() or not reference.is_file():
        pytest.skip("needs ../shared/images and ../shared/reference")
    judge = CopyJudge(load_image(SHARED_IMAGES / "starry_night.jpg").rgb, weights=real_weights)
    assert judge(load_image(reference).rgb).fraction < 0.005
    photo = resize_long_side(load_image(SHARED_IMAGES / "tubingen.jpg").rgb, 512).clone()
    paint = resize_long_side(load_image(SHARED_IMAGES / "starry_night.jpg").rgb, 512)
    photo[:, 64:256, 128:384] = paint[:, 0:192, 256:512]  # a quarter of the picture: the moon and stars
    assert 0.1 < judge(photo).fraction <= 0.25
