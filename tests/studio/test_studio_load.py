"""Load: 50 concurrent API clients listing, polling, streaming and submitting against a real server.

Kept short in the suite (3 s); ``IMPASTO_STUDIO_LOAD_SECONDS=30`` runs the long version (``make studio-load``).
Passes when no response is an error other than the intended 429 (queue full), and the server's memory
stays flat (resident size compared after a warm-up round and at the end).
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
from pathlib import Path

import httpx

from .conftest import ServerProcess, job_files

CLIENTS = 50
SECONDS = float(os.environ.get("IMPASTO_STUDIO_LOAD_SECONDS", "3"))
TINY = json.dumps({"size": 32, "start_size": None, "steps": 3})


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def run_clients(server: ServerProcess, seconds: float, images: tuple[Path, Path],
                codes: collections.Counter[tuple[str, int]], failures: list[str]) -> None:
    files = job_files(images[0], [images[1]])
    done_id = server.client.get("/api/jobs?state=done&limit=1").json()[0]["id"]
    stop_at = time.monotonic() + seconds
    lock = threading.Lock()

    def client(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30.0) as c:
            i = 0
            while i < 7 or time.monotonic() < stop_at:  # every kind of request at least once per client
                kind = ("list", "poll", "preview", "stream", "list", "poll", "submit")[(n + i) % 7]
                i += 1
                try:
                    if kind == "list":
                        r = c.get("/api/jobs?limit=50")
                    elif kind == "poll":
                        r = c.get(f"/api/jobs/{done_id}")
                    elif kind == "preview":
                        r = c.get(f"/api/jobs/{done_id}/preview")
                    elif kind == "submit":
                        r = c.post("/api/jobs", files=files, data={"config": TINY})
                    else:
                        with c.stream("GET", f"/api/jobs/{done_id}/events") as s:
                            body = b"".join(s.iter_bytes())
                            r = s
                            if s.status_code == 200 and b"event: end" not in body:
                                raise AssertionError("an event stream ended without its end event")
                except Exception as e:  # noqa: BLE001 - every failure is recorded and fails the test
                    with lock:
                        failures.append(f"{kind}: {type(e).__name__}: {e}")
                    continue
                with lock:
                    codes[(kind, r.status_code)] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_fifty_clients_get_no_errors_and_memory_stays_flat(
    live_server: ServerProcess, studio_images: tuple[Path, Path]
) -> None:
    c = live_server.client
    r = c.post("/api/jobs", files=job_files(studio_images[0], [studio_images[1]]), data={"config": TINY})
    assert r.status_code == 201
    deadline = time.monotonic() + 60
    while c.get(f"/api/jobs/{r.json()['id']}").json()["state"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    codes: collections.Counter[tuple[str, int]] = collections.Counter()
    failures: list[str] = []
    run_clients(live_server, 0.5, studio_images, codes, failures)  # warm-up: thread pools, caches
    before = rss_mib(live_server.proc.pid)
    codes.clear()
    run_clients(live_server, SECONDS, studio_images, codes, failures)
    after = rss_mib(live_server.proc.pid)
    assert failures == []
    bad = {k: v for k, v in codes.items() if k[1] not in (200, 201) and k != ("submit", 429)}
    assert bad == {}, codes
    assert codes[("submit", 429)] > 0  # the bounded queue said so, clearly
    for kind in ("list", "poll", "preview", "stream"):
        assert codes[(kind, 200)] > 0, codes
    print(f"load: {CLIENTS} clients, {SECONDS:g} s: {dict(codes)}; server RSS {before:.0f} -> {after:.0f} MiB")
    assert after - before < 40, f"server memory grew from {before:.0f} to {after:.0f} MiB under load"
    # Leave nothing queued for later tests.
    for j in c.get("/api/jobs?state=queued,running").json():
        c.post(f"/api/jobs/{j['id']}/cancel")
