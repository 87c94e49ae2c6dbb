"""The neural-style stand-in (scripts/neural_style_emulation.sh) resolves to neural-style's documented
defaults whatever impasto's own defaults are: the stand-ins of the quality protocol's test set must not
move when the default does (they once would have lost relu5_1 with it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "neural_style_emulation.sh"


def _resolved(tmp_path: Path, *extra: str) -> dict[str, object]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run(["sh", str(SCRIPT), "c.png", "s.png", str(tmp_path / "out.png"), *extra, "--show-config"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_stand_in_is_neural_styles_defaults(tmp_path: Path) -> None:
    cfg = _resolved(tmp_path)
    assert cfg["style_layers"] == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert cfg["content_layers"] == ["relu4_2"]
    assert cfg["style_layer_weights"] is None and cfg["pooling"] == "max"
    assert (cfg["content_weight"], cfg["style_weight"], cfg["tv_weight"]) == (5.0, 100.0, 1e-3)
    assert (cfg["content_loss"], cfg["gram_norm"], cfg["style_loss"], cfg["balance"]) == ("mse", "chw", "mse", "none")
    assert (cfg["size"], cfg["start_size"], cfg["steps"]) == (512, None, 1000)
    assert (cfg["optimizer"], cfg["lbfgs_history"], cfg["lbfgs_max_iter"]) == ("lbfgs", 100, 1)
    assert cfg["lbfgs_line_search"] is False and cfg["lbfgs_max_step"] is None and cfg["lbfgs_history_mib"] is None
    assert (cfg["init"], cfg["noise"], cfg["noise_scale"], cfg["seed"]) == ("noise", "gaussian", 4e-6, 0)
    assert cfg["clamp"] is False and cfg["normalize_gradients"] is False and cfg["restart_factor"] is None
    assert (cfg["style_kind"], cfg["preserve_color"], cfg["ema"], cfg["tol"]) == ("gram", "none", None, None)


@pytest.mark.parametrize("flag", [["--style-weight", "1"], ["--steps", "3"]])
def test_later_flags_reach_impasto(tmp_path: Path, flag: list[str]) -> None:
    # The script passes further flags on (how --show-config gets there); the last one given wins.
    cfg = _resolved(tmp_path, *flag)
    key = flag[0][2:].replace("-", "_")
    assert cfg[key] == type(cfg[key])(flag[1])
