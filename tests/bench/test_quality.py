"""The quality judge: exact distances on hand-computed cases, its independence from the objective, its CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import impasto
from impasto.bench.quality import (
    JudgeLayers,
    QualityJudge,
    color_distance,
    gram_per_position,
    judge_images,
    main,
    overlap_with_objective,
    relative_distance,
    srgb_to_lab,
)
from impasto.config import GATYS_STYLE_LAYERS, Config
from impasto.io import save_image
from impasto.vgg import VGG_BLOCKS, load_weights
from impasto_test_support import homogeneous_vgg


def test_judge_layers_stay_out_of_the_default_objective() -> None:
    cfg = Config()
    assert overlap_with_objective(JudgeLayers(), cfg.content_layers + cfg.style_layers) == []
    # ... and the check does see an overlap when there is one: the first deep layer, block5_conv1,
    # against Gatys et al.'s five style layers (the presets'; the default has dropped relu5_1).
    assert overlap_with_objective(JudgeLayers(deep=("block5_conv1",)), GATYS_STYLE_LAYERS) == ["relu5_1"]
    assert overlap_with_objective(JudgeLayers(deep=("block5_conv1",)), cfg.style_layers) == []
    assert "relu5_1" not in JudgeLayers().all() and "relu4_2" not in JudgeLayers().all()


def test_gram_and_relative_distance_by_hand() -> None:
    f = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]])  # C=2, H=W=2
    g = gram_per_position(f)
    # (1+4+9+16)/4, (0+2+0+4)/4, (0+1+0+1)/4
    assert g.tolist() == [[7.5, 1.5], [1.5, 0.5]]
    assert relative_distance(torch.tensor([3.0, 4.0]), torch.tensor([0.0, 5.0])) == pytest.approx(math.sqrt(10) / 5)
    assert relative_distance(torch.zeros(3), torch.zeros(3)) == 0.0
    assert relative_distance(torch.ones(3), torch.zeros(3)) == math.inf


def test_scaled_images_give_exact_distances() -> None:
    x = torch.rand(3, 32, 40, generator=torch.Generator().manual_seed(1)) * 0.45 + 0.01
    judge = QualityJudge(x, x, weights=homogeneous_vgg())
    same = judge(x)
    assert same.style == 0.0 and same.deep == 0.0 and same.content == 0.0
    # Features scale by k, Gram matrices by k²: content distance |k − 1|, style and deep |k² − 1|.
    double = judge(2.0 * x)
    assert double.content == pytest.approx(1.0, abs=1e-5)
    assert double.style == pytest.approx(3.0, abs=1e-4)
    assert double.deep == pytest.approx(3.0, abs=1e-4)
    half = judge(0.5 * x)
    assert half.content == pytest.approx(0.5, abs=1e-5)
    assert half.style == pytest.approx(0.75, abs=1e-5)
    assert set(half.per_layer) == {"relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_2"}
    assert half.size == (32, 40)


def test_style_and_content_are_judged_against_their_own_images() -> None:
    x = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(2)) * 0.4 + 0.05
    y = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(3)) * 0.4 + 0.05
    judge = QualityJudge(x, y, weights=homogeneous_vgg())
    as_photo, as_painting = judge(x), judge(y)
    assert as_photo.content == 0.0 and as_photo.style > 0.0
    assert as_painting.style == 0.0 and as_painting.deep == 0.0 and as_painting.content > 0.0
    # 2·painting: Gram ×4 at every layer, so the style distance is 3 whatever the painting.
    assert judge(2.0 * y).style == pytest.approx(3.0, abs=1e-4)


def test_lab_and_colour_distance_by_hand() -> None:
    white, black, grey = (torch.full((3, 4, 4), v) for v in (1.0, 0.0, 0.5))
    lab = srgb_to_lab(white)[:, 0, 0].tolist()
    assert lab == pytest.approx([100.0, 0.0, 0.0], abs=2e-3)
    assert srgb_to_lab(black)[:, 0, 0].tolist() == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
    # sRGB 0.5 -> linear ((0.5 + 0.055) / 1.055)^2.4 = 0.214041 -> L* = 116·0.214041^(1/3) − 16 = 53.389
    assert float(srgb_to_lab(grey)[0, 0, 0]) == pytest.approx(53.38897, abs=1e-3)
    assert color_distance(white, black) == pytest.approx(100.0, abs=2e-3)
    # Half black, half white against black: means differ by L* 50, variance 50² on L* only:
    # d² = 50² + tr(Σ) = 2500 + 2500.
    half = torch.cat([torch.zeros(3, 2, 4), torch.ones(3, 2, 4)], dim=1)
    assert color_distance(half, black) == pytest.approx(math.sqrt(5000.0), abs=5e-3)
    assert color_distance(half, half.flip(1)) == pytest.approx(0.0, abs=1e-4)


def test_size_option_judges_at_one_long_side() -> None:
    x = torch.rand(3, 48, 64, generator=torch.Generator().manual_seed(4)) * 0.4
    judge = QualityJudge(x, x, weights=homogeneous_vgg(), size=32)
    s = judge(x)
    assert s.size == (24, 32) and s.content == 0.0 and s.style == 0.0


def _tiny_file(path: Path) -> Path:
    w = homogeneous_vgg()
    state: dict[str, torch.Tensor] = {}
    i = 0
    for n in VGG_BLOCKS["vgg19"]:
        for _ in range(n):
            conv_w, conv_b = w.convs[len(state) // 2]
            state[f"features.{i}.weight"], state[f"features.{i}.bias"] = conv_w.contiguous(), conv_b
            i += 2
        i += 1
    save_file(state, str(path))
    return path


def test_cli_writes_json_and_plot_matching_the_library(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    g = torch.Generator().manual_seed(5)
    paths = []
    for name in ("content", "style", "a", "b"):
        p = tmp_path / f"{name}.png"
        save_image(torch.rand(3, 32, 48, generator=g), p)
        paths.append(p)
    weights = _tiny_file(tmp_path / "tiny.safetensors")
    out_json, out_png = tmp_path / "q" / "scores.json", tmp_path / "q" / "plot.png"
    rc = main([*map(str, paths), "--json", str(out_json), "--plot", str(out_png), "--weights", str(weights),
               "--seconds", "12", "30.5", "--labels", "fast", "slow", "--reference", "1"])
    assert rc == 0
    doc = json.loads(out_json.read_text())
    lib = judge_images(paths[0], paths[1], paths[2:], weights=load_weights(weights))
    assert [r["label"] for r in doc["results"]] == ["fast", "slow"]
    assert [r["seconds"] for r in doc["results"]] == [12.0, 30.5]
    for row, s in zip(doc["results"], lib):
        assert row["style"] == s.style and row["content"] == s.content and row["color"] == s.color
        assert row["style"] > 0 and row["content"] > 0
    assert doc["judge"]["deep"] == ["relu5_2"]
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out_png.stat().st_size > 5000


def test_cli_refuses_bad_input_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(impasto.__file__).resolve().parents[1]))
    r = subprocess.run([sys.executable, "-m", "impasto.bench", "quality", "nope.png", "nope2.png", "x.png"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert r.returncode == 2
    assert r.stderr.strip() == "impasto: error: no such image: nope.png"
    # Bare `python -m impasto.bench` and `... perf` are still the speed benchmark (in-process: argparse's
    # --help exits 0 after printing perf's options).
    from impasto.bench.__main__ import main as bench_main

    for args in (["--help"], ["perf", "--help"]):
        with pytest.raises(SystemExit) as ex:
            bench_main(args)
        assert ex.value.code == 0
        assert "--ttq-size" in capsys.readouterr().out
