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
        {"style_max_zoom": 0.1},
        {"style_max_zoom": float("inf")},
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


# The configuration as impasto 0.1 wrote it into an output's metadata before the Config was frozen:
# preset name and departure notes travelled in a free-form "extra" object.
OLD_01_METADATA = {
    "impasto_version": "0.1.0",
    "content": "/photos/tubingen.jpg",
    "styles": ["/paintings/starry_night.jpg"],
    "config": {
        "weights": None, "weights_format": "auto", "pooling": "avg", "content_layers": ["relu4_2"],
        "content_layer_weights": None, "style_layers": ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
        "style_layer_weights": None, "content_loss": "half_sse", "gram_norm": "none", "style_loss": "paper",
        "tv_loss": "l2", "content_weight": 1.0, "style_weight": 1000.0, "tv_weight": 0.0, "alpha": None,
        "style_blend_weights": None, "optimizer": "lbfgs", "steps": 500, "lr": None, "adam_betas": [0.9, 0.999],
        "adam_eps": 1e-08, "lbfgs_history": 100, "lbfgs_history_mib": 1024.0, "lbfgs_line_search": False,
        "lbfgs_max_step": None, "lbfgs_max_iter": 1, "restart_factor": 1000.0, "pixel_scale": 255.0,
        "clamp": False, "clamp_before_eval": False, "init": "noise", "init_file": None, "noise": "gaussian",
        "noise_scale": 0.1, "noise_mean": None, "noise_ratio": 0.6, "seed": 0, "size": 512, "style_scale": 1.0,
        "start_size": None, "scale_factor": 1.4142135623730951, "scale_steps": None, "preserve_color": "none",
        "color_match_output": False, "style_kind": "gram", "hist_weight": 1.0, "mask": None, "regions": [],
        "normalize_gradients": False, "ema": None, "tol": None, "tol_window": 10, "device": "auto",
        "recompute_activations": "auto",
        "extra": {"preset": "gatys", "departures": ["white noise is Gaussian"], "substituted": "bundled VGG19"},
    },
}


def test_0_1_metadata_still_loads() -> None:
    cfg = Config.from_dict(OLD_01_METADATA["config"])  # type: ignore[arg-type]
    assert cfg.preset == "gatys" and cfg.notes == ("white noise is Gaussian", "bundled VGG19")
    assert cfg.steps == 500 and cfg.init == "noise" and cfg.pooling == "avg" and cfg.start_size is None
    assert cfg.style_layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert cfg.max_restarts == 5 and cfg.cuda_graph is True  # fields added since take their defaults
    assert cfg.balance == "none"  # ... except the balance: the run it describes used the raw forms
    assert Config.from_dict(cfg.to_dict()) == cfg  # and the new form round-trips


def test_stored_configs_from_before_the_balance_field_keep_the_raw_forms() -> None:
    stored = Config(steps=100, init="content", style_weight=100.0).to_dict()
    del stored["balance"]
    assert Config.from_dict(stored).balance == "none"
    # A partial configuration (a user's file, the studio's form) gets today's default.
    assert Config.from_dict({"steps": 10, "style_weight": 50.0}).balance == "relative"
    assert Config.from_dict({**stored, "balance": "relative"}).balance == "relative"


@pytest.mark.parametrize(
    "data, message",
    [
        ([1, 2], "must be a JSON object"),
        (3, "must be a JSON object"),
        ("size", "must be a JSON object"),
        (None, "must be a JSON object"),
        ({"steps": "10"}, "steps must be a whole number (got '10')"),
        ({"seed": 1.5}, "seed must be a whole number or null (got 1.5)"),
        ({"seed": "1"}, "seed must be a whole number or null"),
        ({"content_weight": "x"}, "content_weight must be a number (got 'x')"),
        ({"content_weight": None}, "content_weight must be a number (got null)"),
        ({"adam_betas": [0.9]}, "adam_betas must be a list of 2 numbers (got 1 values)"),
        ({"adam_betas": ["a", "b"]}, "adam_betas must be a list of 2 numbers"),
        ({"style_layers": [1, 2]}, "style_layers must be a list of str"),
        ({"style_layer_weights": 3}, "style_layer_weights must be a list of float or null (got int)"),
        ({"scale_steps": 5}, "scale_steps must be a list of int or null"),
        ({"clamp": 1}, "clamp must be true or false (got 1)"),
        ({"seed": 18446744073709551616}, "seed must be a whole number from 0"),
        ({"lr": 1e300}, "lr must be a finite number > 0 and <= 1e+06"),
        ({"size": 0}, "size must be a whole number from 16"),
        ({"scale_factor": 1.0001, "start_size": 32, "size": 64}, "scale_factor must be between 1.01 and 16"),
        ({"bogus": 1}, "unknown configuration keys: bogus"),
    ],
)
def test_json_of_the_wrong_shape_names_the_field(data: object, message: str) -> None:
    with pytest.raises(ImpastoError) as err:
        Config.from_dict(data)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_scale_count_is_bounded() -> None:
    with pytest.raises(ImpastoError, match="at most 12"):
        Config(start_size=16, scale_factor=1.1, size=4096).scale_sizes(4096)


def test_frozen_and_validated_on_construction() -> None:
    cfg = Config()
    with pytest.raises(AttributeError):
        cfg.steps = 3  # type: ignore[misc]
    with pytest.raises(ImpastoError, match="steps"):
        Config(steps=-2)
    assert Config(content_layers=["relu1_1"]).content_layers == ("relu1_1",)  # type: ignore[arg-type]


def test_json_schema_lists_every_field_with_its_type() -> None:
    schema = Config.json_schema()
    props = schema["properties"]
    assert set(props) == set(Config().to_dict())
    assert props["steps"]["type"] == "integer" and props["optimizer"]["enum"] == ["lbfgs", "adam"]
    assert props["adam_betas"] == {**props["adam_betas"], "type": "array", "minItems": 2, "maxItems": 2}
    assert props["alpha"]["anyOf"][1] == {"type": "null"}
