"""Time to first preview in the studio: POST a job with the page's default settings, time the first image.

Starts ``impasto serve`` (bundled VGG19, all cores) on a free local port with a fresh data folder, then:

* ``cold``: a job submitted the moment the server answers (its job process is still importing torch);
* ``warm``: a job submitted once the server has a job process waiting (the usual case: the server keeps
  one started).

Each is timed from the POST to the first ``preview`` event on the job's SSE stream, and cancelled right
after. The figures only mean something on an idle machine: the load average is recorded with them.

    python scripts/studio_ttfp.py [--out docs/perf/studio_ttfp.json] [--size 512]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def first_preview(client: httpx.Client, content: Path, style: Path, config: dict[str, object]) -> dict[str, object]:
    files = [("content", (content.name, content.read_bytes(), "image/jpeg")),
             ("style", (style.name, style.read_bytes(), "image/png"))]
    t0 = time.perf_counter()
    r = client.post("/api/jobs", files=files, data={"config": json.dumps(config)})
    r.raise_for_status()
    job_id = r.json()["id"]
    out: dict[str, object] = {}
    kind = None
    with client.stream("GET", f"/api/jobs/{job_id}/events", timeout=600) as s:
        for line in s.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "started" and "started_s" not in out:
                out["started_s"] = round(time.perf_counter() - t0, 2)
            elif line.startswith("data: ") and kind == "preview":
                d = json.loads(line[6:])
                out.update(seconds=round(time.perf_counter() - t0, 2), step=d["step"], size=d["size"])
                break
    client.post(f"/api/jobs/{job_id}/cancel")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "perf" / "studio_ttfp.json"))
    p.add_argument("--size", type=int, default=512, help="output long side (the page's default: 512)")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from impasto.io import default_content_path, default_style_path

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen([sys.executable, "-m", "impasto", "serve", "--port", str(port), "--data", tmp],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
            deadline = time.monotonic() + 120
            while True:
                try:
                    if client.get("/api/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start")
                time.sleep(0.05)
            config = {"size": args.size}  # everything else: the page's defaults (Config())
            content, style = default_content_path(), default_style_path()
            cold = first_preview(client, content, style, config)
            time.sleep(8.0)  # the server starts its next job process meanwhile
            warm = first_preview(client, content, style, config)
        finally:
            server.terminate()
            server.wait(timeout=60)
    result = {
        "what": "seconds from POST /api/jobs to the first preview event (the first image of the first scale)",
        "config": {"size": args.size, "start_size": 256, "note": "all other fields Config() defaults"},
        "cold": cold,
        "warm": warm,
        "cpu_count": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "machine": platform.machine(),
        "python": platform.python_version(),
        "command": "python scripts/studio_ttfp.py",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
