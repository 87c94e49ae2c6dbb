"""A video frame's checkpoint is the one impasto checkpoint, read as untrusted input: a planted pickle in
the frames folder is refused without running, and the run completes (issues 18 and 20)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from video_helpers import pan_frames, scene, write_mp4

from impasto import cli
from impasto.checkpoint import MAGIC, load_checkpoint
from impasto.config import Config
from impasto.io import save_image
from impasto.jobs import CheckpointPolicy
from impasto.vgg import VGGWeights
from impasto.video.io import Clip, FrameStore, _to_u8
from impasto.video.stylize import VideoOptions, VideoStylizer

pytest.importorskip("cv2", reason="the video extra (opencv-python-headless) is not installed")


class _Evil:
    """Unpickled, it creates ``marker``: what a crafted checkpoint would do with ``weights_only=False``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def _pickle(marker: Path) -> bytes:
    buf = io.BytesIO()
    torch.save({"frame": 1, "state": _Evil(marker)}, buf)  # the old video checkpoint's layout
    return buf.getvalue()


def _plant(path: Path, marker: Path, *, v2_header: bool) -> None:
    """The pickle as is, or behind a valid v2 header and digest (so only ``weights_only`` stands in its way)."""
    body = _pickle(marker)
    if v2_header:
        body = MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)


def test_the_planted_payload_is_live(tmp_path: Path) -> None:
    """The test's pickle does run when unpickled the old way (so its absence below means something)."""
    marker = tmp_path / "ran"
    torch.load(io.BytesIO(_pickle(marker)), weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("v2_header", [False, True], ids=["raw-pickle", "v2-header"])
def test_library_run_ignores_a_planted_pickle(tmp_path: Path, tiny_weights: Callable[..., VGGWeights],
                                              v2_header: bool) -> None:
    marker = tmp_path / "pwned"
    frames = [_to_u8(f) for f in pan_frames(2, 24, 32)]
    clip = Clip(frames=frames, fps=10.0, has_audio=False, source=Path("."), kind="frames", identity="pan")
    store = FrameStore(tmp_path / "out", 2)
    _plant(store.checkpoint_path, marker, v2_header=v2_header)
    job = VideoStylizer(clip, [scene(32, 32, seed=3)], Config(size=32, start_size=None, steps=3, seed=0), store,
                        VideoOptions(frame_steps=3, checkpoint=CheckpointPolicy.from_every(2)), weights=tiny_weights())
    with store:
        events = [ev for ev in job.run() if ev.kind in ("frame", "done")]
    assert not marker.exists()
    assert [ev.kind for ev in events] == ["frame", "frame", "done"] and events[0].resumed_step == 0
    assert store.path(0).is_file() and store.path(1).is_file() and not store.checkpoint_path.exists()


def test_a_frame_checkpoint_is_the_one_format_with_the_frame_in_extra(tmp_path: Path,
                                                                      tiny_weights: Callable[..., VGGWeights]) -> None:
    frames = [_to_u8(f) for f in pan_frames(2, 24, 32)]
    clip = Clip(frames=frames, fps=10.0, has_audio=False, source=Path("."), kind="frames", identity="pan")
    store = FrameStore(tmp_path / "out", 2)
    job = VideoStylizer(clip, [scene(32, 32, seed=3)], Config(size=32, start_size=None, steps=3, seed=0), store,
                        VideoOptions(frame_steps=6, checkpoint=CheckpointPolicy.from_every(2)), weights=tiny_weights())
    with store:
        for ev in job.run():
            if ev.kind == "step" and ev.frame == 1 and ev.progress is not None and ev.progress.step == 3:
                break
    ckpt = load_checkpoint(store.checkpoint_path)  # digest-checked, weights_only=True
    assert ckpt.extra["kind"] == "video" and ckpt.extra["frame"] == 1 and ckpt.step == 2
    assert ckpt.extra["key"].startswith(f"video {job.key} ")


@pytest.mark.parametrize("output", ["styled", "out.mp4"])
def test_cli_ignores_a_planted_pickle_in_the_frames_folder(tmp_path: Path, tiny_weights_file: Path,
                                                           output: str) -> None:
    """``OUT/.impasto-checkpoint.pt`` (frames output) and ``OUT.mp4.frames/...`` (video output)."""
    marker = tmp_path / "pwned"
    clip = write_mp4(pan_frames(3, 24, 32), tmp_path / "in.mp4", fps=10)
    style = save_image(scene(32, 32, seed=5), tmp_path / "style.png")
    out = tmp_path / output
    folder = out if out.suffix == "" else out.with_name(out.name + ".frames")
    _plant(folder / FrameStore.CHECKPOINT, marker, v2_header=False)
    args = ["video", str(clip), str(style), "-o", str(out), "--weights", str(tiny_weights_file), "--weights-format",
            "caffe", "--size", "32", "--start-size", "none", "--steps", "3", "--frame-steps", "2", "-q"]
    assert cli.main(args) == 0
    assert not marker.exists()
    if out.suffix == "":
        assert len(list(out.glob("frame_*.png"))) == 3 and not (out / FrameStore.CHECKPOINT).exists()
    else:
        assert out.is_file() and not folder.exists()
