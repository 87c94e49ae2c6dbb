"""The explain contact sheet: high-pass filters on known images, loss history, the sheet itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from impasto.cli import main
from impasto.config import Config
from impasto.io.images import save_image
from impasto.vgg.weights import load_weights
from impasto.viz.explain import LossHistory, contact_sheet, high_pass


def test_high_pass_on_known_images() -> None:
    ramp = torch.linspace(0, 1, 9).view(1, 1, 9).expand(3, 6, 9).clone()  # left-to-right ramp
    dx, dy, sob = high_pass(ramp)
    assert dx.shape == dy.shape == sob.shape == (6, 9)
    assert torch.allclose(dx[:, :-1], torch.full((6, 8), 0.125), atol=1e-6) and float(dx[:, -1].abs().max()) == 0
    assert float(dy.abs().max()) < 1e-6
    # Sobel of a ramp of slope 1/8 per pixel: (1 + 2 + 1)·2/8 = 1 away from the borders.
    assert torch.allclose(sob[1:-1, 1:-1], torch.ones(4, 7), atol=1e-5)
    flat = torch.full((3, 5, 5), 0.3)
    assert all(float(t.abs().max()) < 1e-6 for t in high_pass(flat))


def test_loss_history_from_metadata() -> None:
    meta = {"loss_history": {"columns": ["step", "loss", "content", "style", "tv"],
                             "rows": [[1, 3.0, 1.0, 2.0, 0.0], [2, 2.0, 1.0, 1.0, 0.0]]}}
    h = LossHistory.from_metadata(meta)
    assert h is not None and h.steps == [1, 2]
    assert h.terms == {"loss": [3.0, 2.0], "content": [1.0, 1.0], "style": [2.0, 1.0], "tv": [0.0, 0.0]}
    assert LossHistory.from_metadata({}) is None and LossHistory.from_metadata(None) is None


@pytest.mark.slow
def test_contact_sheet_with_and_without_result(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    c, s, r = (torch.rand(3, 30, 40, generator=g) for _ in range(3))
    vgg = load_weights(None)
    hist = LossHistory(steps=[1, 2, 3], terms={"loss": [3.0, 2.0, 1.5], "style": [2.0, 1.0, 0.5]})
    a = contact_sheet(c, s, r, tmp_path / "a.png", history=hist, weights=vgg, size=48, channels=2)
    cfg = Config(size=32, start_size=None, steps=2, content_layers=("relu2_1",), style_layers=("relu1_1",))
    b = contact_sheet(c, s, None, tmp_path / "b.png", config=cfg, weights=vgg, size=48, channels=2)
    for p in (a, b):
        with Image.open(p) as im:
            assert im.format == "PNG" and im.width > 600 and im.height > 900
            # Not a blank page: the images and plots put many distinct colours on it.
            assert len(im.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 500
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.slow
def test_cli_explain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = torch.Generator().manual_seed(1)
    c, s = tmp_path / "c.png", tmp_path / "s.png"
    save_image(torch.rand(3, 30, 40, generator=g), c)
    save_image(torch.rand(3, 30, 30, generator=g), s)
    res = tmp_path / "r.png"
    assert main([str(c), str(s), "-o", str(res), "--size", "32", "--start-size", "none", "--steps", "2",
                 "--style-layers", "relu1_1,relu2_1", "-q"]) == 0
    sheet = tmp_path / "sheet.png"
    assert main(["explain", str(c), str(s), str(res), "-o", str(sheet), "--size", "48", "--channels", "2"]) == 0
    assert sheet.stat().st_size > 10_000
    assert main(["explain", str(c), str(s), "-o", str(tmp_path / "sheet.jpg")]) == 2
    assert "PNG" in capsys.readouterr().err
    assert main(["explain", str(c), str(s), "-o", str(c)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
