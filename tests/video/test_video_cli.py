"""``impasto video`` end to end on tiny clips (a random tiny VGG keeps each run to a second or two)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from video_helpers import pan_frames, scene, subprocess_env, write_mp4

from impasto import cli
from impasto.io import load_image, read_metadata, save_image
from impasto.video.io import FrameStore, has_audio_stream, probe_video

pytest.importorskip("cv2", reason="the video extra (opencv-python-headless) is not installed")


def _style(tmp_path: Path) -> Path:
    return save_image(scene(64, 64, seed=5).flip(0), tmp_path / "style.png")


def _fast(weights: Path) -> list[str]:
    return ["--weights", str(weights), "--weights-format", "caffe", "--size", "48", "--start-size", "none",
            "--steps", "4", "--frame-steps", "3", "-q"]


def test_video_file_to_video_keeps_rate_count_and_audio(tmp_path: Path, tiny_weights_file: Path) -> None:
    clip = write_mp4(pan_frames(4, 36, 48), tmp_path / "in.mp4", fps=12, audio=True)
    assert has_audio_stream(clip)
    out = tmp_path / "out.mp4"
    assert cli.main(["video", str(clip), str(_style(tmp_path)), "-o", str(out), *_fast(tiny_weights_file)]) == 0
    meta = probe_video(out)
    assert meta["fps"] == pytest.approx(12.0)
    assert meta["nframes"] == 4
    assert tuple(meta["size"]) == (48, 36)
    assert has_audio_stream(out)
    assert not (tmp_path / "out.mp4.frames").exists()  # the frames are removed once the video is written


def test_frames_folder_to_frames_folder(tmp_path: Path, tiny_weights_file: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "frames"
    src.mkdir()
    frames = pan_frames(4, 40, 30, dx=1, dy=2)
    for i, f in enumerate(frames):
        save_image(f, src / f"f{i:03d}.png")
    out = tmp_path / "styled"
    args = ["video", str(src), str(_style(tmp_path)), "-o", str(out), *_fast(tiny_weights_file)]
    args.remove("-q")
    assert cli.main(args) == 0
    files = sorted(out.glob("frame_*.png"))
    assert [f.name for f in files] == [f"frame_{i:05d}.png" for i in range(1, 5)]
    for i, f in enumerate(files):
        img = load_image(f).rgb
        assert tuple(img.shape) == (3, 48, 36)
        meta = read_metadata(f)
        assert meta is not None and meta["frame"] == i + 1
        assert meta["video"]["temporal_weight"] == 1000.0
        # Every frame after the first carries the temporal term it was optimised with.
        assert ("extra/temporal" in meta["terms"]) == (i > 0)
    err = capsys.readouterr().err
    assert "frame 4/4 done" in err and "ETA" in err
    # A second run finds every frame there and does nothing but say so.
    assert cli.main(args) == 0
    assert "resuming: frames 1-4 are already" in capsys.readouterr().err
    # Other settings on the same folder are refused, not mixed in.
    assert cli.main([*args, "--temporal-weight", "10"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_bad_inputs_are_one_line_errors(tmp_path: Path, tiny_weights_file: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    style = _style(tmp_path)
    assert cli.main(["video", str(tmp_path / "missing.mp4"), str(style), "-o", str(tmp_path / "o.mp4")]) == 2
    assert "does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["video", str(empty), str(style), "-o", str(tmp_path / "o.mp4")]) == 2
    assert "frames" in capsys.readouterr().err
    assert cli.main(["video", str(empty), str(style), "-o", str(tmp_path / "o.txt")]) == 2
    assert "must be a video" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse: one line, exit 2
        cli.main(["video", str(empty), str(style), "-o", str(tmp_path / "o.mp4"), "--temporal-frames", "0"])
    assert exc.value.code == 2
    assert "must be >= 1" in capsys.readouterr().err


def _start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "impasto", *args], env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for(*paths: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90
    while not all(p.exists() for p in paths):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"the run ended or stalled before {', '.join(p.name for p in paths)} appeared")
        time.sleep(0.02)


def test_interrupted_and_killed_runs_resume(tmp_path: Path, tiny_weights_file: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    clip = write_mp4(pan_frames(4, 36, 48), tmp_path / "in.mp4", fps=10)
    out = tmp_path / "out.mp4"
    work = tmp_path / "out.mp4.frames"
    ckpt = work / ".impasto-checkpoint.pt"
    args = ["video", str(clip), str(_style(tmp_path)), "-o", str(out), *_fast(tiny_weights_file),
            "--steps", "10", "--frame-steps", "300", "--checkpoint-every", "5", "--keep-frames"]
    # 300 steps per later frame: long enough (about a second) that the signals below land mid-frame.
    # 1. SIGTERM in frame 2: the run stops at the next step, checkpoints it, says so and exits 130.
    proc = _start(args)
    _wait_for(work / "frame_00001.png", ckpt, proc=proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "SIGTERM: stopped" in err and "run the same command to resume" in err
    assert ckpt.exists() and not out.exists()
    # 2. The same command, killed outright (kill -9) once frame 2 is written and frame 3 checkpointed.
    ckpt.unlink()
    proc = _start(args)
    _wait_for(work / "frame_00002.png", ckpt, proc=proc)
    proc.kill()
    proc.wait(timeout=30)
    assert not out.exists() and not (work / "frame_00004.png").exists()
    # kill -9 may land inside a write: its half-written temporary file may stay (never a damaged frame).
    first = (work / "frame_00001.png").stat()
    # 3. The same command again finishes the clip, from frame 3's checkpoint.
    args.remove("-q")
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert "resuming: frames 1-" in err
    assert "(resumed at step" in err
    assert out.exists() and probe_video(out)["nframes"] == 4
    assert len(list(work.glob("frame_*.png"))) == 4 and not ckpt.exists()
    assert not list(work.glob(".impasto-*.tmp")) and not (work / FrameStore.LOCK).exists()
    again = (work / "frame_00001.png").stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)  # kept, not redone


def test_style_options_of_a_still_image_apply(capsys: pytest.CaptureFixture[str]) -> None:
    """Presets and config flags resolve as for a still image (``--show-config`` needs no inputs)."""
    assert cli.main(["video", "--preset", "gatys", "--style-weight", "7", "--show-config"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["style_weight"] == 7.0 and shown["pooling"] == "avg"  # the flag over the preset
