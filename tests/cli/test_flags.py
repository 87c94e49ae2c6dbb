"""Flags generated from Config's field metadata."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from impasto import cli
from impasto.cli.run import build_parser
from impasto.config import Config
from impasto.io import read_metadata
from impasto.jobs.flags import flag_name


def test_every_cli_field_has_one_flag_with_its_default_in_the_help() -> None:
    help_text = build_parser().format_help()
    for f in dataclasses.fields(Config):
        flag = flag_name(f)
        if f.metadata["cli"]:
            assert help_text.count(f"{flag} ") + help_text.count(f"{flag}\n") >= 1, flag
        elif f.name not in ("preset",):  # --preset exists, as the front-end option that picks one
            assert f"{flag} " not in help_text, f"{flag} is an internal knob (reachable through --config only)"


@pytest.mark.parametrize(
    "argv, field, value",
    [
        (["--steps", "7"], "steps", 7),
        (["--style-weights", "0.7,0.3"], "style_blend_weights", [0.7, 0.3]),
        (["--no-clamp"], "clamp", False),
        (["--line-search"], "lbfgs_line_search", True),
        (["--size", "full"], "size", None),
        (["--lbfgs-max-step", "none"], "lbfgs_max_step", None),
        (["--content-layers", "conv4_2,relu3_1"], "content_layers", ["conv4_2", "relu3_1"]),
        (["--region", "red=1", "--region", "blue=content", "--mask", "m.png"], "regions", ["red=1", "blue=content"]),
        (["--init", "some/start.png"], "init_file", "some/start.png"),
        (["--preserve-color", "luminance"], "preserve_color", "luminance"),
        (["--scale-steps", "3,2,1"], "scale_steps", [3, 2, 1]),
    ],
)
def test_flags_reach_the_config(argv: list[str], field: str, value: object,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*argv, "--show-config"]) == 0
    assert json.loads(capsys.readouterr().out)[field] == value


def test_line_search_turns_the_trust_region_off_and_an_explicit_one_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["--line-search", "--show-config"]) == 0
    assert json.loads(capsys.readouterr().out)["lbfgs_max_step"] is None
    assert cli.main(["--line-search", "--lbfgs-max-step", "0.1", "--show-config"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "trust region" in err


@pytest.mark.parametrize("argv", [["--size", "0"], ["--seed", "18446744073709551616"], ["--lr", "1e300"],
                                  ["--steps", "nan"], ["--scale-factor", "1.0001"], ["--tol", "-1"]])
def test_bad_numbers_are_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main([*argv, "--show-config"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and argv[0] in err


def test_front_end_flags_are_recorded_in_the_metadata(small_images: tuple[Path, Path], tiny_weights,  # type: ignore[no-untyped-def]
                                                      tmp_path: Path) -> None:
    from impasto.vgg import weights as W

    sd = {}
    tiny = tiny_weights()
    for i, (w, b) in zip(W.torchvision_indices("vgg19"), tiny.convs, strict=True):
        sd[f"features.{i}.weight"], sd[f"features.{i}.bias"] = w, b
    import torch

    wfile = tmp_path / "tiny.pth"
    torch.save(sd, wfile)
    content, style = small_images
    out = tmp_path / "o.jpg"
    argv = [str(content), str(style), "-o", str(out), "--weights", str(wfile), "--size", "32", "--start-size", "none",
            "--steps", "3", "--save-every", "2", "--print-every", "5", "--checkpoint-every", "0", "-q"]
    assert cli.main(argv) == 0
    meta = read_metadata(out)
    assert meta is not None
    assert meta["frontend"] == {"save_every": 2, "save_dir": None, "print_every": 5, "progress_gif": None,
                                "checkpoint_every": 0}
    assert meta["config"]["weights"] == str(wfile) and meta["steps"] == 3
    assert (tmp_path / "o_steps" / "step_2.png").is_file()


def test_a_saved_preset_configuration_keeps_its_preset_name(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--preset", "gatys", "--show-config"]) == 0
    saved = tmp_path / "g.json"
    saved.write_text(capsys.readouterr().out)
    assert cli.main(["--config", str(saved), "--show-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["preset"] == "gatys" and cfg["notes"]
