"""Two real processes on one output: the second is refused while the first writes, an interrupted run's
checkpoint is neither taken over nor lost, and only one of two simultaneous resumes does the work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import impasto


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(impasto.__file__).resolve().parents[1])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run(content: Path, style: Path, out: Path, weights: Path, steps: int, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "impasto", str(content), str(style), "-o", str(out), "--weights", str(weights),
           "--size", "48", "--start-size", "none", "--steps", str(steps), "--device", "cpu", "-q",
           "--print-every", "1", *extra]
    return subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_step(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the first --print-every line: the run holds its lock and is optimising
    assert line.startswith("step"), (line, proc.stderr.read() if proc.stderr else "")


def test_a_second_run_and_a_second_resume_on_one_output_are_refused(
        small_images: tuple[Path, Path], tmp_path: Path, tiny_weights_file: Path) -> None:
    content, style = small_images
    out = tmp_path / "out.png"
    ckpt = tmp_path / "out.png.ckpt"
    first = _run(content, style, out, tiny_weights_file, 100_000)
    try:
        _wait_for_step(first)
        second = _run(content, style, out, tiny_weights_file, 3, "--restart")
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2 and "another impasto run is writing" in err and "Traceback" not in err
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
        assert first.returncode == 130 and f"impasto resume {ckpt}" in err
    finally:
        if first.poll() is None:
            first.kill()
    assert ckpt.is_file() and not out.exists()
    saved = ckpt.read_bytes()

    # A new run to the same output refuses to discard the interrupted one.
    third = _run(content, style, out, tiny_weights_file, 3)
    _, err = third.communicate(timeout=120)
    assert third.returncode == 2 and "--restart" in err and ckpt.read_bytes() == saved

    # Two resumes of one checkpoint: the first continues (its --print-every comes back from the
    # checkpoint), the second is refused while it runs; the first stops again with the checkpoint kept.
    cmd = [sys.executable, "-m", "impasto", "resume", str(ckpt), "-q"]
    a = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_step(a)
        b = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
        assert b.returncode == 2 and "another impasto run is writing" in b.stderr and "Traceback" not in b.stderr
        a.send_signal(signal.SIGINT)
        _, err = a.communicate(timeout=120)
        assert a.returncode == 130 and "Traceback" not in err
    finally:
        if a.poll() is None:
            a.kill()
    assert ckpt.is_file() and not out.exists() and not Path(f"{out}.lock").exists()
