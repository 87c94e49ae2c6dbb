"""``impasto submit`` and ``impasto.studio.client`` against a real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from impasto.cli import main
from impasto.io import load_image, read_metadata
from impasto.studio.client import StudioClient, StudioError

from .conftest import ServerProcess


def test_submit_waits_and_saves_the_result(live_server: ServerProcess, studio_images: tuple[Path, Path],
                                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "result.png"
    code = main(["submit", str(studio_images[0]), str(studio_images[1]), "--server", live_server.url,
                 "--size", "32", "--steps", "4", "--config", '{"start_size": null, "seed": 3}', "-o", str(out)])
    assert code == 0
    job_id = capsys.readouterr().out.strip()
    meta = read_metadata(out)
    assert meta is not None and meta["studio_job"] == job_id
    assert meta["config"]["size"] == 32 and meta["config"]["seed"] == 3 and meta["steps"] == 4
    assert tuple(load_image(out).rgb.shape) == (3, 24, 32)
    with StudioClient(live_server.url) as c:
        assert c.job(job_id)["state"] == "done"
        assert c.jobs("done")[0]["id"] == job_id
        with pytest.raises(StudioError) as e:
            c.cancel(job_id)
        assert e.value.status == 409
        with pytest.raises(StudioError, match="no job"):
            c.job("A" * 22)


def test_submit_reports_problems_in_one_line(live_server: ServerProcess, studio_images: tuple[Path, Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", str(studio_images[0]), str(studio_images[1]), "--server", live_server.url,
                 "--config", '{"steps": -3}']) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("impasto: error: steps must be") and err.endswith("(got -3) (HTTP 400)")
    assert main(["submit", str(studio_images[0]), "--server", live_server.url]) == 2
    assert "at least one style image" in capsys.readouterr().err
    assert main(["submit", str(studio_images[0]), str(studio_images[1]), "--server", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("impasto: error: cannot reach the studio at http://127.0.0.1:9") and "\n" not in err


def test_a_second_server_on_the_same_port_or_data_folder_gets_one_line(
    live_server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--port", str(live_server.port), "--data", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"impasto: error: cannot listen on 127.0.0.1:{live_server.port}") and "\n" not in err
    assert main(["serve", "--port", "0", "--data", str(live_server.data)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"impasto: error: another impasto serve is using {live_server.data} (pid ")
    assert err.endswith("; stop it or use another --data") and "\n" not in err
