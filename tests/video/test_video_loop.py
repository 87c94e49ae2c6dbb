"""The frame loop as a library: exact resume from a mid-frame checkpoint, and that it is consistent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from video_helpers import pan_frames, scene

from impasto.config import Config
from impasto.jobs import CheckpointPolicy
from impasto.vgg import VGGWeights
from impasto.video.flow import warp
from impasto.video.io import Clip, FrameStore, _to_u8
from impasto.video.stylize import VideoOptions, VideoStylizer

pytest.importorskip("cv2", reason="the video extra (opencv-python-headless) is not installed")

NEVER = CheckpointPolicy.from_every(0)


def _clip(n: int = 3, h: int = 32, w: int = 40, dx: int = 2, dy: int = 1) -> Clip:
    frames = [_to_u8(f) for f in pan_frames(n, h, w, dx=dx, dy=dy)]
    return Clip(frames=frames, fps=10.0, has_audio=False, source=Path("."), kind="frames", identity="pan")


def _run(clip: Clip, store: FrameStore, opts: VideoOptions, weights: VGGWeights, cfg: Config) -> list[str]:
    with store:
        return [ev.kind for ev in VideoStylizer(clip, [scene(48, 48, seed=3)], cfg, store, opts, weights=weights).run()]


def test_resume_from_a_mid_frame_checkpoint_is_exact(tmp_path: Path, tiny_weights: Callable[..., VGGWeights]) -> None:
    clip = _clip()
    w = tiny_weights()
    cfg = Config(size=40, start_size=None, steps=6, seed=0)
    opts = VideoOptions(frame_steps=8, checkpoint=CheckpointPolicy.from_every(3))
    ref = FrameStore(tmp_path / "ref", 3)
    _run(clip, ref, opts, w, cfg)

    store = FrameStore(tmp_path / "cut", 3)
    job = VideoStylizer(clip, [scene(48, 48, seed=3)], cfg, store, opts, weights=w)
    for ev in job.run():
        if ev.kind == "step" and ev.frame == 1 and ev.progress is not None and ev.progress.step == 5:
            break  # the process "dies" here: frame 2 is half done, checkpointed at step 3
    assert store.path(0).is_file() and not store.path(1).exists()
    assert store.checkpoint_path.is_file()

    events = list(VideoStylizer(clip, [scene(48, 48, seed=3)], cfg, store, opts, weights=w).run())
    assert events[0].kind == "start" and events[0].frame == 1  # frame 1 is not redone
    resumed = [e for e in events if e.kind == "frame"]
    assert [e.frame for e in resumed] == [1, 2]
    assert resumed[0].resumed_step == 3 and resumed[1].resumed_step == 0
    assert not store.checkpoint_path.exists()
    for i in range(3):
        assert torch.equal(store.load(i), ref.load(i)), f"frame {i + 1} differs from the uninterrupted run"


def _warp_error(frames: list[torch.Tensor], dx: int, dy: int) -> float:
    """Mean squared difference (0-255 units) between frame t and frame t-1 moved by the exact camera motion."""
    errs = []
    for a, b in zip(frames, frames[1:]):
        flow = torch.zeros(*a.shape[1:], 2)
        flow[..., 0], flow[..., 1] = dx, dy  # frame t at p shows what frame t-1 showed at p + (dx, dy)
        d = (warp(a, flow) - b)[:, 4:-4 - dy, 4:-4 - dx] * 255
        errs.append(float(d.pow(2).mean()))
    return sum(errs) / len(errs)


def test_warm_start_and_temporal_loss_cut_flicker(tmp_path: Path, tiny_weights: Callable[..., VGGWeights]) -> None:
    clip = _clip(n=4, h=40, w=48)
    w = tiny_weights()
    cfg = Config(size=48, start_size=None, steps=15, seed=0)
    results = {}
    for name, opts in {
        "independent": VideoOptions(warm_start=False, temporal_weight=0.0, checkpoint=NEVER),
        "temporal": VideoOptions(frame_steps=15, checkpoint=NEVER),
    }.items():
        store = FrameStore(tmp_path / name, 4)
        _run(clip, store, opts, w, cfg)
        results[name] = _warp_error([store.load(i) for i in range(4)], 2, 1)
    assert results["temporal"] < 0.5 * results["independent"], results


def test_store_accepts_a_manifest_from_before_a_new_config_field(tmp_path: Path) -> None:
    import json

    from impasto.errors import ImpastoError
    from impasto.video.stylize import _normalise_manifest

    manifest = {"config": Config().to_dict(), "frames": 2}
    store = FrameStore(tmp_path / "f", 2)
    assert store.open(manifest, normalise=_normalise_manifest) == 0
    path = tmp_path / "f" / FrameStore.MANIFEST
    old = json.loads(path.read_text())
    del old["config"]["tol_window"]  # written by a version that did not have the field: its default applies
    path.write_text(json.dumps(old))
    assert store.open(manifest, normalise=_normalise_manifest) == 0
    with pytest.raises(ImpastoError, match="other settings"):
        store.open({**manifest, "config": Config(steps=7).to_dict()}, normalise=_normalise_manifest)


def test_store_locks_its_folder_and_clears_a_killed_runs_temporaries(tmp_path: Path) -> None:
    from impasto.errors import ImpastoError

    folder = tmp_path / "f"
    folder.mkdir()
    dead = folder / ".impasto-k1ll3d00.tmp"  # what atomic_write leaves when its process is killed outright
    dead.write_bytes(b"half a frame")
    (folder / "notes.tmp").write_bytes(b"not ours")
    first = FrameStore(folder, 2)
    assert first.open({"frames": 2}) == 0
    assert not dead.exists() and (folder / "notes.tmp").exists()
    second = FrameStore(folder, 2)
    with pytest.raises(ImpastoError, match=f"another impasto run is writing frames to {folder} \\(pid "):
        second.open({"frames": 2})
    first.close()
    assert not (folder / FrameStore.LOCK).exists()
    with second:
        assert second.open({"frames": 2}) == 0
        assert (folder / FrameStore.LOCK).exists()
    assert not (folder / FrameStore.LOCK).exists()


def test_later_frames_run_single_scale_with_25_steps(tmp_path: Path,
                                                                    tiny_weights: Callable[..., VGGWeights]) -> None:
    clip = _clip()
    cfg = Config(size=40, start_size=16, steps=100)
    job = VideoStylizer(clip, [scene(48, 48)], cfg, FrameStore(tmp_path / "s", 3), VideoOptions(),
                        weights=tiny_weights())
    assert len(job.frame_config(0).scale_sizes(40)) > 1 and job.frame_steps_total(0) > 100  # frame 1: as given
    later = job.frame_config(1)
    assert later.steps == 25 and later.start_size is None and job.frame_steps_total(1) == 25
    few = VideoStylizer(clip, [scene(48, 48)], cfg.replace(steps=10), FrameStore(tmp_path / "f", 3), VideoOptions(),
                        weights=tiny_weights())
    assert few.frame_config(1).steps == 10
    independent = VideoStylizer(clip, [scene(48, 48)], cfg, FrameStore(tmp_path / "i", 3),
                                VideoOptions(warm_start=False, temporal_weight=0.0), weights=tiny_weights())
    assert independent.frame_steps_total(1) == independent.frame_steps_total(0)
