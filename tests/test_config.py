"""Config validation, the coarse-to-fine pyramid and (de)serialisation."""

from __future__ import annotations

import math

import pytest

from impasto.config import Config
from impasto.errors import ImpastoError


def test_defaults_validate() -> None:
    Config().validate()


@pytest.mark.parametrize(
    "changes",
    [
        {"steps": -1},
        {"content_weight": -1.0},
        {"style_weight": float("nan")},
        {"tv_weight": -0.1},
        {"alpha": 1.5},
        {"optimizer": "sgd"},
        {"pooling": "min"},
        {"gram_norm": "x"},
        {"init": "file"},
        {"size": 3},
        {"scale_factor": 1.0},
        {"style_scale": 0.0},
        {"lr": 0.0},
        {"style_layer_weights": (1.0, 2.0)},
        {"style_blend_weights": (0.0, 0.0)},
        {"noise_ratio": 2.0},
        {"adam_betas": (1.0, 0.9)},
    ],
)
def test_bad_values_raise_one_line(changes: dict[str, object]) -> None:
    with pytest.raises(ImpastoError) as err:
        Config().replace(**changes)
    assert "\n" not in str(err.value)


def test_pyramid_single_scale_when_start_not_smaller() -> None:
    assert Config(start_size=None).scale_sizes(512) == [512]
    assert Config(start_size=512).scale_sizes(512) == [512]


def test_pyramid_sqrt2() -> None:
    assert Config(start_size=256, scale_factor=math.sqrt(2)).scale_sizes(512) == [256, 362, 512]
    sizes = Config(start_size=256, scale_factor=2.0).scale_sizes(2048)
    assert sizes == [256, 512, 1024, 2048]
    # 256 -> 384 needs two sqrt-2 steps: spaced evenly, not a tiny 256 -> 272 step.
    assert Config(start_size=256).scale_sizes(384) == [256, 314, 384]


def test_json_round_trip() -> None:
    cfg = Config(style_layers=("relu1_1", "relu3_1"), style_layer_weights=(0.5, 2.0), alpha=0.3)
    back = Config.from_dict(cfg.to_dict())
    assert back == cfg


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ImpastoError, match="unknown configuration keys: bogus"):
        Config.from_dict({"bogus": 1})


def test_effective_lr() -> None:
    assert Config(optimizer="lbfgs").effective_lr() == 1.0
    assert Config(optimizer="adam", pixel_scale=255.0).effective_lr() == pytest.approx(5.1)
    assert Config(optimizer="adam", lr=2.0).effective_lr() == 2.0
