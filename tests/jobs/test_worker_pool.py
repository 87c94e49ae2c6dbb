"""The job layer's worker pool: JSON lines to ``python -m impasto.jobs.worker`` and back."""

from __future__ import annotations

import subprocess
import sys
import time

from impasto.jobs.pool import PoolEvent, WorkerPool


def _until_terminal(pool: WorkerPool, key: str, timeout: float = 60.0) -> PoolEvent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ev in pool.events(0.5):
            if ev.key == key and ev.kind in ("done", "failed", "cancelled", "suspended", "lost"):
                return ev
    raise AssertionError(f"job {key} did not end in {timeout} s")


def test_a_failing_job_is_one_line_and_the_worker_lives_on() -> None:
    pool = WorkerPool(1, threads=1)
    try:
        pool.start()
        pool.submit("a", "os:system", {})  # only impasto's own runners are ever imported
        ev = _until_terminal(pool, "a")
        assert ev.kind == "failed" and ev.data["error"] == "not a job runner: 'os:system'"
        pid = pool.pids()
        pool.submit("b", "impasto.studio.worker:run", {})  # a runner that raises: one line, no traceback
        ev = _until_terminal(pool, "b")
        assert ev.kind == "failed" and ev.data["error"].startswith("internal error: ") and "\n" not in ev.data["error"]
        assert pool.pids() == pid and pool.busy == 0 and pool.free == 1
    finally:
        pool.close()


def test_killed_worker_ends_its_job_lost_and_is_replaced() -> None:
    pool = WorkerPool(1, threads=1, max_retries=0)
    try:
        pool.start()
        (pid,) = pool.pids()
        pool.submit("a", "impasto.studio.worker:run", {})
        pool.kill("a")  # may come before or after the job ends: either way exactly one terminal event
        ev = _until_terminal(pool, "a")
        assert ev.kind in ("lost", "failed")
        pool.submit("b", "os:system", {})
        assert _until_terminal(pool, "b").kind == "failed"
        if ev.kind == "lost":  # killed under its job: never retried once the owner killed it
            assert ev.data["given_up"] and pid not in pool.pids()
    finally:
        pool.close()


def test_the_studio_client_does_not_load_torch() -> None:
    code = "import impasto.studio.client, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_pool_of_n_tells_each_worker_its_memory_share() -> None:
    """Workers started together each measure the whole machine's free memory; the pool makes each one's
    ``auto`` budget its share (``--memory-share``; a batch's local pool passes its worker count)."""
    from pathlib import Path

    for share in (2, 1):
        pool = WorkerPool(share, threads=1, memory_share=share)
        try:
            pool.start()
            deadline = time.monotonic() + 60
            while len(pool.pids()) < share and time.monotonic() < deadline:
                pool.events(0.2)
            assert len(pool.pids()) == share
            for pid in pool.pids():
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
                tail = argv[argv.index("impasto.jobs.worker") + 1:]
                if share > 1:
                    assert tail[tail.index("--memory-share") + 1] == str(share)
                else:
                    assert "--memory-share" not in tail
        finally:
            pool.close()
