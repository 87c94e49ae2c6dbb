"""Helpers for the video tests: a tiny VGG as a weights file, synthetic clips, subprocess environment."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import torch

import impasto
from impasto.vgg import VGGWeights
from impasto.vgg.weights import torchvision_indices


def save_tiny(weights: VGGWeights, path: Path) -> Path:
    """A tiny VGG as a torchvision-layout state dict (``features.N.weight``), loadable with --weights."""
    sd = {}
    for idx, (w, b) in zip(torchvision_indices(weights.arch), weights.convs, strict=True):
        sd[f"features.{idx}.weight"] = w
        sd[f"features.{idx}.bias"] = b
    torch.save(sd, path)
    return path


def scene(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A textured [3, h, w] image in [0, 1]: smooth colour gradients plus blobs, good for optical flow."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = torch.stack([0.3 + 0.4 * xx, 0.2 + 0.5 * yy, 0.6 - 0.3 * xx * yy])
    for _ in range(12):
        cy, cx = torch.rand(2, generator=g)
        r = 0.02 + 0.05 * float(torch.rand(1, generator=g))
        col = torch.rand(3, 1, 1, generator=g)
        blob = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        img = img * (1 - blob) + col * blob
    return img.clamp(0, 1)


def pan_frames(n: int, h: int, w: int, dx: int = 2, dy: int = 1) -> list[torch.Tensor]:
    """``n`` frames of a camera panning over a larger scene by (dx, dy) pixels per frame."""
    big = scene(h + dy * n + 4, w + dx * n + 4)
    return [big[:, dy * i: dy * i + h, dx * i: dx * i + w].contiguous() for i in range(n)]


def write_mp4(frames: list[torch.Tensor], path: Path, fps: float, audio: bool = False) -> Path:
    import imageio_ffmpeg

    h, w = frames[0].shape[1:]
    silent = path.with_name(path.stem + "_silent.mp4") if audio else path
    gen = imageio_ffmpeg.write_frames(str(silent), (w, h), fps=fps, macro_block_size=1, quality=9,
                                      ffmpeg_log_level="error")
    gen.send(None)
    for f in frames:
        gen.send(np.ascontiguousarray((f * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()))
    gen.close()
    if audio:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
        subprocess.run([exe, "-y", "-loglevel", "error", "-i", str(silent), "-f", "lavfi", "-i",
                        "sine=frequency=440:duration=2", "-c:v", "copy", "-c:a", "aac", "-shortest", str(path)],
                       check=True)
        silent.unlink()
    return path


def subprocess_env() -> dict[str, str]:
    """Environment for ``python -m impasto`` that imports the impasto under test, on one thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(impasto.__file__).resolve().parents[1])
    env["OMP_NUM_THREADS"] = "1"
    return env
