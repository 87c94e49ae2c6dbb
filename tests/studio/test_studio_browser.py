"""End to end in a real browser: Debian's chromium driven by Playwright (no browser download).

Upload, start, watch the preview change, cancel another job, find the gallery entry, download it, and
load the settings back by dropping the downloaded image on the page.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from impasto.io import read_metadata

from .conftest import ServerProcess, wait_for

CHROMIUM = os.environ.get("IMPASTO_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"no browser at {CHROMIUM}: apt-get install -y chromium (.ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[web]')")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def _open(browser: Any, live_server: ServerProcess, record: str, **options: Any) -> tuple[Any, list[str]]:
    """The studio page, loaded, with its script errors collected and ``window.shown`` listing ``record``
    (a JS expression of the load event ``e``) for every preview image it shows, as each finishes
    loading (a fast run may be over before we look)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900}, **options)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live_server.url + "/")
    page.wait_for_function("document.querySelector('#preset').options.length > 1")
    page.evaluate("window.shown = []; document.querySelector('#preview').addEventListener('load', "
                  f"(e) => {{ if (e.target.naturalWidth > 0) window.shown.push({record}); }})")
    return page, errors


def test_page_runs_a_job_with_live_preview_gallery_download_and_settings(
    browser: Any, live_server: ServerProcess, studio_images: tuple[Path, Path], tmp_path: Path
) -> None:
    page, errors = _open(browser, live_server, "e.target.dataset.step", accept_downloads=True)

    content, style = studio_images
    page.set_input_files("#content-input", str(content))
    page.set_input_files("#style-input", [str(style)])
    page.uncheck("#draft-first")  # one job per click here; the draft is the next test's
    page.locator("#size").fill("128")
    page.locator("#steps").fill("400")
    assert page.text_content("#steps-out") == "400 steps per scale"
    page.click("#start")
    page.wait_for_selector("#queue li", timeout=10_000)
    job_id = live_server.client.get("/api/jobs").json()[0]["id"]

    # A second job waits in the queue behind the first; cancel it from the page.
    page.click("#start")
    page.wait_for_selector("#queue li:has-text('queued') button.cancel-job", timeout=10_000)
    second = live_server.client.get("/api/jobs?state=queued").json()[0]["id"]
    assert second != job_id
    page.click(f"#queue li[data-id='{second}'] button.cancel-job")
    assert wait_for(live_server.client, second, timeout=10)["state"] == "cancelled"

    # The first job's preview appears and then changes (at least two different steps shown).
    page.wait_for_function("new Set(window.shown).size >= 2", timeout=60_000)
    assert page.evaluate("document.querySelector('#preview').naturalWidth") == 128
    page.screenshot(path=str(tmp_path / "mid-run.png"))

    # The first job ends in the gallery, newest first, with before/after images and its settings.
    assert wait_for(live_server.client, job_id, timeout=60)["state"] == "done"
    card = page.wait_for_selector(f".card[data-id='{job_id}']", timeout=15_000)
    page.wait_for_function(
        f"document.querySelector(\".card[data-id='{job_id}'] img.after\").naturalWidth === 128", timeout=10_000)
    assert "128 px" in (card.query_selector(".summary").text_content() or "")
    page.screenshot(path=str(tmp_path / "gallery.png"), full_page=True)

    with page.expect_download() as dl:
        card.query_selector("a.download").click()
    saved = tmp_path / "download.png"
    dl.value.save_as(str(saved))
    meta = read_metadata(saved)
    assert meta is not None and meta["config"]["size"] == 128 and meta["config"]["steps"] == 400
    assert meta["studio_job"] == job_id

    # Dropping (here: picking) an impasto output loads the settings it carries.
    page.locator("#size").fill("640")
    page.locator("#steps").fill("20")
    page.set_input_files("#settings-input", str(saved))
    page.wait_for_function("document.querySelector('#loaded-from').textContent.includes('download.png')")
    assert page.input_value("#size") == "128" and page.input_value("#steps") == "400"
    assert errors == []
    page.close()


def test_start_shows_a_draft_first_then_follows_the_full_run(
    browser: Any, live_server: ServerProcess, studio_images: tuple[Path, Path]
) -> None:
    page, errors = _open(browser, live_server, "e.target.src")
    assert page.is_checked("#draft-first") and page.input_value("#quality") == "standard"
    content, style = studio_images
    page.set_input_files("#content-input", str(content))
    page.set_input_files("#style-input", [str(style)])
    page.locator("#size").fill("96")
    page.locator("#steps").fill("80")
    before = {j["id"] for j in live_server.client.get("/api/jobs").json()}
    page.click("#start")
    # The page posts the two jobs one after the other: wait for both (or time out with what there is).
    deadline = time.monotonic() + 10.0
    while True:
        new = [j for j in live_server.client.get("/api/jobs").json() if j["id"] not in before]
        if len(new) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(new) == 2
    full, draft = new  # newest first
    assert draft["config"]["quality"] == "draft" and full["config"]["quality"] == "standard"
    assert draft["config"]["steps"] == full["config"]["steps"] == 80
    # The page watches the draft first, shows its picture, then follows the full run to its end.
    draft_end = wait_for(live_server.client, draft["id"], timeout=60)
    full_end = wait_for(live_server.client, full["id"], timeout=120)
    assert draft_end["state"] == full_end["state"] == "done"
    assert draft_end["total_steps"] * 8 == full_end["total_steps"] == 80
    page.wait_for_function(f"window.shown.some((s) => s.includes('{full['id']}'))", timeout=15_000)
    shown = page.evaluate("window.shown")
    assert draft["id"] in shown[0]
    page.wait_for_function(f"document.querySelector('.card[data-id=\\'{draft['id']}\\'] .summary')"
                           ".textContent.includes('draft')", timeout=10_000)
    assert errors == []
    page.close()
