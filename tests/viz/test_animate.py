"""Balance sweep, animations (GIF with Pillow, MP4 with imageio-ffmpeg) and --progress-gif."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from impasto.cli import main
from impasto.config import Config
from impasto.errors import ImpastoError
from impasto.io.images import read_metadata, save_image
from impasto.vgg.weights import load_weights
from impasto.viz import animate
from impasto.viz.animate import balance_alphas, balance_grid, balance_sweep, check_animation_path, write_animation

TINY = dict(size=24, start_size=None, content_layers=("relu1_1",), style_layers=("relu1_1", "relu2_1"))


def _frames(n: int, h: int = 10, w: int = 14) -> list[torch.Tensor]:
    return [torch.full((3, h, w), i / max(1, n - 1)) for i in range(n)]


def test_balance_alphas() -> None:
    assert balance_alphas(5, "linear") == [0.0, 0.25, 0.5, 0.75, 1.0]
    # log: α/(1-α) = 1e-4, 1, 1e4 between the ends.
    assert balance_alphas(5) == pytest.approx([0.0, 1e-4 / (1 + 1e-4), 0.5, 1e4 / (1 + 1e4), 1.0], rel=1e-12)
    assert balance_alphas(3) == [0.0, 0.5, 1.0] and balance_alphas(2) == [0.0, 1.0]
    assert balance_alphas(4, span=100.0) == pytest.approx([0.0, 1 / 101, 100 / 101, 1.0], rel=1e-12)
    with pytest.raises(ImpastoError):
        balance_alphas(5, "cubic")
    with pytest.raises(ImpastoError):
        balance_alphas(5, span=0.5)
    with pytest.raises(ImpastoError, match="at least 2 frames"):
        balance_alphas(1)


def test_gif_frames_size_and_timing(tmp_path: Path) -> None:
    frames = _frames(4) + [torch.rand(3, 20, 28)]  # coarse-to-fine: earlier frames are smaller
    out = write_animation(frames, tmp_path / "a.gif", fps=5, hold_last=2)
    with Image.open(out) as im:
        # Pillow merges the identical held frames into the last one, adding up their durations.
        assert im.n_frames == 5
        assert im.size == (28, 20)
        assert im.info["duration"] == 200 and im.info["loop"] == 0
        im.seek(1)
        assert abs(im.convert("RGB").getpixel((3, 3))[0] - 85) <= 2  # frame 1 = 1/3 grey
        im.seek(4)
        assert im.info["duration"] == 600
    assert oct(out.stat().st_mode & 0o777) == "0o644"


def test_mp4(tmp_path: Path) -> None:
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v2 as iio

    out = write_animation(_frames(6, 21, 33), tmp_path / "a.mp4", fps=4, hold_last=0)
    reader = iio.get_reader(str(out))
    try:
        frames = [f for f in reader]
    finally:
        reader.close()
    assert len(frames) == 6 and frames[0].shape == (20, 32, 3)  # cropped to even sides for yuv420p


def test_animation_path_errors(tmp_path: Path) -> None:
    with pytest.raises(ImpastoError, match=".gif or .mp4"):
        check_animation_path(tmp_path / "a.png")
    with pytest.raises(ImpastoError, match="does not exist"):
        check_animation_path(tmp_path / "missing" / "a.gif")
    src = tmp_path / "in.gif"
    src.write_bytes(b"x")
    with pytest.raises(ImpastoError, match="same file as input"):
        check_animation_path(src, [src])
    with pytest.raises(ImpastoError, match="no frames"):
        write_animation([], tmp_path / "b.gif")


@pytest.mark.slow
def test_balance_sweep_warm_starts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[tuple[float | None, torch.Tensor | None, int]] = []
    real = animate.StyleTransfer

    def spy(content: object, styles: object, config: Config, **kw: object) -> object:
        init = kw.get("init_image")
        seen.append((config.alpha, None if init is None else init.clone(), config.steps))  # type: ignore[union-attr]
        return real(content, styles, config, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(animate, "StyleTransfer", spy)
    g = torch.Generator().manual_seed(0)
    content, style = torch.rand(3, 18, 24, generator=g), torch.rand(3, 24, 24, generator=g)
    frames = list(balance_sweep(content, style, Config(**TINY, steps=1), [0.0, 0.5, 1.0], first_steps=2,
                                weights=load_weights(None)))
    assert [f.alpha for f in frames] == [0.0, 0.5, 1.0]
    assert [s[0] for s in seen] == [0.0, 0.5, 1.0] and [s[2] for s in seen] == [2, 1, 1]
    assert seen[0][1] is None
    for k in (1, 2):  # each frame starts from the previous frame's pixels
        init = seen[k][1]
        assert init is not None and torch.equal(init, frames[k - 1].image)
    assert frames[0].content == 0.0 and frames[-1].style == 0.0  # style only ... content only
    grid = balance_grid(frames, tmp_path / "grid.png", picks=3)
    with Image.open(grid) as im:
        assert im.size == (3 * 24, 18 + 22)


@pytest.mark.slow
def test_cli_balance_and_progress_gif(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = torch.Generator().manual_seed(0)
    c, s = tmp_path / "c.png", tmp_path / "s.png"
    save_image(torch.rand(3, 18, 24, generator=g), c)
    save_image(torch.rand(3, 24, 24, generator=g), s)
    out = tmp_path / "sweep.gif"
    assert main(["balance", str(c), str(s), "-o", str(out), "--frames", "3", "--steps", "3", "--size", "24",
                 "--first-steps", "3", "-q"]) == 0
    with Image.open(out) as im:
        assert im.n_frames == 3
    assert (tmp_path / "sweep_grid.png").exists()
    assert main(["balance", str(c), str(s), "-o", str(tmp_path / "x.png")]) == 2
    assert ".gif or .mp4" in capsys.readouterr().err

    res, gif = tmp_path / "r.png", tmp_path / "p.gif"
    assert main([str(c), str(s), "-o", str(res), "--size", "24", "--start-size", "none", "--steps", "3",
                 "--content-layers", "relu1_1", "--style-layers", "relu1_1", "--optimizer", "adam",
                 "--progress-gif", str(gif), "-q"]) == 0
    with Image.open(gif) as im:
        # start, one per step (3 steps < 60 frames), the result (equal to step 3's image, so merged by Pillow)
        assert im.n_frames == 4
    meta = read_metadata(res)
    assert meta is not None
    rows = meta["loss_history"]["rows"]
    assert [r[0] for r in rows] == [1, 2, 3] and meta["loss_history"]["columns"][0] == "step"
    json.dumps(meta)
