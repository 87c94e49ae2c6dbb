"""The studio against a hostile page or token holder: Origin null, costs beyond pixels and steps, a job
too big for the server's memory even in tiles, tokens in URLs, internals in error messages, framing."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # Starlette suggests httpx2; httpx is what it runs on today
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from impasto.errors import ImpastoError
from impasto.presets import PRESETS
from impasto.studio.app import Limits, parse_config, price_config, session_value

from .conftest import job_files
from .test_studio_api import RUN, make_client

TOKEN = "t0ken-with-enough-characters"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, tiny_weights_file: Path) -> Iterator[Any]:
    with make_client(tmp_path_factory.mktemp("hostile") / "data", tiny_weights_file,
                     limits=Limits(max_job_mib=1500.0, max_size=6000), pool={"prestart": False}) as c:
        yield c


def _post(client: Any, images: tuple[Path, Path], config: dict[str, Any] | None = None, **headers: str) -> Any:
    form = {"config": json.dumps(config if config is not None else RUN)}
    return client.post("/api/jobs", files=job_files(images[0], [images[1]]), data=form, headers=headers)


def test_origin_null_is_cross_site(client: Any, studio_images: tuple[Path, Path]) -> None:
    # A sandboxed iframe (or a data: page) on any site sends Origin: null; it used to get 201.
    for origin in ("null", "NULL", " null"):
        r = _post(client, studio_images, origin=origin)
        assert r.status_code == 403 and r.json()["detail"] == "cross-origin request refused"
    assert client.post("/api/jobs/AAAAAAAAAAAAAAAAAAAAAA/cancel", headers={"origin": "null"}).status_code == 403
    assert client.delete("/api/jobs/AAAAAAAAAAAAAAAAAAAAAA", headers={"origin": "null"}).status_code == 403
    assert client.get("/api/jobs").json() == []  # nothing was queued
    # The page's own origin still works.
    assert _post(client, studio_images, origin="http://127.0.0.1").status_code == 201


@pytest.mark.parametrize(("field", "value", "message"), [
    ("lbfgs_max_iter", 10_000, "inner iterations per step"),
    ("lbfgs_max_iter", 21, "inner iterations per step"),
    ("lbfgs_history", 10_000, "lbfgs_history 10000 is over"),
    ("lbfgs_history_mib", None, "lbfgs_history_mib must be at most"),
    ("lbfgs_history_mib", 1e9, "lbfgs_history_mib must be at most"),
    ("style_scale", 8, "style_scale 8 is over"),
    ("style_scale", 2.5, "style_scale 2.5 is over"),
    ("devices", ["cpu", "cpu"], "devices starts tile workers"),
    ("devices", ["ray"], "devices starts tile workers"),
])
def test_cost_caps_beyond_pixels_and_steps(client: Any, studio_images: tuple[Path, Path], field: str, value: Any,
                                           message: str) -> None:
    r = _post(client, studio_images, {**RUN, field: value})
    assert r.status_code == 400, r.text
    assert message in r.json()["detail"] and "\n" not in r.json()["detail"]


def test_inner_iterations_times_steps_are_capped(client: Any, studio_images: tuple[Path, Path]) -> None:
    r = _post(client, studio_images, {**RUN, "steps": 1500, "start_size": None, "lbfgs_max_iter": 20,
                                      "lbfgs_max_step": None})
    assert r.status_code == 400 and "iterations per job" in r.json()["detail"]


def test_a_job_over_the_memory_budget_is_refused_before_it_starts(client: Any,
                                                                  studio_images: tuple[Path, Path]) -> None:
    # 6000 px (the server's max_size): its pixels, optimiser vectors and one L-BFGS pair alone are over
    # the 1,500 MiB per job, whatever the tile size.
    big = {"size": 6000, "start_size": None, "steps": 2, "lbfgs_history": 200, "lbfgs_history_mib": 1024}
    r = _post(client, studio_images, big)
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert "a 6000x4500 picture needs at least " in detail and "even in tiles" in detail, detail
    assert "over this server's budget of 1.5 GiB per job (--max-job-memory)" in detail and "\n" not in detail
    assert all(j["config"]["size"] != 6000 for j in client.get("/api/jobs").json())
    # 2048 px with 200 history pairs is over the budget whole (1 GiB of history alone) but fits in tiles
    # with fewer pairs: queued, with the budget as its max_memory.
    r = _post(client, studio_images, {**big, "size": 2048})
    assert r.status_code == 201 and r.json()["config"]["max_memory"] == "1500MiB", r.text
    client.post(f"/api/jobs/{r.json()['id']}/cancel")


def test_every_preset_fits_the_default_limits() -> None:
    for name in PRESETS:
        parse_config(json.dumps({"size": 512}), name, 1, (384, 512), Limits(), [(512, 512)])


def test_the_guard_is_the_engines_memory_model() -> None:
    """One memory model: the studio prices a job with the tiling model (structure only, no weights) and
    its budget; the figures follow size and history as plan_scale's do."""
    from impasto.tiling.memory import MemoryFloorError

    limits = Limits(max_job_mib=8192.0, max_size=8000)
    cfg, cost = price_config(json.dumps({"size": 1024, "start_size": None, "device": "cpu"}), None, 1,
                             (384, 512), limits, [(512, 512)])
    whole = cost.scales[0].plan
    assert cfg.max_memory == "8192MiB" and whole is not None and not whole.tiled
    _, fewer = price_config(json.dumps({"size": 1024, "start_size": None, "device": "cpu", "lbfgs_history": 10}),
                            None, 1, (384, 512), limits, [(512, 512)])
    assert fewer.peak is not None and cost.peak is not None and fewer.peak < cost.peak
    _, tiled = price_config(json.dumps({"size": 4096, "start_size": None, "device": "cpu"}), None, 1,
                            (384, 512), limits, [(512, 512)])
    assert tiled.scales[0].tiles > 0 and tiled.peak is not None and tiled.peak <= 8192 * 2**20
    with pytest.raises(ImpastoError, match="over this server's budget of 8.0 GiB per job") as e:
        price_config(json.dumps({"size": 8000, "start_size": None, "device": "cpu"}), None, 1, (384, 512), limits)
    assert not isinstance(e.value, MemoryFloorError)


@pytest.fixture(scope="module")
def token_client(tmp_path_factory: pytest.TempPathFactory, tiny_weights_file: Path) -> Iterator[Any]:
    with make_client(tmp_path_factory.mktemp("tok") / "data", tiny_weights_file, host="0.0.0.0", token=TOKEN,
                     pool={"prestart": False}) as c:
        yield c


def test_no_token_in_urls_a_login_page_sets_a_strict_httponly_cookie(token_client: Any) -> None:
    c = token_client
    r = c.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    page = c.get("/login")
    assert page.status_code == 200 and 'type="password"' in page.text and 'method="post"' in page.text
    # The old way (the token in the URL) no longer signs anyone in.
    r = c.get(f"/?token={TOKEN}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login" and "set-cookie" not in r.headers
    bad = c.post("/login", data={"token": "wrong-token-of-some-length"}, follow_redirects=False)
    assert bad.status_code == 401 and "set-cookie" not in bad.headers
    ok = c.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    cookie = ok.headers["set-cookie"]
    attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
    assert {"httponly", "path"} <= attrs and "samesite=strict" in cookie.lower()
    assert "secure" not in attrs  # plain http, no trusted proxy
    assert TOKEN not in cookie and session_value(TOKEN) in cookie  # the jar never holds the token itself
    assert c.get("/").status_code == 200 and c.get("/api/jobs").status_code == 200
    c.cookies.clear()
    assert c.get("/api/jobs").status_code == 401
    # API clients: either header.
    assert c.get("/api/jobs", headers={"x-impasto-token": TOKEN}).status_code == 200
    assert c.get("/api/jobs", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert c.get("/api/jobs", headers={"x-impasto-token": "nope-nope-nope-nope"}).status_code == 401
    # A forwarded https is ignored without --trust-proxy.
    ok = c.post("/login", data={"token": TOKEN}, headers={"x-forwarded-proto": "https"}, follow_redirects=False)
    assert "secure" not in {a.strip().lower() for a in ok.headers["set-cookie"].split(";")}
    # Signing in is a POST like any other: a foreign page cannot sign the browser in.
    r = c.post("/login", data={"token": TOKEN}, headers={"origin": "null"}, follow_redirects=False)
    assert r.status_code == 403


def test_the_cookie_is_secure_behind_a_trusted_tls_proxy(tmp_path: Path, tiny_weights_file: Path,
                                                         studio_images: tuple[Path, Path]) -> None:
    with make_client(tmp_path / "data", tiny_weights_file, token=TOKEN, trust_proxy=True,
                     pool={"prestart": False}) as c:
        proxied = {"x-forwarded-proto": "https", "x-forwarded-host": "studio.lan"}
        ok = c.post("/login", data={"token": TOKEN}, headers=proxied, follow_redirects=False)
        assert "secure" in {a.strip().lower() for a in ok.headers["set-cookie"].split(";")}
        # The origin check compares with the site the browser sees (the proxy's host).
        r = _post(c, studio_images, **{**proxied, "origin": "https://studio.lan", "x-impasto-token": TOKEN})
        assert r.status_code == 201, r.text
        r = _post(c, studio_images, **{**proxied, "origin": "https://evil.example", "x-impasto-token": TOKEN})
        assert r.status_code == 403


def test_serve_needs_a_token_behind_a_proxy(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from impasto.cli import main

    monkeypatch.delenv("IMPASTO_TOKEN", raising=False)
    assert main(["serve", "--trust-proxy"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--trust-proxy" in err and "--token" in err and "\n" not in err


def test_errors_do_not_show_internals(client: Any, monkeypatch: pytest.MonkeyPatch,
                                      caplog: pytest.LogCaptureFixture) -> None:
    manager = client.app.state.manager

    def broken(*a: Any, **k: Any) -> Any:
        raise RuntimeError("no such table: jobs at /srv/secret/studio.sqlite3")

    monkeypatch.setattr(manager.db, "list_jobs", broken)
    # As a real server answers: the exception is not re-raised into the caller (TestClient's default).
    plain = TestClient(client.app, base_url="http://127.0.0.1", raise_server_exceptions=False)
    with caplog.at_level("ERROR", logger="impasto.studio"):
        r = plain.get("/api/jobs")
    assert r.status_code == 500
    detail = r.json()["detail"]
    assert "secret" not in detail and "sqlite" not in detail and "RuntimeError" not in detail
    assert detail.startswith("internal error (reference ")
    ref = detail.split("reference ")[1].split(";")[0]
    assert any(ref in rec.getMessage() and rec.exc_info for rec in caplog.records)  # the log has it all


def test_every_response_forbids_framing(client: Any, token_client: Any, studio_images: tuple[Path, Path]) -> None:
    responses = [client.get("/"), client.get("/api/health"), client.get("/static/app.js"), client.get("/docs"),
                 client.get("/api/jobs/nope"), client.get("/api/health", headers={"host": "evil.example"}),
                 _post(client, studio_images, origin="null"), token_client.get("/api/jobs"),
                 token_client.get("/login"), token_client.get("/", follow_redirects=False)]
    for r in responses:
        assert r.headers.get("content-security-policy") == "frame-ancestors 'none'", (r.url, r.status_code)
        assert r.headers.get("x-frame-options") == "DENY"
        assert r.headers.get("x-content-type-options") == "nosniff"
