"""Helpers of the batch tests: a tiny VGG saved to a weights file, small distinct images, running
``impasto batch`` in this process and killing a worker in the middle of a job."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from impasto.batch.cli import main
from impasto.batch.jobs import STATE_DIR
from impasto.io import save_image
from impasto.vgg import VGG_BLOCKS
from impasto.vgg.weights import torchvision_indices

TINY = ["--size", "32", "--start-size", "none", "--steps", "12", "--checkpoint-every", "5"]
"""Shared flags of every test batch: 32 px, one scale, 12 steps."""


def tiny_vgg_file(path: Path, seed: int = 0) -> Path:
    """A random VGG19 with tiny channel counts (as tests/conftest.py's ``tiny_vgg``), saved as a
    torchvision-layout .safetensors file: what ``--weights FILE`` reads."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    prev = 3
    idx = iter(torchvision_indices("vgg19"))
    for n, c in zip(VGG_BLOCKS["vgg19"], (4, 5, 6, 7, 7), strict=True):
        for _ in range(n):
            i = next(idx)
            sd[f"features.{i}.weight"] = torch.randn(c, prev, 3, 3, generator=g) * 0.3
            sd[f"features.{i}.bias"] = torch.randn(c, generator=g) * 0.1
            prev = c
    save_file(sd, str(path), metadata={"preprocess": "caffe"})
    return path


def image(h: int, w: int, seed: int) -> torch.Tensor:
    """A smooth random image: distinct per seed, so every job has its own key."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(small[None], size=(h, w), mode="bilinear", align_corners=False)[0]


def write_grid(root: Path) -> tuple[Path, Path]:
    """Folders with 3 content photos and 2 style paintings (6 jobs)."""
    contents, styles = root / "photos", root / "paintings"
    contents.mkdir()
    styles.mkdir()
    for i, name in enumerate(("alps", "beach", "city")):
        save_image(image(36, 48, i), contents / f"{name}.png")
    for i, name in enumerate(("monet", "turner")):
        save_image(image(48, 48, 10 + i), styles / f"{name}.jpg")
    return contents, styles


@dataclass
class BatchRun:
    rc: int
    out: str
    err: str


def run_batch_cli(argv: Sequence[str]) -> BatchRun:
    """``impasto batch ARGV`` in this process (its workers are other processes)."""
    out, err = io.StringIO(), io.StringIO()
    rc = main(list(argv), stdout=out, stderr=err)
    return BatchRun(rc, out.getvalue(), err.getvalue())


def kill_mid_job(argv: Sequence[str], outdir: Path, job: str, at_step: int, timeout: float = 120.0
                 ) -> tuple[BatchRun, int]:
    """Run the batch in a thread; once *job*'s worker has checkpointed step >= *at_step*, SIGKILL that
    worker. Returns the batch's result and the killed pid."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["run"] = run_batch_cli(argv)
        except BaseException as e:  # noqa: BLE001 - re-raised in the test thread below
            result["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    state = outdir / STATE_DIR
    killed = None
    deadline = time.monotonic() + timeout
    while killed is None and time.monotonic() < deadline and t.is_alive():
        for path in state.glob(f"{job}.*/status.json"):
            try:
                status = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if status.get("step", 0) >= at_step:
                killed = int(status["pid"])
                os.kill(killed, signal.SIGKILL)
                break
        time.sleep(0.02)
    t.join(timeout)
    if "error" in result:
        raise result["error"]
    assert killed is not None, f"job {job} never reached step {at_step} (batch: {result.get('run')})"
    assert not t.is_alive(), "the batch did not finish after the kill"
    return result["run"], killed


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
