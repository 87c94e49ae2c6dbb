"""The benchmark's FLOP counter, table and a tiny run of both tools on the same problem."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from impasto.bench.perf import (
    Judge,
    _pastiche_rgb,
    format_table,
    matmul_gflops,
    pastiche_config,
    step_flops,
    worker_steps,
)


def test_flops_of_a_tiny_stack_are_exact() -> None:
    # relu1_1 at 4x4: conv1_1 only (3 -> 64 channels, 3x3), plus its Gram matrix.
    f = step_flops(4, 4, content_layers=(), style_layers=("relu1_1",))
    assert f.conv_forward == 2 * 3 * 64 * 9 * 16 == 55296
    assert f.conv_backward == f.conv_forward
    assert f.gram == 4 * 64 * 64 * 16
    # relu2_1 at 9x9 (odd: pooling floors to 4x4): conv1_1, conv1_2 at 9x9, conv2_1 at 4x4.
    g = step_flops(9, 9, content_layers=("relu2_1",), style_layers=())
    assert g.conv_forward == 2 * 9 * 81 * (3 * 64 + 64 * 64) + 2 * 9 * 16 * 64 * 128
    assert g.gram == 0 and g.total == 2 * g.conv_forward


def test_flops_of_the_pastiche_objective_match_the_issue() -> None:
    # VGG19 to relu5_1, forward plus backward to the input: about 95 GFLOP at 256 px, 380 at 512.
    assert round(step_flops(256, 256).conv / 1e9, 1) == 94.7
    assert round(step_flops(512, 512).conv / 1e9, 1) == 378.7
    assert step_flops(512, 512).conv == 4 * step_flops(256, 256).conv


def test_matmul_rate_is_positive() -> None:
    assert 0.1 < matmul_gflops(256, 2) < 1e6


def test_table_formatting() -> None:
    row = {"size": 256, "pastiche_s": 0.84, "impasto_s": 0.6, "ratio": 0.6 / 0.84, "gflop": 94.7,
           "bound_s": 0.57, "impasto_frac": 0.95, "pastiche_frac": 0.6786, "pastiche_mib": 700.0,
           "impasto_mib": 650.4}
    lines = format_table([row], 166.0).splitlines()
    assert "impasto/pastiche" in lines[0] and "bound s/step" in lines[0]
    assert lines[2].split() == ["256", "0.840", "0.600", "0.71", "94.7", "0.570", "95.0%", "67.9%", "700", "650"]
    assert lines[3].endswith("/ 166.0 GFLOP/s (fp32 torch.mm)")


def test_pastiche_config_is_pastiches_objective() -> None:
    cfg = pastiche_config(64, "cpu")
    assert cfg.style_layer_weights == (10 / 64**2, 10 / 128**2, 10 / 256**2, 10 / 512**2, 10 / 512**2)
    assert (cfg.content_weight, cfg.gram_norm, cfg.style_loss, cfg.tv_weight) == (0.01, "hw", "mse", 0.0)
    assert cfg.start_size is None and not cfg.clamp and cfg.lbfgs_history == 100


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pastiche") is None, reason="pastiche is not installed")
def test_both_tools_run_and_optimise_the_same_objective(tmp_path: Path) -> None:
    from pastiche.pastiche import PasticheArtist

    from impasto.bench.perf import prepare_inputs

    res = {t: worker_steps(t, 32, steps=1, warmup=1, device="cpu", inputs=tmp_path) for t in ("pastiche", "impasto")}
    for r in res.values():
        assert r["steps"] == 1 and len(r["step_times"]) == 2 and r["sec_per_step"] > 0 and r["peak_mib"] > 0
    # Same pixels, same objective, same optimiser: the first step starts from the same loss.
    assert res["impasto"]["losses"][0] == pytest.approx(res["pastiche"]["losses"][0], rel=1e-3)
    # The shared judge scores pastiche's own pixels as pastiche does.
    content, style = prepare_inputs(32, tmp_path)
    artist = PasticheArtist(str(content), [str(style)], device="cpu", style_size=32)
    judge = Judge(content, style, 32, "cpu")
    assert judge(_pastiche_rgb(artist)) == pytest.approx(artist.loss, rel=1e-3)
    rgb = _pastiche_rgb(artist)
    assert rgb.shape == (3, 32, 32) and 0.0 <= float(rgb.min()) and float(rgb.max()) <= 1.0
