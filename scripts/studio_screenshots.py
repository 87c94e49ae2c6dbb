"""README screenshots of the studio: the page mid-run and the gallery (docs/img/studio_*.png).

Starts ``impasto serve`` with the bundled VGG19 on a free local port and a fresh data folder, and drives
Debian's chromium through Playwright exactly as a person would: drop a photo and paintings, move the
sliders, Start, watch. Inputs are public-domain images from ../shared/images (see its SOURCES.md):
NASA's astronaut photo, *The Starry Night* and *The Great Wave*.

    python scripts/studio_screenshots.py [--images ../shared/images] [--out docs/img]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_state(client: httpx.Client, states: tuple[str, ...], timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = client.get("/api/jobs").json()
        if jobs and all(j["state"] in states for j in jobs):
            return
        time.sleep(0.5)
    raise SystemExit("jobs did not finish in time")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", default=os.environ.get("IMPASTO_IMAGES", str(ROOT.parent / "shared" / "images")),
                   help="folder of the shared test images (default: $IMPASTO_IMAGES or ../shared/images)")
    p.add_argument("--out", default=str(ROOT / "docs" / "img"))
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    images = Path(args.images)
    photo, starry, wave = images / "astronaut.png", images / "starry_night.jpg", images / "the_wave.jpg"
    out = Path(args.out)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen([sys.executable, "-m", "impasto", "serve", "--port", str(port), "--data", tmp,
                                   "--preview-seconds", "1"], env=env)
        try:
            client = httpx.Client(base_url=url, timeout=60)
            for _ in range(600):
                try:
                    if client.get("/api/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, args=FLAGS, headless=True)
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                page.goto(url)
                page.wait_for_function("document.querySelector('#preset').options.length > 1")

                # First painting: The Great Wave, finished, for the gallery.
                page.set_input_files("#content-input", str(photo))
                page.set_input_files("#style-input", [str(wave)])
                page.locator("#size").fill("256")
                page.locator("#steps").fill("40")
                page.click("#start")
                wait_state(client, ("done",))

                # Second: two paintings blended, the photo's colours kept; caught mid-run.
                page.click("#style-list li button")  # remove the wave
                page.set_input_files("#style-input", [str(starry), str(wave)])
                page.locator("#style-list input.blend").nth(0).fill("2")
                page.locator("#size").fill("320")
                page.locator("#steps").fill("30")
                page.locator("#strength").fill("0.3")
                page.select_option("#preserve", "luminance")
                page.click("#start")
                # Caught past the middle of the run: the second scale, the loss curve well drawn.
                page.wait_for_function(
                    "(() => { const t = document.querySelector('#status').textContent;"
                    " const m = t.match(/^step (\\d+) \\/ (\\d+)/);"
                    " return document.querySelector('#current-name').textContent.includes('starry')"
                    " && m && +m[1] >= 0.6 * +m[2]; })()",
                    timeout=900_000)
                time.sleep(1.5)
                page.screenshot(path=str(out / "studio_running.png"))
                wait_state(client, ("done",))
                page.wait_for_function("document.querySelectorAll('.card').length === 2")
                time.sleep(2.0)
                page.evaluate("document.querySelector('.card .split').value = 45;"
                              "document.querySelector('.card .split').dispatchEvent(new Event('input'))")
                page.locator("#gallery-section").screenshot(path=str(out / "studio_gallery.png"))
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(f"wrote {out / 'studio_running.png'} and {out / 'studio_gallery.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
