"""The command line: real outputs, metadata, progress output and every kind of bad input."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from impasto import cli, engine
from impasto.cli import run as run_cli
from impasto.io.images import read_metadata
from impasto.vgg.weights import VGGWeights

FAST = ["--size", "32", "--start-size", "none", "--steps", "2", "--device", "cpu", "-q"]


@pytest.fixture(autouse=True)
def _tiny_network(monkeypatch: pytest.MonkeyPatch, tiny_weights: Callable[..., VGGWeights]) -> None:
    """CLI tests exercise the front-end; a tiny random VGG keeps them fast (real weights: test_engine)."""
    monkeypatch.setattr(engine, "load_weights", lambda path=None, fmt="auto": tiny_weights())


def test_run_writes_image_with_metadata(small_images: tuple[Path, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    content, style = small_images
    out = tmp_path / "result.png"
    assert cli.main([str(content), str(style), "-o", str(out), *FAST, "--style-weight", "50"]) == 0
    img = Image.open(out)
    assert img.size == (32, 24) and img.mode == "RGB"
    meta = read_metadata(out)
    assert meta is not None
    assert meta["impasto_version"] == run_cli.__version__
    assert meta["config"]["style_weight"] == 50.0 and meta["config"]["size"] == 32
    assert meta["styles"] == [str(style)]
    assert cli.main(["show-config", str(out)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["config"]["steps"] == 2


def test_show_config_flag_prints_resolved_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["a.png", "b.png", "-o", "c.png", "--show-config", "--tv-weight", "0",
                     "--style-layers", "conv1_1,block2_conv1"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["tv_weight"] == 0.0 and cfg["style_layers"] == ["conv1_1", "block2_conv1"]
    assert cfg["content_weight"] == 5.0  # untouched defaults stay


def test_save_every_and_print_every(small_images: tuple[Path, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    content, style = small_images
    out = tmp_path / "r.jpg"
    args = [str(content), str(style), "-o", str(out), *FAST, "--steps", "4", "--save-every", "2",
            "--print-every", "2"]
    assert cli.main(args) == 0
    saved = sorted(p.name for p in (tmp_path / "r_steps").iterdir())
    assert saved == ["step_2.png", "step_4.png"]
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("step")]
    assert len(lines) == 2 and "content=" in lines[0] and "style/relu1_1=" in lines[0]
    assert Image.open(out).format == "JPEG"


def test_content_alpha_is_carried(tmp_path: Path, small_images: tuple[Path, Path]) -> None:
    _, style = small_images
    rgba = Image.new("RGBA", (40, 30), (200, 100, 50, 255))
    for x in range(20):
        for y in range(30):
            rgba.putpixel((x, y), (200, 100, 50, 0))
    content = tmp_path / "alpha.png"
    rgba.save(content)
    out = tmp_path / "o.png"
    assert cli.main([str(content), str(style), "-o", str(out), *FAST]) == 0
    res = Image.open(out)
    assert res.mode == "RGBA"
    a = res.getchannel("A")
    assert a.getpixel((2, 10)) == 0 and a.getpixel((30, 10)) == 255


def test_style_folder(small_images: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = small_images
    folder = tmp_path / "styles"
    folder.mkdir()
    (folder / "a.png").write_bytes(style.read_bytes())
    (folder / "b.png").write_bytes(style.read_bytes())
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "o.png"
    assert cli.main([str(content), str(folder), "-o", str(out), *FAST, "--style-weights", "0.7,0.3"]) == 0
    meta = read_metadata(out)
    assert meta is not None and len(meta["styles"]) == 2
    assert meta["config"]["style_blend_weights"] == [0.7, 0.3]


def _bad(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as ex:
        code = cli.main(args)
        raise SystemExit(code)
    err = capsys.readouterr().err
    assert ex.value.code == 2, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_bad_inputs_one_line_exit_2(small_images: tuple[Path, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    content, style = small_images
    out = str(tmp_path / "o.png")
    c, s = str(content), str(style)
    assert "no such file" in _bad([str(tmp_path / "missing.png"), s, "-o", out, *FAST], capsys).lower()
    notimg = tmp_path / "notes.png"
    notimg.write_text("hello")
    _bad([str(notimg), s, "-o", out, *FAST], capsys)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    _bad([c, str(empty), "-o", out, *FAST], capsys)
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(content.read_bytes()[:120])
    _bad([c, str(trunc), "-o", out, *FAST], capsys)
    assert "relu9_9" in _bad([c, s, "-o", out, *FAST, "--style-layers", "relu9_9"], capsys)
    _bad([c, s, "-o", out, *FAST, "--style-weight", "-3"], capsys)
    _bad([c, s, "-o", out, *FAST, "--steps", "-1"], capsys)
    _bad([c, s, "-o", out, *FAST, "--optimizer", "sgd"], capsys)
    _bad([c, s, "-o", str(tmp_path / "nofolder" / "o.png"), *FAST], capsys)
    _bad([c, s, "-o", str(tmp_path / "o.bmpx"), *FAST], capsys)
    _bad([c, s, "-o", out, *FAST, "--style-weights", "1,1,1"], capsys)
    _bad([c, s, "-o", out, *FAST, "--adam-betas", "0.9"], capsys)
    assert "restart-factor" in _bad([c, s, "-o", out, *FAST, "--restart-factor", "0.5"], capsys)
    _bad([c, s, "-o", out, *FAST, "--restart-factor", "lots"], capsys)
    _bad([c, s, "-o", out, *FAST, "--recompute-activations", "sometimes"], capsys)
    assert "lbfgs_history_mib" in _bad([c, s, "-o", out, *FAST, "--lbfgs-history-mib", "0"], capsys)
    _bad([c, s, "-o", out, *FAST, "--init", str(tmp_path / "nope.png")], capsys)
    _bad(["show-config", str(notimg)], capsys)
    _bad(["show-config", c], capsys)  # an image without impasto metadata
    assert not (tmp_path / "o.png").exists()


def test_refuses_to_overwrite_an_input(small_images: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    content, style = small_images
    before = content.read_bytes()
    msg = _bad([str(content), str(style), "-o", str(content), *FAST], capsys)
    assert "input" in msg.lower()
    assert content.read_bytes() == before


@pytest.mark.parametrize(
    "signals", [[signal.SIGINT], [signal.SIGTERM], [signal.SIGHUP], [signal.SIGINT, signal.SIGINT]])
def test_signals_save_image_and_checkpoint_then_resume(
    small_images: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], signals: list[int],
) -> None:
    content, style = small_images
    whole = tmp_path / "whole.png"
    assert cli.main([str(content), str(style), "-o", str(whole), *FAST, "--steps", "4"]) == 0
    real_run = engine.StyleTransfer.run

    def interrupted(self: engine.StyleTransfer, image_every: int = 0) -> Iterator[engine.Progress]:
        for ev in real_run(self, image_every):
            if ev.step == 2:
                for sig in signals:  # a second Ctrl-C while saving must not cut the save short
                    os.kill(os.getpid(), sig)
            yield ev

    monkeypatch.setattr(engine.StyleTransfer, "run", interrupted)
    out = tmp_path / "o.png"
    capsys.readouterr()
    assert cli.main([str(content), str(style), "-o", str(out), *FAST, "--steps", "4"]) == 130
    partial = tmp_path / "o.interrupted.png"
    ckpt = tmp_path / "o.png.ckpt"
    assert partial.is_file() and ckpt.is_file() and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(partial) in err[0] and "impasto resume" in err[0]
    meta = read_metadata(partial)
    assert meta is not None and meta["interrupted"] is True and meta["step"] == 2
    monkeypatch.setattr(engine.StyleTransfer, "run", real_run)
    assert cli.main(["resume", str(ckpt), "-q"]) == 0
    assert not ckpt.exists()  # removed once the result is written
    a = np.asarray(Image.open(whole))
    b = np.asarray(Image.open(out))
    assert np.array_equal(a, b)  # resumed = uninterrupted, pixel for pixel
    assert read_metadata(out)["resumed_from_step"] == 2  # type: ignore[index]


def test_config_file_round_trip(small_images: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = small_images
    first = tmp_path / "first.png"
    assert cli.main([str(content), str(style), "-o", str(first), *FAST, "--tv-weight", "0.5"]) == 0
    meta = read_metadata(first)
    assert meta is not None
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(meta))
    second = tmp_path / "second.png"
    assert cli.main([str(content), str(style), "-o", str(second), "--config", str(cfg_file), "-q"]) == 0
    a = torch.from_numpy(np.asarray(Image.open(first)).copy())
    b = torch.from_numpy(np.asarray(Image.open(second)).copy())
    assert torch.equal(a, b)  # same configuration and seed: the same image


def test_a_finished_result_is_never_lost_when_its_folder_vanishes(
    small_images: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shutil

    content, style = small_images
    gone = tmp_path / "gone"
    gone.mkdir()
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    real_run = engine.StyleTransfer.run

    def vanish(self: engine.StyleTransfer, image_every: int = 0) -> Iterator[engine.Progress]:
        for ev in real_run(self, image_every):
            if ev.done:
                shutil.rmtree(gone)  # the output folder disappears while the last step runs
            yield ev

    monkeypatch.setattr(engine.StyleTransfer, "run", vanish)
    capsys.readouterr()
    assert cli.main([str(content), str(style), "-o", str(gone / "o.png"), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    rescued = here / "o.rescued.png"
    assert err.count("\n") == 0 and str(rescued) in err
    assert read_metadata(rescued) is not None  # the result, with its configuration
