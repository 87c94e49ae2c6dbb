"""The job API through an in-process client (the app in this process; each job in a process of its own)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sqlite3
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

with warnings.catch_warnings():  # Starlette suggests httpx2; httpx is what it runs on today
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient
from PIL import Image, PngImagePlugin

from impasto import Config
from impasto.io import load_image, read_metadata, save_image
from impasto.studio.app import Limits, StudioSettings, create_app
from impasto.studio.db import MIGRATIONS, SCHEMA_VERSION, JobDB
from impasto.studio.manager import PoolSettings

from .conftest import job_files, sse_events, wait_for

RUN = {"size": 48, "start_size": 32, "steps": 6}


def make_client(data: Path, weights: Path, **kw: Any) -> TestClient:
    pool = PoolSettings(weights=str(weights), threads=1, preview_seconds=0.0, checkpoint_every=4,
                        **kw.pop("pool", {}))
    settings = StudioSettings(data=data, pool=pool, **kw)
    # base_url: the server answers only to loopback Host headers.
    return TestClient(create_app(settings), base_url="http://127.0.0.1")


LIMITS = Limits(max_upload_bytes=200_000, max_pixels=64 * 64, max_size=512)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("studio") / "data"


@pytest.fixture(scope="module")
def client(data_dir: Path, tiny_weights_file: Path) -> Iterator[TestClient]:
    """One app for most tests (each app keeps a job process started, which takes a few seconds)."""
    with make_client(data_dir, tiny_weights_file, limits=LIMITS) as c:
        yield c


def submit(client: TestClient, images: tuple[Path, Path], config: dict[str, Any] | None = RUN,
           **data: str) -> Any:
    form = {"config": json.dumps(config)} if config is not None else {}
    return client.post("/api/jobs", files=job_files(images[0], [images[1]]), data={**form, **data})


def test_job_runs_to_a_result_with_metadata_previews_and_events(
    client: TestClient, studio_images: tuple[Path, Path], tmp_path: Path
) -> None:
    r = submit(client, studio_images)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["state"] == "queued" and len(job["id"]) == 22
    # 48 px from 32 px by sqrt(2): scales 32, 48 -> two scales of 6 steps.
    n_scales = len(Config(**{**RUN}).scale_sizes(48))
    assert job["total_steps"] == 6 * n_scales
    assert r.headers["location"] == f"/api/jobs/{job['id']}"
    assert job["config"]["size"] == 48 and job["config"]["style_weight"] == Config().style_weight

    done = wait_for(client, job["id"])
    assert done["state"] == "done", done["error"]
    assert done["step"] == done["total_steps"] == 6 * n_scales
    assert done["finished"] >= done["created"] and done["loss"] > 0

    res = client.get(f"/api/jobs/{job['id']}/result")
    assert res.status_code == 200 and res.headers["content-type"] == "image/png"
    out = tmp_path / "result.png"
    out.write_bytes(res.content)
    meta = read_metadata(out)
    assert meta is not None
    assert meta["config"]["size"] == 48 and meta["steps"] == 6 * n_scales
    assert meta["content"] == "photo.png" and meta["styles"] == ["painting.png"]
    assert [row[0] for row in meta["loss_history"]["rows"]] == list(range(1, 6 * n_scales + 1))
    img = load_image(out).rgb
    assert tuple(img.shape) == (3, 36, 48)  # 48x64 content at long side 48
    # The result differs from the photo: the optimisation did something.
    photo = load_image(studio_images[0]).rgb
    small = torch.nn.functional.interpolate(photo[None], size=(36, 48), mode="bilinear")[0]
    assert float((img - small).abs().mean()) > 0.01

    prev = client.get(f"/api/jobs/{job['id']}/preview")
    assert prev.status_code == 200
    assert Image.open(io.BytesIO(prev.content)).size == (48, 36)

    ev = sse_events(client.get(f"/api/jobs/{job['id']}/events").text)
    kinds = [k for k, _ in ev]
    assert kinds[0] == "job" and kinds[-1] == "end" and ev[-1][1]["state"] == "done"
    steps = [d["step"] for k, d in ev if k == "progress"]
    assert steps == list(range(1, 6 * n_scales + 1))
    assert "preview" in kinds and "started" in kinds
    assert [d["state"] for k, d in ev if k == "state"] == ["queued", "running", "done"]

    # Inputs are served back (before/after), by the job's own names only.
    assert client.get(f"/api/jobs/{job['id']}/inputs/content").content == studio_images[0].read_bytes()
    assert client.get(f"/api/jobs/{job['id']}/inputs/style0").content == studio_images[1].read_bytes()
    assert client.get(f"/api/jobs/{job['id']}/inputs/style1").status_code == 404

    # The output's settings can be read back (the page's "drop an output image").
    ins = client.post("/api/inspect", files={"image": ("x.png", res.content, "image/png")})
    assert ins.status_code == 200 and ins.json()["config"] == meta["config"]
    plain = client.post("/api/inspect", files={"image": ("p.png", studio_images[0].read_bytes(), "image/png")})
    assert plain.status_code == 422 and "no impasto settings" in plain.json()["detail"]


def test_list_is_newest_first_and_delete_removes_files(
    client: TestClient, data_dir: Path, studio_images: tuple[Path, Path], tmp_path: Path
) -> None:
    # A photo of its own (the flipped one), so its upload's life can be followed.
    photo = tmp_path / "flipped.png"
    save_image(load_image(studio_images[0]).rgb.flip(-1), photo)
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    a = submit(client, (photo, studio_images[1])).json()
    b = submit(client, (photo, studio_images[1]), {**RUN, "steps": 2}).json()
    wait_for(client, a["id"])
    wait_for(client, b["id"])
    ids = [j["id"] for j in client.get("/api/jobs").json()]
    assert ids[:2] == [b["id"], a["id"]]
    created = [j["created"] for j in client.get("/api/jobs").json()]
    assert created == sorted(created, reverse=True)
    assert [j["id"] for j in client.get("/api/jobs?state=done&limit=2").json()] == [b["id"], a["id"]]
    assert client.get("/api/jobs?state=bogus").status_code == 400
    stored = data_dir / "uploads" / f"{sha}.png"
    assert stored.read_bytes() == photo.read_bytes()  # stored once, by content hash
    assert client.delete(f"/api/jobs/{a['id']}").json() == {"id": a["id"], "deleted": True}
    assert client.get(f"/api/jobs/{a['id']}").status_code == 404
    assert client.delete(f"/api/jobs/{a['id']}").status_code == 404
    assert not (data_dir / "jobs" / a["id"]).exists()
    assert stored.exists()  # still used by b
    client.delete(f"/api/jobs/{b['id']}")
    assert not stored.exists()


def test_bounded_queue_429_and_cancelling_queued_and_running_jobs(
    tmp_path: Path, tiny_weights_file: Path, studio_images: tuple[Path, Path]
) -> None:
    with make_client(tmp_path / "data", tiny_weights_file, pool={"max_queued": 1}) as client:
        long = {"size": 64, "start_size": None, "steps": 5000}
        first = submit(client, studio_images, long)
        assert first.status_code == 201
        running = wait_for(client, first.json()["id"], ("running",), min_step=1)
        queued = submit(client, studio_images)
        assert queued.status_code == 201 and queued.json()["state"] == "queued"
        full = submit(client, studio_images)
        assert full.status_code == 429 and "queue is full (1 jobs waiting)" in full.json()["detail"]
        assert full.headers["retry-after"] == "30"
        assert client.get(f"/api/jobs/{queued.json()['id']}").json()["state"] == "queued"
        r = client.post(f"/api/jobs/{queued.json()['id']}/cancel")
        assert r.status_code == 200 and r.json()["state"] == "cancelled"
        assert client.post(f"/api/jobs/{queued.json()['id']}/cancel").status_code == 409
        r = client.post(f"/api/jobs/{running['id']}/cancel")
        assert r.status_code == 200 and r.json()["cancel"] == "cancelling"
        job = wait_for(client, running["id"], timeout=30)
        assert job["state"] == "cancelled" and 0 < job["step"] < 5000
        assert client.get(f"/api/jobs/{running['id']}/result").status_code == 409
        # The pool and the queue are free again: a new job runs to the end.
        assert wait_for(client, submit(client, studio_images).json()["id"])["state"] == "done"


def test_bad_requests_get_one_line_json_errors(client: TestClient, data_dir: Path,
                                               studio_images: tuple[Path, Path]) -> None:
    content, style = studio_images

    def post(files: list[Any], config: Any = RUN) -> tuple[int, str]:
        r = client.post("/api/jobs", files=files, data={"config": json.dumps(config)} if config else {})
        detail = r.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail
        return r.status_code, detail

    good = job_files(content, [style])
    # Content is sniffed: a text file named .png is refused, a PNG named .jpg is accepted as PNG.
    assert post([("content", ("photo.png", b"hello, not an image", "image/png")), good[1]])[0] == 415
    code, msg = post([("content", ("evil.exe", b"MZ\x90\x00" * 50, "image/png")), good[1]])
    assert code == 415 and "not an image" in msg
    # Too many bytes, too many pixels (the header is enough; a 4000x4000 PNG of zeros is small).
    big = io.BytesIO()
    Image.new("RGB", (4000, 4000)).save(big, "PNG")
    code, msg = post([("content", ("big.png", big.getvalue(), "image/png")), good[1]])
    assert code == 413 and "pixel limit" in msg
    padded = io.BytesIO()
    info = PngImagePlugin.PngInfo()
    info.add_text("padding", "x" * 250_000)
    Image.new("RGB", (8, 8)).save(padded, "PNG", pnginfo=info)
    code, msg = post([("content", ("n.png", padded.getvalue(), "image/png")), good[1]])
    assert code == 413 and "upload limit" in msg
    # Missing fields, bad config.
    code, msg = post([good[0]])
    assert code == 400 and "style" in msg
    assert post(good, {"size": 48, "bogus": 1}) == (400, "unknown configuration keys: bogus")
    assert post(good, {"steps": -1})[0] == 400
    assert post(good, {"steps": "many"})[0] == 400
    assert post(good, {"size": 4096})[1] == "size must be at most 512 on this server (got 4096)"
    r = client.post("/api/jobs", files=good, data={"config": "{not json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
    r = client.post("/api/jobs", files=good, data={"config": "[1, 2]"})
    assert r.status_code == 400
    r = client.post("/api/jobs", files=good, data={"config": json.dumps(RUN), "preset": "nonesuch"})
    assert r.status_code == 400 and "unknown preset" in r.json()["detail"]
    # No request string ever becomes a path: config fields that name files are refused outright.
    for field, value in (("weights", "/etc/passwd"), ("init_file", "../../secret.png"), ("mask", "/dev/zero")):
        code, msg = post(good, {**RUN, field: value})
        assert code == 400 and "names a file on the server" in msg, (field, msg)
    assert post(good, {**RUN, "init": "file"})[0] == 400
    # Unknown or malformed ids are 404 (never a file lookup), including traversal attempts.
    for bad in ("AAAAAAAAAAAAAAAAAAAAAA", "..%2F..%2Fetc%2Fpasswd", "%2e%2e", "x" * 300):
        assert client.get(f"/api/jobs/{bad}").status_code == 404
        assert client.get(f"/api/jobs/{bad}/result").status_code == 404
    assert client.get("/api/jobs/../../etc/passwd").status_code == 404
    assert client.get("/static/../studio.sqlite3").status_code == 404
    # A style file name with a path in it is display text only.
    sneaky = [good[0], ("style", ("../../../etc/cron.d/x.png", style.read_bytes(), "image/png"))]
    r = client.post("/api/jobs", files=sneaky, data={"config": json.dumps(RUN)})
    assert r.status_code == 201 and r.json()["styles"] == [{"name": "x.png"}]
    stored = sorted(p.name for p in (data_dir / "uploads").iterdir())
    assert all(len(n.split(".")[0]) == 64 and n.endswith(".png") for n in stored)
    wait_for(client, r.json()["id"])
    assert client.post(f"/api/jobs/{r.json()['id']}/cancel").status_code == 409


def test_host_origin_and_token_checks(client: TestClient, tmp_path: Path, tiny_weights_file: Path,
                                      studio_images: tuple[Path, Path]) -> None:
    assert client.get("/api/health").status_code == 200
    r = client.get("/api/health", headers={"host": "attacker.example:8000"})
    assert r.status_code == 403 and "localhost" in r.json()["detail"]
    r = client.post("/api/jobs", files=job_files(*studio_images[:1], [studio_images[1]]),
                    headers={"origin": "http://attacker.example"})
    assert r.status_code == 403 and r.json()["detail"] == "cross-origin request refused"
    r = client.post("/api/jobs", headers={"content-length": str(10**10)})
    assert r.status_code == 413
    token = "t0ken-with-enough-characters"
    with make_client(tmp_path / "b", tiny_weights_file, host="0.0.0.0", token=token,
                     pool={"prestart": False}) as client:
        assert client.get("/api/jobs").status_code == 401
        assert client.get("/", follow_redirects=False).status_code == 303  # to the sign-in page
        wrong = {"authorization": "Bearer wrong-token-of-some-length"}
        assert client.get("/api/jobs", headers=wrong).status_code == 401
        assert client.get("/api/jobs", headers={"authorization": f"Bearer {token}"}).status_code == 200
        # The page: signing in at /login sets an HttpOnly cookie that images and EventSource then carry.
        r = client.post("/login", data={"token": token}, follow_redirects=False)
        assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
        assert client.get("/").status_code == 200
        assert client.get("/api/jobs").status_code == 200


def test_serve_refuses_other_hosts_without_a_token(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from impasto.cli import main

    monkeypatch.delenv("IMPASTO_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("impasto: error: --host 0.0.0.0") and "--token" in err and "\n" not in err
    assert main(["serve", "--host", "0.0.0.0", "--token", "short"]) == 2


def test_database_migrates_old_files_and_refuses_newer_ones(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    for stmt in MIGRATIONS[0]:
        conn.execute(stmt)
    conn.execute("PRAGMA user_version = 1")
    up = json.dumps({"sha256": "a" * 64, "ext": "png", "name": "p.png"})
    conn.execute("INSERT INTO jobs (id, state, created, config, content, styles) VALUES (?,?,?,?,?,?)",
                 ("B" * 22, "queued", 1.0, "{}", up, json.dumps([json.loads(up)])))
    conn.commit()
    conn.close()
    db = JobDB(path)
    assert db.version == SCHEMA_VERSION == 3
    job = db.get("B" * 22)
    assert job is not None and job.attempts == 0 and job.resumes == () and job.content.name == "p.png"
    assert job.draft is None
    assert db._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(Exception, match="newer impasto"):
        JobDB(path)


def test_presets_and_page_are_served(client: TestClient) -> None:
    p = client.get("/api/presets").json()
    assert p["default"] == Config().to_dict()
    assert "gatys" in [x["name"] for x in p["presets"]]
    schema_of_config = client.get("/api/config/schema").json()
    assert set(schema_of_config["properties"]) == set(Config().to_dict())
    page = client.get("/")
    assert page.status_code == 200 and "impasto studio" in page.text
    # Everything the page loads is served locally: no CDN.
    assert "http" not in page.text.replace('href="/docs"', "")
    assert client.get("/static/app.js").status_code == 200
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-static/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text
    assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/openapi.json").json()
    for route in ("/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/events", "/api/jobs/{job_id}/preview",
                  "/api/jobs/{job_id}/result", "/api/jobs/{job_id}/cancel"):
        assert route in schema["paths"]
    assert "delete" in schema["paths"]["/api/jobs/{job_id}"]


def test_a_crashed_job_process_fails_its_job_not_the_server(
    client: TestClient, studio_images: tuple[Path, Path]
) -> None:
    job = submit(client, studio_images, {"size": 64, "start_size": None, "steps": 5000}).json()
    wait_for(client, job["id"], ("running",), min_step=1)
    manager = client.app.state.manager  # type: ignore[attr-defined]
    os.kill(manager._running[job["id"]].proc.pid, signal.SIGKILL)  # what the kernel's OOM killer does
    failed = wait_for(client, job["id"], timeout=30)
    assert failed["state"] == "failed"
    assert failed["error"].startswith("the job process ended unexpectedly (killed by signal 9)")
    assert client.get("/api/health").json()["ok"] is True
    assert wait_for(client, submit(client, studio_images).json()["id"])["state"] == "done"


def test_stopping_the_server_suspends_a_running_job_and_the_next_start_resumes_it(
    tmp_path: Path, tiny_weights_file: Path, studio_images: tuple[Path, Path]
) -> None:
    data = tmp_path / "data"
    with make_client(data, tiny_weights_file, pool={"prestart": False}) as client:
        job = submit(client, studio_images, {"size": 64, "start_size": None, "steps": 5000}).json()
        wait_for(client, job["id"], ("running",), min_step=10)
    # Leaving the block shut the app down: the job saved a checkpoint and went back to the queue.
    db = JobDB(data / "studio.sqlite3")
    stopped = db.get(job["id"])
    db.close()
    assert stopped is not None and stopped.state == "queued" and stopped.step >= 10
    assert (data / "jobs" / job["id"] / "checkpoint.pt").is_file()
    with make_client(data, tiny_weights_file, pool={"prestart": False}) as client:
        # It continues from the step it stopped at, losing none (then it is cancelled: 5000 steps is long).
        going = wait_for(client, job["id"], ("running",), min_step=stopped.step + 1)
        assert going["resumes"] == [{"from_step": stopped.step, "reached": stopped.step, "lost": 0}]
        events = client.app.state.manager.log(job["id"]).since(0)  # type: ignore[attr-defined]
        started = [d for _, kind, d in events if kind == "started"]
        assert [d["resumed_from"] for d in started] == [stopped.step]
        steps = [d["step"] for _, kind, d in events if kind == "progress"]
        assert steps[0] == stopped.step + 1 and steps == list(range(stopped.step + 1, stopped.step + 1 + len(steps)))
        client.post(f"/api/jobs/{job['id']}/cancel")
        assert wait_for(client, job["id"])["state"] == "cancelled"
