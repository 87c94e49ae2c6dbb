"""A real process killed with SIGKILL mid-run loses at most one checkpoint interval, and resumes to the
same pixels as a run that was never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import impasto
from impasto.checkpoint import load_checkpoint
from impasto.vgg import weights as W

EVERY = 7


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(impasto.__file__).resolve().parents[1])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _weights_file(tmp_path: Path, tiny: W.VGGWeights) -> Path:
    sd = {}
    for i, (w, b) in zip(W.torchvision_indices(tiny.arch), tiny.convs, strict=True):
        sd[f"features.{i}.weight"], sd[f"features.{i}.bias"] = w, b
    path = tmp_path / "tiny_vgg19.pth"
    torch.save(sd, path)
    return path


def _cmd(content: Path, style: Path, out: Path, weights: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "impasto", str(content), str(style), "-o", str(out), "--weights", str(weights),
            "--size", "48", "--start-size", "32", "--steps", "60", "--device", "cpu", "-q", *extra]


def test_kill_9_loses_at_most_one_interval_and_resumes_identically(
    small_images: tuple[Path, Path], tiny_weights, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    content, style = small_images
    weights = _weights_file(tmp_path, tiny_weights())
    whole = tmp_path / "whole.png"
    subprocess.run(_cmd(content, style, whole, weights, "--checkpoint-every", "0"), env=_env(), check=True,
                   timeout=120)
    out = tmp_path / "out.png"
    ckpt = tmp_path / "out.png.ckpt"
    proc = subprocess.Popen(_cmd(content, style, out, weights, "--checkpoint-every", str(EVERY), "--print-every", "1"),
                            env=_env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    last = 0
    deadline = time.monotonic() + 100
    for line in proc.stdout:
        last = int(line.split()[1].split("/")[0])
        if last >= 3 * EVERY + 2 and ckpt.exists():
            os.kill(proc.pid, signal.SIGKILL)
            break
        assert time.monotonic() < deadline
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL and not out.exists()
    saved = load_checkpoint(ckpt).step
    assert saved % EVERY == 0 and last - saved <= EVERY  # at most one interval lost
    done = subprocess.run([sys.executable, "-m", "impasto", "resume", str(ckpt), "-q"], env=_env(), timeout=120,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not ckpt.exists()
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(whole)))
