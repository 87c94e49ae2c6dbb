"""The command line's side of print size: the --print-every line reports tiles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from impasto import cli, engine
from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.tiling.memory import estimate_tiled
from impasto.vgg import VGGWeights
from impasto_test_support import tiny_vgg

LAYERS = ["--content-layers", "relu2_2", "--style-layers", "relu1_1,relu2_1,relu3_1"]
ARGS = ["--size", "128", "--start-size", "none", "--device", "cpu", "-q", "--lbfgs-history", "3", *LAYERS]


@pytest.fixture(autouse=True)
def _tiny_network(monkeypatch: pytest.MonkeyPatch, tiny_weights: Callable[..., VGGWeights]) -> None:
    monkeypatch.setattr(engine, "load_weights", lambda path=None, fmt="auto": tiny_weights())


def tight_budget(images: tuple[Path, Path]) -> str:
    """A budget that holds the 96x128 test picture only in tiles of 32-48 px."""
    cfg = Config(size=128, start_size=None, device="cpu", lbfgs_history=3, content_layers=("relu2_2",),
                 style_layers=("relu1_1", "relu2_1", "relu3_1"))
    st = StyleTransfer(images[0], [images[1]], cfg, weights=tiny_vgg())
    est = estimate_tiled(st.model, st.content_layers, st.style_layers, 96, 128, 3, 32, 12).total
    return f"{est + st.process_overhead()}B"


def test_print_every_line_shows_the_tiles_of_a_tiled_step(small_images: tuple[Path, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    content, style = small_images
    base = [str(content), str(style), *ARGS, "--steps", "2", "--print-every", "1"]
    assert cli.main([*base, "-o", str(tmp_path / "t.png"), "--max-memory", tight_budget(small_images)]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("step")]
    assert len(lines) == 2 and all(" tiles=" in x for x in lines), lines
    assert cli.main([*base, "-o", str(tmp_path / "w.png")]) == 0  # auto: fits whole, no tiles in the line
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("step")]
    assert len(lines) == 2 and not any("tiles=" in x for x in lines)
