"""``impasto video`` against hostile command lines: it never writes over (nor deletes) an input frame,
whatever form the input takes, refuses settings that cannot work before any frame runs, and says so when
it has to crop the frames for the encoder."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from video_helpers import pan_frames, scene

from impasto import cli
from impasto.io import save_image

pytest.importorskip("cv2", reason="the video extra (opencv-python-headless) is not installed")


def _style(tmp_path: Path) -> Path:
    return save_image(scene(64, 64, seed=5).flip(0), tmp_path / "painting.png")


def _fast(weights: Path) -> list[str]:
    return ["--weights", str(weights), "--weights-format", "caffe", "--size", "24", "--start-size", "none",
            "--steps", "2", "--frame-steps", "1", "-q"]


def _sums(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".")}


def _odd_video(frames: list[torch.Tensor], path: Path) -> Path:
    """A lossless clip of any size (H.264 in yuv420p cannot hold an odd side): PNG frames in Matroska."""
    import imageio_ffmpeg

    h, w = frames[0].shape[1:]
    gen = imageio_ffmpeg.write_frames(str(path), (w, h), fps=10, codec="png", pix_fmt_out="rgb24",
                                      macro_block_size=1, ffmpeg_log_level="error")
    gen.send(None)
    for f in frames:
        gen.send(np.ascontiguousarray((f * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()))
    gen.close()
    return path


def _frames(folder: Path, name: str = "frame_{:05d}.png", n: int = 3, start: int = 1) -> list[Path]:
    folder.mkdir(exist_ok=True)
    return [save_image(f, folder / name.format(i + start)) for i, f in enumerate(pan_frames(n, 20, 24))]


@pytest.mark.parametrize("form", ["glob", "pattern", "pattern-from-0", "folder-link", "hardlink"])
def test_restart_never_writes_over_an_input_frame(tmp_path: Path, tiny_weights_file: Path, form: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    clip = tmp_path / "clip"
    # Frames named as impasto names its own (ffmpeg's image2 names them alike): the worst case.
    _frames(clip, start=0 if form == "pattern-from-0" else 1)
    before = _sums(clip)
    out = str(clip)
    spec = {"glob": str(clip / "*.png"), "pattern": str(clip / "frame_%05d.png"),
            "pattern-from-0": str(clip / "frame_%05d.png"), "folder-link": str(clip / "*.png"),
            "hardlink": str(tmp_path / "links" / "*.png")}[form]
    if form == "folder-link":  # the output is the input folder under another name
        (tmp_path / "alias").symlink_to(clip, target_is_directory=True)
        out = str(tmp_path / "alias")
    if form == "hardlink":  # the inputs are other names of the files the output folder holds
        (tmp_path / "links").mkdir()
        for p in clip.iterdir():
            os.link(p, tmp_path / "links" / f"in_{p.name}")
    for extra in (["--restart"], []):
        code = cli.main(["video", spec, str(_style(tmp_path)), "-o", out, *_fast(tiny_weights_file), *extra])
        err = capsys.readouterr().err.strip()
        assert code == 2, err
        assert len(err.splitlines()) == 1 and "input frame" in err and "choose another output" in err, err
        assert _sums(clip) == before
    assert sorted(p.name for p in clip.iterdir()) == sorted(before)


def test_the_video_output_of_a_frames_input_is_checked_too(tmp_path: Path, tiny_weights_file: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    # -o clip.mp4 keeps its frames in clip.mp4.frames/: frames read from there must not be written over.
    frames = tmp_path / "clip.mp4.frames"
    _frames(frames)
    before = _sums(frames)
    code = cli.main(["video", str(frames / "*.png"), str(_style(tmp_path)), "-o", str(tmp_path / "clip.mp4"),
                     *_fast(tiny_weights_file), "--restart"])
    assert code == 2 and "input frame" in capsys.readouterr().err
    assert _sums(frames) == before and not (tmp_path / "clip.mp4").exists()


def test_frames_beside_the_inputs_are_fine_when_no_name_is_shared(tmp_path: Path, tiny_weights_file: Path) -> None:
    clip = tmp_path / "clip"
    _frames(clip, name="in_{:03d}.png")
    before = _sums(clip)
    code = cli.main(["video", str(clip / "in_*.png"), str(_style(tmp_path)), "-o", str(clip),
                     *_fast(tiny_weights_file), "--restart"])
    assert code == 0
    after = _sums(clip)
    assert {k: v for k, v in after.items() if k in before} == before
    assert sorted(k for k in after if k not in before) == [f"frame_{i:05d}.png" for i in (1, 2, 3)]


def test_frame_steps_0_is_refused_before_any_frame(tmp_path: Path, tiny_weights_file: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    clip = tmp_path / "clip"
    _frames(clip, name="in_{:03d}.png")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        cli.main(["video", str(clip), str(_style(tmp_path)), "-o", str(out), *_fast(tiny_weights_file),
                  "--frame-steps", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--frame-steps" in err and ">= 1" in err, err
    assert not out.exists()


def test_an_odd_height_cropped_for_the_encoder_is_said_in_one_line(tmp_path: Path, tiny_weights_file: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    clip = _odd_video(pan_frames(2, 75, 100), tmp_path / "in.mkv")
    out = tmp_path / "out.mp4"
    args = ["video", str(clip), str(_style(tmp_path)), "-o", str(out), *_fast(tiny_weights_file), "--size", "100"]
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "crop" in line]
    assert notes == ["impasto video: note: 100x75 frames are cropped to 100x74 in out.mp4 (the H.264 encoder needs "
                     "even sides); --keep-frames keeps the uncropped frames"], err
    from impasto.video.io import probe_video

    assert tuple(probe_video(out)["size"]) == (100, 74)
    # Even sides, or a GIF (no such limit): nothing to say.
    assert cli.main([*args[:4], str(tmp_path / "out.gif"), *args[5:]]) == 0
    assert "crop" not in capsys.readouterr().err
