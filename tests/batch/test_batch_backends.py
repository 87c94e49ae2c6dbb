"""End to end on both backends: a 6-job batch completes with all outputs although a worker is SIGKILLed in
the middle of a job (the worker is replaced, the job resumes from its checkpoint, every output is written
exactly once); re-running the finished batch does no work.

The Ray tests start one local Ray instance for this module (2 CPUs, 100 MB object store, no dashboard).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from batch_helpers import TINY, BatchRun, kill_mid_job, pid_alive, run_batch_cli, tiny_vgg_file, write_grid

from impasto.batch.jobs import STATE_DIR
from impasto.batch.runner import read_journal
from impasto.io import load_image, read_metadata

NAMES = [f"{c}__{s}.png" for c in ("alps", "beach", "city") for s in ("monet", "turner")]


@pytest.fixture(scope="module", params=["local", "ray"])
def backend(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """CLI flags selecting the backend; for Ray, a local Ray instance shared by this module's tests."""
    if request.param == "local":
        yield ["--backend", "local", "--workers", "2", "--threads", "1"]
        return
    ray = pytest.importorskip("ray")
    from impasto.batch.ray_backend import runtime_env

    # runtime_env ships the impasto under test to the workers (not whatever impasto the venv has).
    ray.init(num_cpus=2, object_store_memory=100 * 2**20, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR", runtime_env=runtime_env())
    try:
        yield ["--backend", "ray", "--workers", "2", "--threads", "1"]
    finally:
        ray.shutdown()


LONG_JOB = "alps__turner__steps-200.png"


@pytest.fixture(scope="module")
def killed(backend: list[str], tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path, BatchRun, int]:
    """A 6-job batch (3 photos × 2 paintings, from a manifest) during which the worker running the one
    long job (200 steps instead of 12) is SIGKILLed once it has checkpointed step 10.

    One batch serves the three tests below: each Ray or pool start-up costs seconds on 2 cores.
    """
    root = tmp_path_factory.mktemp("batch")
    contents, styles = write_grid(root)
    weights = tiny_vgg_file(root / "tiny.safetensors")
    rows: list[dict[str, object]] = [{"content": str(c), "style": str(s)}
                                     for c in sorted(contents.iterdir()) for s in sorted(styles.iterdir())]
    rows[1]["steps"] = 200  # alps × turner: long enough to be caught in the middle
    manifest = root / "jobs.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    outdir = root / "out"
    argv = ["--manifest", str(manifest), "-o", str(outdir), "--weights", str(weights), *TINY, *backend]
    run, pid = kill_mid_job(argv, outdir, LONG_JOB, at_step=10)
    return argv, outdir, run, pid


def _leftovers(outdir: Path) -> list[str]:
    """Anything but outputs and the journal: locks, checkpoints, status files, temporary files."""
    state = outdir / STATE_DIR
    extra = [p.name for p in outdir.iterdir() if p.is_file() and p.suffix != ".png"]
    extra += [p.name for p in state.iterdir() if p.name != "journal.jsonl"]
    return extra


def test_six_job_batch_completes_with_all_outputs(killed: tuple[list[str], Path, BatchRun, int]) -> None:
    _, outdir, run, _ = killed
    assert run.rc == 0, run.err + run.out
    names = sorted(p.name for p in outdir.glob("*.png"))
    assert names == sorted([*NAMES[:1], LONG_JOB, *NAMES[2:]])
    for name in names:
        img = load_image(outdir / name)
        assert tuple(img.rgb.shape) == (3, 24, 32)  # 36x48 content at a 32 px long side
        assert 0.02 < float(img.rgb.std()) < 0.5  # a real picture, not a blank
        meta = read_metadata(outdir / name)
        assert meta is not None and meta["batch"]["job"] == name
        assert meta["steps"] == (200 if name == LONG_JOB else 12)
        assert meta["config"]["size"] == 32 and meta["config"]["weights"].endswith("tiny.safetensors")
    assert _leftovers(outdir) == []
    assert "6 done, 0 already done, 0 failed" in run.out


def test_killed_worker_is_replaced_and_its_job_resumes_and_every_output_is_written_once(
    killed: tuple[list[str], Path, BatchRun, int]
) -> None:
    _, outdir, run, pid = killed
    assert run.rc == 0
    assert not pid_alive(pid)
    journal = read_journal(outdir)
    assert sorted(e["job"] for e in journal) == sorted(p.name for p in outdir.glob("*.png"))  # once each
    entry = next(e for e in journal if e["job"] == LONG_JOB)
    assert entry["attempts"] == 2
    assert entry["resumed_from"] >= 10  # the second attempt continued from the first one's checkpoint
    assert entry["worker"] != f"{socket.gethostname()}:{pid}"
    assert all(e["attempts"] == 1 and e["resumed_from"] == 0 for e in journal if e["job"] != LONG_JOB)
    meta = read_metadata(outdir / LONG_JOB)
    assert meta is not None and meta["steps"] == 200 and meta["batch"]["attempts"] == 2
    assert "resumed from step" in run.out


def test_rerunning_a_finished_batch_does_no_work(killed: tuple[list[str], Path, BatchRun, int]) -> None:
    argv, outdir, first, _ = killed
    assert first.rc == 0
    before = {p.name: p.stat().st_mtime_ns for p in outdir.glob("*.png")}
    again = run_batch_cli(argv)
    assert again.rc == 0, again.err
    assert "0 done, 6 already done, 0 failed" in again.out
    assert "jobs, " not in again.err  # the backend line: no worker was started
    assert {p.name: p.stat().st_mtime_ns for p in outdir.glob("*.png")} == before
    assert len(read_journal(outdir)) == 6
