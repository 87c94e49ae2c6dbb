"""Restart and resume with real processes: ``kill -9`` the server mid-job, start it again, nothing is lost.

The killed server's job process notices its stdin closing and exits; the new server finds the job still
marked running, puts it back in the queue and its job process resumes from the last checkpoint. The job
finishes with every step accounted for, at most one checkpoint interval lost, and the same picture as a
run that was never interrupted (the engine resumes bit-identically).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from impasto.io import load_image, read_metadata

from .conftest import ServerProcess, job_files, wait_for

EVERY = 5
CONFIG = {"size": 64, "start_size": 32, "steps": 80}


def _children(pid: int) -> list[int]:
    """Running processes whose parent is ``pid``."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and _state(int(d.name)) not in (None, "Z"):
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(d.name))
    return out


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def test_kill_9_mid_job_then_restart_resumes_from_the_checkpoint(
    tmp_path: Path, tiny_weights_file: Path, studio_images: tuple[Path, Path]
) -> None:
    data = tmp_path / "data"
    files = job_files(studio_images[0], [studio_images[1]])
    # --no-prestart: one job process per server, nothing else competing for the two cores.
    server = ServerProcess(data, tiny_weights_file, "--checkpoint-every", str(EVERY), "--no-prestart")
    try:
        job = server.client.post("/api/jobs", files=files, data={"config": json.dumps(CONFIG)}).json()
        total = job["total_steps"]
        seen = wait_for(server.client, job["id"], ("running",), min_step=total // 4, timeout=60)["step"]
        workers = _children(server.proc.pid)  # the job's process
        assert len(workers) == 1
        server.kill9()
        # They must not outlive it (the job's would race the next server for the job).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_state(p) not in (None, "Z") for p in workers):
            time.sleep(0.05)
        assert all(_state(p) in (None, "Z") for p in workers), "a job process outlived the killed server"
        assert (data / "jobs" / job["id"] / "checkpoint.pt").is_file()
    finally:
        server.stop()

    again = ServerProcess(data, tiny_weights_file, "--checkpoint-every", str(EVERY), "--no-prestart")
    try:
        done = wait_for(again.client, job["id"], timeout=90)
        assert done["state"] == "done", done["error"]
        assert done["step"] == done["total_steps"] == total
        assert done["attempts"] == 2 and len(done["resumes"]) == 1
        resume = done["resumes"][0]
        # It went back to a checkpoint (a multiple of EVERY) no older than one interval before what we saw.
        assert resume["from_step"] % EVERY == 0 and resume["from_step"] >= seen - EVERY > 0
        # "reached": the last step the killed server had recorded (it writes progress every 0.5 s).
        assert resume["lost"] == max(0, resume["reached"] - resume["from_step"]) <= EVERY
        result = tmp_path / "resumed.png"
        result.write_bytes(again.client.get(f"/api/jobs/{job['id']}/result").content)
        meta = read_metadata(result)
        assert meta is not None and meta["steps"] == total
        rows = meta["loss_history"]["rows"]
        assert [r[0] for r in rows] == list(range(1, total + 1))  # every step accounted for, once

        # The same job never interrupted gives the same picture.
        ref = again.client.post("/api/jobs", files=files, data={"config": json.dumps(CONFIG)}).json()
        assert wait_for(again.client, ref["id"], timeout=60)["state"] == "done"
        plain = tmp_path / "plain.png"
        plain.write_bytes(again.client.get(f"/api/jobs/{ref['id']}/result").content)
        assert torch.equal(load_image(plain).rgb, load_image(result).rgb)
        print(f"resume figures: killed at step >= {seen} of {total} (server's record {resume['reached']}); "
              f"resumed from checkpoint step {resume['from_step']} (one every {EVERY})")
    finally:
        again.stop()
