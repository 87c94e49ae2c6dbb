"""Studio fixtures: a tiny random VGG saved as a weights file, an in-process app, a real server process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import impasto
from impasto.io import save_image
from impasto_test_support import save_tiny_weights


def _root_conftest() -> Any:
    """tests/conftest.py under a name of its own, for its test pictures (``_pattern``)."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "conftest.py"
    spec = importlib.util.spec_from_file_location("impasto_tests_conftest", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_pattern = _root_conftest()._pattern

FINISHED = ("done", "failed", "cancelled")


def write_tiny_weights(path: Path) -> Path:
    """The tiny random VGG19 as a torchvision-layout .safetensors file: what ``--weights`` accepts."""
    return save_tiny_weights(path)


@pytest.fixture(scope="session")
def tiny_weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_weights(tmp_path_factory.mktemp("weights") / "tiny-vgg19.safetensors")


@pytest.fixture(scope="session")
def studio_images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("images")
    content, style = d / "photo.png", d / "painting.png"
    save_image(_pattern(48, 64, "content"), content)
    save_image(_pattern(64, 64, "style"), style)
    return content, style


def job_files(content: Path, styles: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    files = [("content", (content.name, content.read_bytes(), "image/png"))]
    files += [("style", (s.name, s.read_bytes(), "image/png")) for s in styles]
    return files


def wait_for(client: Any, job_id: str, states: tuple[str, ...] = FINISHED, timeout: float = 60.0,
             min_step: int | None = None) -> dict[str, Any]:
    """Poll a job until it is in one of ``states`` (or has reached ``min_step``)."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
        if job.get("state") in states and (min_step is None or job["step"] >= min_step):
            return job
        if job.get("state") in FINISHED and job.get("state") not in states:
            raise AssertionError(f"job ended {job['state']}: {job.get('error')}")
        if time.monotonic() > deadline:
            raise AssertionError(f"job still {job.get('state')} at step {job.get('step')} after {timeout} s")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env() -> dict[str, str]:
    """Environment for a child ``python -m impasto``: it must import the impasto under test."""
    root = str(Path(impasto.__file__).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": root, "OMP_NUM_THREADS": "1"}


class ServerProcess:
    """``impasto serve`` in a real process (its own session, so kill -9 reaches only it)."""

    def __init__(self, data: Path, weights: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = data
        self.log = data.parent / f"server-{self.port}.log"
        cmd = [sys.executable, "-m", "impasto", "serve", "--port", str(self.port), "--data", str(data),
               "--weights", str(weights), "--threads", "1", *extra]
        self.proc = subprocess.Popen(cmd, env=child_env(), stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.client = httpx.Client(base_url=self.url, timeout=30.0)
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if self.client.get("/api/health").status_code == 200:
                    break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, tiny_weights_file: Path) -> Iterator[ServerProcess]:
    """One real server shared by the browser and load tests."""
    server = ServerProcess(tmp_path_factory.mktemp("live") / "data", tiny_weights_file,
                           "--preview-seconds", "0.3", "--max-queued", "4")
    yield server
    server.stop()


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Parse a finished SSE body into (event, data) pairs."""
    out = []
    for block in text.split("\n\n"):
        kind, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        if kind is not None and data is not None:
            out.append((kind, data))
    return out
