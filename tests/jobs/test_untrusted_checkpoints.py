"""Checkpoints are untrusted input, and one rule governs a run's output: every reproduction of issue 20
that concerns `impasto resume` and two runs on one `-o`, each a CLI run with the tiny VGG."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from impasto import cli, engine
from impasto.checkpoint import MAGIC
from impasto.io.locks import try_lock
from impasto.vgg.weights import VGGWeights

FAST = ["--size", "32", "--start-size", "none", "--steps", "4", "--device", "cpu", "-q"]


@pytest.fixture(autouse=True)
def _tiny_network(monkeypatch: pytest.MonkeyPatch, tiny_weights: Callable[..., VGGWeights]) -> None:
    monkeypatch.setattr(engine, "load_weights", lambda path=None, fmt="auto": tiny_weights())


@pytest.fixture
def interrupted(small_images: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp/out.png.ckpt``: a run stopped by SIGINT after its second step."""
    content, style = small_images
    out = tmp_path / "out.png"
    real_run = engine.StyleTransfer.run

    def run_then_interrupt(self: engine.StyleTransfer, image_every: int = 0) -> Iterator[engine.Progress]:
        for ev in real_run(self, image_every):
            if ev.step == 2 and not ev.done:
                os.kill(os.getpid(), signal.SIGINT)
            yield ev

    monkeypatch.setattr(engine.StyleTransfer, "run", run_then_interrupt)
    assert cli.main([str(content), str(style), "-o", str(out), *FAST]) == 130
    monkeypatch.setattr(engine.StyleTransfer, "run", real_run)
    ckpt = tmp_path / "out.png.ckpt"
    assert ckpt.is_file() and not out.exists()
    return ckpt


def _payload(ckpt: Path) -> dict[str, Any]:
    data = ckpt.read_bytes()
    return torch.load(io.BytesIO(data[len(MAGIC) + 65:]), weights_only=True)  # type: ignore[no-any-return]


def _write_signed(path: Path, payload: object) -> None:
    """A crafted checkpoint with a correct digest: what an attacker who knows the format writes."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    body = buf.getvalue()
    path.write_bytes(MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body)


def _one_line_error(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("impasto: error:")]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_a_malicious_pickle_as_a_cli_checkpoint_is_refused_without_running(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    for name, body in {"raw.png.ckpt": pickle.dumps(_Exploit(marker)),
                       "zip.png.ckpt": None, "signed.png.ckpt": None}.items():
        path = tmp_path / name
        if name == "zip.png.ckpt":  # torch's own zip format, as format 1 was
            buf = io.BytesIO()
            torch.save({"x": _Exploit(marker)}, buf)
            body = buf.getvalue()
        if body is None:
            _write_signed(path, {"format": "impasto-checkpoint/2", "x": _Exploit(marker)})
        else:
            path.write_bytes(body)
        assert cli.main(["resume", str(path)]) == 2
        _one_line_error(capsys, str(path))
        assert not marker.exists()


@pytest.mark.parametrize("kind", ["empty", "devnull", "fifo", "folder", "text"])
def test_files_that_are_no_checkpoint_get_one_line(kind: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.png.ckpt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "devnull":
        path = Path(os.devnull)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.write_text("hello\n")
    done = threading.Event()
    code: list[int] = []

    def call() -> None:
        code.append(cli.main(["resume", str(path)]))
        done.set()

    threading.Thread(target=call, daemon=True).start()
    assert done.wait(20), "resume hung"  # a FIFO must not block the reader
    assert code == [2]
    _one_line_error(capsys)


def test_flipped_bytes_are_refused_not_resumed(interrupted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray(interrupted.read_bytes())
    for i in range(64):
        data[len(data) // 2 + i * 7] ^= 0x55
    interrupted.write_bytes(bytes(data))
    assert cli.main(["resume", str(interrupted)]) == 2
    _one_line_error(capsys, "damaged")
    assert not (interrupted.parent / "out.png").exists()


def test_paths_inside_a_checkpoint_never_choose_where_to_write(
        interrupted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    elsewhere = tmp_path / "elsewhere"
    payload = _payload(interrupted)
    payload["extra"]["output"] = str(victim)
    payload["extra"]["frontend"] = {"save_every": 1, "save_dir": str(elsewhere), "progress_gif": str(victim)}
    _write_signed(interrupted, payload)
    assert cli.main(["resume", str(interrupted)]) == 0
    assert victim.read_bytes() == b"precious"
    assert not elsewhere.exists()
    assert (tmp_path / "out.png").is_file() and not interrupted.exists()
    # save_every came back as a number: the step images go beside the output, where its name says.
    assert sorted(p.name for p in (tmp_path / "out_steps").iterdir()) == ["step_3.png", "step_4.png"]


def _damage(payload: dict[str, Any], how: str) -> object:
    state = payload["state"]
    if how == "no-position":
        del state["position"]
    elif how == "no-done":
        del state["position"]["done"]
    elif how == "no-ys":
        state["optimizer"].pop("_ys", None)
        state["optimizer"].pop("state", None)
        state["optimizer"]["garbage"] = torch.zeros(5)
    elif how == "no-config":
        del payload["config"]
    elif how == "pixel-shape":
        state["pixels"] = torch.zeros(1, 3, 7, 9)
    elif how == "nan-pixels":
        state["pixels"] = torch.full_like(state["pixels"], float("nan"))
    elif how == "rng-size":
        state["torch_rng"] = torch.zeros(10, dtype=torch.uint8)
    elif how == "list-state":
        payload["state"] = [1, 2, 3]
    elif how == "save-every-text":
        payload["extra"]["frontend"]["save_every"] = "x"
        return payload
    elif how == "step-text":
        state["position"]["step"] = "2"
    elif how == "negative-scale":
        state["position"]["scale"] = -1
    elif how == "bad-sha":
        payload["sha256"] = ["zz"]
    elif how == "tensor-in-extra":
        payload["extra"]["history"] = torch.zeros(3)
    return payload


@pytest.mark.parametrize("how", ["no-position", "no-done", "no-ys", "no-config", "pixel-shape", "nan-pixels",
                                 "rng-size", "list-state", "step-text", "negative-scale", "bad-sha",
                                 "tensor-in-extra"])
def test_a_crafted_state_is_one_line_and_exit_2(how: str, interrupted: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _write_signed(interrupted, _damage(_payload(interrupted), how))
    assert cli.main(["resume", str(interrupted)]) == 2
    _one_line_error(capsys)
    assert not (interrupted.parent / "out.png").exists()


def test_a_text_option_in_the_record_is_ignored_not_a_traceback(
        interrupted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_signed(interrupted, _damage(_payload(interrupted), "save-every-text"))
    assert cli.main(["resume", str(interrupted)]) == 0
    assert (interrupted.parent / "out.png").is_file()


def test_a_new_run_refuses_an_output_with_a_pending_checkpoint(
        interrupted: Path, small_images: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    content, style = small_images
    out = interrupted.parent / "out.png"
    before = interrupted.read_bytes()
    assert cli.main([str(content), str(style), "-o", str(out), *FAST]) == 2
    _one_line_error(capsys, f"impasto resume {interrupted}", "--restart")
    assert interrupted.read_bytes() == before and not out.exists()
    assert cli.main([str(content), str(style), "-o", str(out), *FAST, "--restart"]) == 0
    assert out.is_file() and not interrupted.exists()


def test_resume_never_replaces_a_newer_result_without_force(
        interrupted: Path, small_images: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = interrupted.parent / "out.png"
    out.write_bytes(b"a newer picture")
    os.utime(out, (os.stat(interrupted).st_mtime + 10,) * 2)
    assert cli.main(["resume", str(interrupted)]) == 2
    _one_line_error(capsys, "--force")
    assert out.read_bytes() == b"a newer picture" and interrupted.is_file()
    assert cli.main(["resume", str(interrupted), "--force"]) == 0
    assert out.read_bytes() != b"a newer picture"


def test_a_running_output_is_locked_for_a_second_run_and_a_second_resume(
        interrupted: Path, small_images: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    content, style = small_images
    out = interrupted.parent / "out.png"
    held = try_lock(str(out) + ".lock")  # as a first run holds it while it writes
    assert held is not None
    try:
        assert cli.main([str(content), str(style), "-o", str(out), *FAST, "--restart"]) == 2
        _one_line_error(capsys, "another impasto run is writing")
        assert cli.main(["resume", str(interrupted)]) == 2
        _one_line_error(capsys, "another impasto run is writing")
        assert interrupted.is_file() and not out.exists()
    finally:
        held.release()
    assert cli.main(["resume", str(interrupted)]) == 0 and out.is_file()
    assert not Path(str(out) + ".lock").exists()
