"""Hostile use of the command line itself: full disks, closed pipes, names at the file system's limit, and
Ctrl-C while the program is still importing. Each case ends with one line and a plain exit status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import impasto
from impasto.errors import ImpastoError
from impasto.io import save_image
from impasto.io.atomic import check_derived_names, check_writable, derived_names

SRC = str(Path(impasto.__file__).resolve().parent.parent)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}


def _impasto(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "impasto", *args], env=_env(), capture_output=True, text=True,
                          timeout=120, **kw)  # type: ignore[call-overload]


def _no_traceback(err: str) -> None:
    assert "Traceback" not in err and "Exception ignored" not in err, err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_show_config_to_a_full_disk_is_one_line_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "meta.png"
    save_image(torch.rand(3, 8, 8), out, metadata={"config": {"size": 8}, "note": "x" * 20_000})
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "impasto", "show-config", str(out)], env=_env(), stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    _no_traceback(r.stderr)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["impasto: error: cannot write to standard output: No space left on device"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_small_output_to_a_full_disk_is_caught_at_the_final_flush(tmp_path: Path) -> None:
    # `presets` prints a few lines: they sit in the buffer until exit, where the failure used to be ignored.
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "impasto", "presets"], env=_env(), stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    _no_traceback(r.stderr)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_presets_into_a_closed_pipe_exits_quietly() -> None:
    # `impasto presets -v | head -c 20` once head has gone: the reader is closed before the first write,
    # so the write gets EPIPE whatever the timing (the whole list fits in a pipe's buffer).
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.Popen([sys.executable, "-m", "impasto", "presets", "-v"], env=_env(), stdout=w,
                             stderr=subprocess.PIPE)
    finally:
        os.close(w)
    assert p.stderr is not None
    err = p.stderr.read().decode()
    code = p.wait(timeout=120)
    assert err == ""
    assert code == 128 + signal.SIGPIPE  # what the shell reports for a tool that SIGPIPE ended


def test_presets_into_a_closed_pipe_through_a_shell() -> None:
    r = subprocess.run(f"'{sys.executable}' -m impasto presets -v | head -c 20", shell=True, env=_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and len(r.stdout) == 20
    assert r.stderr == ""


def test_derived_names_of_an_output() -> None:
    names = derived_names(Path("/x/out.png"))
    assert names == ["out.png", "out.png.ckpt", "out.interrupted.png", "out_steps"]
    assert derived_names(Path("clip.mp4"), extra=(".frames",))[-1] == "clip.mp4.frames"


@pytest.mark.parametrize("length", [245, 246, 250, 251, 252, 255, 256, 300])
def test_an_output_name_near_name_max_is_refused_up_front(tmp_path: Path, length: int) -> None:
    name = "a" * (length - 4) + ".png"
    out = tmp_path / name
    with pytest.raises(ImpastoError) as e:
        check_derived_names(out)
    msg = str(e.value)
    assert "\n" not in msg and "too long" in msg
    if length <= 255:
        assert "at most 243 bytes" in msg  # 255 - len(".interrupted"), the longest derived name
    # check_writable itself never lets the OS's "File name too long" escape.
    if length > 255:
        with pytest.raises(ImpastoError, match="too long for this file system"):
            check_writable(out)
    assert not list(tmp_path.iterdir())


def test_an_output_name_that_leaves_room_is_accepted(tmp_path: Path) -> None:
    check_derived_names(tmp_path / ("a" * 239 + ".png"))  # 243 bytes: .interrupted fits exactly


def test_cli_refuses_a_long_output_name_in_one_line(tmp_path: Path, tiny_weights_file_cli: Path,
                                                   cli_images: tuple[Path, Path]) -> None:
    content, style = cli_images
    for length in (245, 251, 256):
        name = "b" * (length - 4) + ".png"
        r = _impasto(str(content), str(style), "-o", name, "--size", "24", "--steps", "1", "-q", "--weights",
                     str(tiny_weights_file_cli), cwd=tmp_path)
        _no_traceback(r.stderr)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("impasto: error: output name") and "too long" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def tiny_weights_file_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from impasto_test_support import save_tiny_weights

    return save_tiny_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors")


@pytest.fixture(scope="module")
def cli_images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from PIL import Image

    d = tmp_path_factory.mktemp("img")
    Image.new("RGB", (32, 24), (200, 120, 40)).save(d / "c.png")
    Image.new("RGB", (32, 32), (20, 60, 220)).save(d / "s.png")
    return d / "c.png", d / "s.png"


def _import_impasto_loads_torch() -> bool:
    probe = "import sys, impasto; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", probe], env=_env(), capture_output=True, text=True, timeout=120)
    return r.stdout.strip() == "True"


@pytest.fixture(scope="module")
def eager_package() -> bool:
    return _import_impasto_loads_torch()


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15, 0.3, 0.6, 1.0, 1.4, 2.0, 3.0])
def test_ctrl_c_while_starting_up_is_exit_130_in_one_line(delay: float, tmp_path: Path, eager_package: bool,
                                                          request: pytest.FixtureRequest) -> None:
    if eager_package:
        # `import impasto` itself (torch) runs before impasto.cli.main can catch anything: the window the
        # lazy package import closes (main's own imports: the next test).
        request.applymarker(pytest.mark.xfail(reason="import impasto still loads torch eagerly", strict=False))
    # The console script's own entry (impasto.cli:main), as `impasto` on the PATH runs it.
    script = "import sys\nfrom impasto.cli import main\nsys.exit(main())\n"
    p = subprocess.Popen([sys.executable, "-c", script, "presets", "-v"], env=_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    if "KeyboardInterrupt" in err and "/impasto/" not in err:
        # The signal landed in the interpreter's own start-up (site, encodings), before the first line of
        # any impasto file: nothing of impasto's could have run, so nothing of it can catch it.
        assert 'File "<string>", line 2' in err or "<frozen" in err, err
        return
    _no_traceback(err)
    if p.returncode == 0:
        return  # it finished before the signal came
    if p.returncode == -signal.SIGINT and err == "":
        return  # the signal came before Python had started: killed by it, silently, as the shell expects
    assert p.returncode == 130, (p.returncode, err)
    assert err.strip().splitlines() == ["impasto: interrupted"], err


def test_ctrl_c_during_the_commands_imports_is_exit_130_in_one_line() -> None:
    # Deterministic: the import of the command modules (torch behind them) is where the interrupt lands.
    script = (
        "import sys\n"
        "class Finder:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'impasto.cli.run':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Finder())\n"
        "from impasto.cli import main\n"
        "sys.exit(main())\n"
    )
    r = subprocess.run([sys.executable, "-c", script, "presets"], env=_env(), capture_output=True, text=True,
                       timeout=120)
    _no_traceback(r.stderr)
    assert r.returncode == 130 and r.stderr.splitlines() == ["impasto: interrupted"], r.stderr
