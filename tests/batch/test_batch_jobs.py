"""The batch job model, manifests, keys, locks and the CLI's checks: all without starting a worker."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from batch_helpers import BatchRun, image, run_batch_cli

import impasto
from impasto.batch.cli import SharedConfig
from impasto.batch.jobs import FileHasher, grid_requests, read_manifest, resolve_jobs
from impasto.batch.runner import read_journal
from impasto.cli import main as impasto_main
from impasto.config import Config
from impasto.errors import ImpastoError
from impasto.io import save_image
from impasto.io.locks import holder, try_lock


def _jobs(requests: list, outdir: Path, argv: tuple[str, ...] = ()) -> list:  # type: ignore[type-arg]
    shared = SharedConfig.from_argv(argv)
    return resolve_jobs(requests, str(outdir), shared, finalize=shared.finalize)


def test_grid_names_are_content_major_and_predictable(grid: tuple[Path, Path], tmp_path: Path) -> None:
    contents, styles = grid
    jobs = _jobs(grid_requests([str(contents)], [str(styles)]), tmp_path / "out", ("--size", "64"))
    assert [j.name for j in jobs] == [f"{c}__{s}.png" for c in ("alps", "beach", "city") for s in ("monet", "turner")]
    assert all(j.config.size == 64 for j in jobs)
    assert jobs[0].output == str((tmp_path / "out" / "alps__monet.png").resolve())
    assert len({j.key for j in jobs}) == 6


def test_manifest_rows_override_flags_and_presets(grid: tuple[Path, Path], tmp_path: Path) -> None:
    contents, styles = grid
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(textwrap.dedent(f"""\
        content,style,style_weight,size,seed,preset,output
        {contents}/alps.png,{styles}/monet.jpg,,,,,
        photos/beach.png,paintings/monet.jpg;paintings/turner.jpg,1000,48,7,,
        photos/city.png,paintings/turner.jpg,,,,gatys,city-gatys.jpg
        """))
    jobs = _jobs(read_manifest(str(manifest)), tmp_path / "out", ("--size", "40", "--steps", "5"))
    a, b, c = jobs
    assert a.name == "alps__monet.png" and (a.config.size, a.config.style_weight) == (40, Config().style_weight)
    assert b.name == "beach__monet+turner__style_weight-1000_size-48_seed-7.png"
    assert len(b.styles) == 2 and (b.config.style_weight, b.config.size, b.config.seed) == (1000.0, 48, 7)
    assert b.config.steps == 5  # the shared flag still applies where the row says nothing
    assert c.name == "city-gatys.jpg" and c.config.preset == "gatys"
    assert c.config.size == 40 and c.config.init == "noise"  # preset, then the flags on top


def test_manifest_jsonl_and_bad_rows(grid: tuple[Path, Path], tmp_path: Path) -> None:
    contents, styles = grid
    good = tmp_path / "jobs.jsonl"
    good.write_text(f'{{"content": "{contents}/alps.png", "styles": ["{styles}/monet.jpg"], "seed": 3}}\n\n')
    (job,) = _jobs(read_manifest(str(good)), tmp_path / "out")
    assert job.config.seed == 3 and job.name == "alps__monet__seed-3.png"
    cases = {
        "content,style,colour\na.png,b.png,red\n": "jobs.csv line 2: unknown column(s) colour",
        f"content,style\n{contents}/alps.png,nope.png\n": "jobs.csv line 2: style nope.png does not exist",
        f"content,style,size\n{contents}/alps.png,{styles}/monet.jpg,8\n": "line 2: size must be a whole number",
        f"content,style,output\n{contents}/alps.png,{styles}/monet.jpg,../x.png\n": "must be a plain file name",
        "content,style\n": "lists no jobs",
    }
    for text, message in cases.items():
        bad = tmp_path / "jobs.csv"
        bad.write_text(text)
        with pytest.raises(ImpastoError, match=re.escape(message)):
            _jobs(read_manifest(str(bad)), tmp_path / "out")
    same = tmp_path / "twice.csv"
    same.write_text(f"content,style\n{contents}/alps.png,{styles}/monet.jpg\n{contents}/alps.png,{styles}/monet.jpg\n")
    with pytest.raises(ImpastoError, match="both write alps__monet.png"):
        _jobs(read_manifest(str(same)), tmp_path / "out")


def test_key_follows_contents_and_config_not_paths(grid: tuple[Path, Path], tmp_path: Path) -> None:
    contents, styles = grid
    copy = tmp_path / "elsewhere"
    shutil.copytree(contents, copy)
    reqs = grid_requests([str(contents / "alps.png"), str(copy / "alps.png")], [str(styles / "monet.jpg")])
    k1 = resolve_jobs(reqs[:1], str(tmp_path / "o1"), SharedConfig.from_argv([]))[0].key
    k2 = resolve_jobs(reqs[1:], str(tmp_path / "o2"), SharedConfig.from_argv([]))[0].key
    assert k1 == k2  # the same bytes under another path are the same job
    assert resolve_jobs(reqs[:1], str(tmp_path / "o1"), SharedConfig.from_argv(["--seed", "1"]))[0].key != k1
    save_image(image(36, 48, 99), copy / "alps.png")  # other pixels, same name
    assert resolve_jobs(reqs[1:], str(tmp_path / "o2"), SharedConfig.from_argv([]), hasher=FileHasher())[0].key != k1


def test_lock_is_exclusive_and_a_dead_holders_lock_is_taken_over(tmp_path: Path) -> None:
    path = str(tmp_path / "a.png.lock")
    lock = try_lock(path)
    assert lock is not None and lock.stale is None
    assert try_lock(path) is None  # same process, second descriptor: still exclusive
    assert holder(path) is not None and holder(path).pid == os.getpid()  # type: ignore[union-attr]
    lock.release()
    assert not os.path.exists(path) and holder(path) is None
    # Another process takes the lock and is SIGKILLed while holding it: the file stays behind.
    src = str(Path(impasto.__file__).resolve().parents[1])
    code = f"import sys, time; sys.path.insert(0, {src!r}); from impasto.io.locks import try_lock; " \
           f"l = try_lock({path!r}); print('locked', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        assert try_lock(path) is None  # alive: it holds the lock
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
        proc.wait(10)
    assert os.path.exists(path)
    taken = try_lock(path)
    assert taken is not None and taken.stale is not None and taken.stale.pid == proc.pid
    taken.release()


def test_cli_refuses_bad_command_lines_in_one_line(grid: tuple[Path, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    contents, styles = grid
    base = ["batch", "--contents", str(contents), "--styles", str(styles), "-o", str(tmp_path / "out")]
    for extra, message in (
        (["--manifest", "x.csv"], "give --manifest or --contents/--styles, not both"),
        (["--workers", "64", "--threads", "1"], "would oversubscribe"),
        (["--gpus-per-worker", "1"], "--gpus-per-worker is for --backend ray"),
    ):
        assert impasto_main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err and "Traceback" not in err
    for extra in (["--no-such-flag"], ["stray.png"], ["--progress-gif", "x.gif"], ["--size", "8"]):
        with pytest.raises(SystemExit) as exit_info:  # argparse's own exit, as for a single run
            impasto_main([*base, *extra])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("impasto batch: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_dry_run_lists_jobs_and_a_foreign_file_is_never_overwritten(grid: tuple[Path, Path], tmp_path: Path) -> None:
    contents, styles = grid
    out = tmp_path / "out"
    argv = ["--contents", str(contents / "alps.png"), "--styles", str(styles / "monet.jpg"), "-o", str(out),
            "--size", "32"]
    dry = run_batch_cli([*argv, "--dry-run"])
    assert dry.rc == 0 and dry.out.startswith("alps__monet.png\t") and not out.exists()
    out.mkdir()
    mine = out / "alps__monet.png"
    save_image(image(10, 10, 5), mine)  # a file of the user's at the output name
    before = mine.read_bytes()
    run = run_batch_cli(argv)
    assert run.rc == 1
    assert "alps__monet.png: " in run.err and "was not written by impasto batch" in run.err
    assert "jobs, " not in run.err and mine.read_bytes() == before


def test_a_failing_job_is_listed_and_the_others_finish(grid: tuple[Path, Path], weights_file: Path,
                                                        tmp_path: Path) -> None:
    contents, styles = grid
    broken = tmp_path / "broken.png"
    broken.write_bytes((styles / "monet.jpg").read_bytes()[:200])  # truncated: planning hashes it, loading fails
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(f"content,style\n{contents}/alps.png,{broken}\n{contents}/beach.png,{styles}/monet.jpg\n")
    out = tmp_path / "out"
    run = run_batch_cli(["--manifest", str(manifest), "-o", str(out), "--weights", str(weights_file),
                         "--size", "32", "--start-size", "none", "--steps", "3", "--workers", "1"])
    assert run.rc == 1
    assert "1 job(s) failed:\n  alps__broken.png: " in run.err and "broken.png" in run.err.split("failed:")[1]
    assert "1 done, 0 already done, 1 failed" in run.out
    assert sorted(p.name for p in out.glob("*.png")) == ["beach__monet.png"]


def test_an_output_locked_by_another_process_is_left_to_it_until_released(
    grid: tuple[Path, Path], weights_file: Path, tmp_path: Path
) -> None:
    contents, styles = grid
    out = tmp_path / "out"
    (out / ".impasto-batch").mkdir(parents=True)
    held = try_lock(str(out / ".impasto-batch" / "alps__monet.png.lock"))  # as a second impasto batch would
    assert held is not None
    argv = ["--contents", str(contents / "alps.png"), "--styles", str(styles / "monet.jpg"), str(styles / "turner.jpg"),
            "-o", str(out), "--weights", str(weights_file), "--size", "32", "--start-size", "none", "--steps", "3",
            "--workers", "1"]
    result: dict[str, BatchRun] = {}
    thread = threading.Thread(target=lambda: result.setdefault("run", run_batch_cli(argv)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not (out / "alps__turner.png").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert (out / "alps__turner.png").exists() and not (out / "alps__monet.png").exists()
    assert thread.is_alive()  # still waiting for the locked job
    released = time.time()
    held.release()
    thread.join(60)
    run = result["run"]
    assert run.rc == 0 and "waiting alps__monet.png (locked by pid" in run.err
    journal = read_journal(out)
    assert [e["job"] for e in journal] == ["alps__turner.png", "alps__monet.png"]
    assert journal[1]["time"] > released


def test_ray_workers_use_local_inputs_or_fetch_the_shipped_bytes(grid: tuple[Path, Path], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """What a Ray worker does with a job's inputs (no Ray needed: the object store's get is passed in)."""
    from impasto.batch.ray_backend import materialize

    contents, _ = grid
    here = contents / "alps.png"
    data = here.read_bytes()
    sha = FileHasher()(str(here))
    store = {"ref-1": data}
    fetched: list[str] = []

    def get(ref: str) -> bytes:
        fetched.append(ref)
        return store[ref]

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "node"))
    (tmp_path / "node").mkdir()
    # Same bytes at the same path (one machine, or a shared filesystem): used in place, nothing fetched.
    assert materialize({str(here): (sha, "ref-1")}, get) == {str(here): str(here)}
    assert fetched == []
    # Another machine: the path is missing there, so the bytes come from the store into a cache by sha256.
    gone = "/nonexistent/photos/alps.png"
    local = materialize({gone: (sha, "ref-1")}, get)[gone]
    assert Path(local).read_bytes() == data and Path(local).name == f"{sha}.png" and fetched == ["ref-1"]
    assert materialize({gone: (sha, "ref-1")}, get)[gone] == local and fetched == ["ref-1"]  # cached
    # A file at that path with other bytes is not the input: fetched as well.
    other = tmp_path / "alps.png"
    other.write_bytes(data[:-1] + b"\0")
    assert materialize({str(other): (sha, "ref-1")}, get)[str(other)] == local


def test_show_cost_prints_each_jobs_table_and_writes_nothing(grid: tuple[Path, Path], weights_file: Path,
                                                              tmp_path: Path) -> None:
    """``--show-cost``: impasto --show-cost's table per job (the engine's memory model under the job's
    max_memory: a row's own budget makes its large size tile), the total, nothing run or written."""
    from impasto.engine import measure_rate
    from impasto.tiling.cost import MEASURED_RATE, config_cost, format_duration
    from impasto.vgg import load_weights

    contents, styles = grid
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(textwrap.dedent(f"""\
        content,style,size,max_memory
        {contents}/alps.png,{styles}/monet.jpg,,
        {contents}/beach.png,{styles}/turner.jpg,1024,600MiB
        """))
    out = tmp_path / "out"
    flags = ("--size", "64", "--steps", "3", "--device", "cpu", "--max-memory", "64GiB", "--weights", str(weights_file))
    run = run_batch_cli(["--manifest", str(manifest), "-o", str(out), *flags, "--show-cost"])
    assert run.rc == 0 and run.err == "", run.err
    jobs = _jobs(read_manifest(str(manifest)), out, flags)
    weights = load_weights(weights_file)
    expected, total = [], 0.0
    for j, budget in zip(jobs, (64 * 2**30, 600 * 2**20), strict=True):
        # The rate was measured for the batch in this process (cached): the same number prices the expectation.
        rate = measure_rate(j.config, weights)
        cost = config_cost(j.config, (36, 48), [(48, 48)], budget=budget, device="cpu", weights=weights, rate=rate,
                           rate_source=MEASURED_RATE)
        assert "measured on this machine just now" in cost.lines()[-1]
        total += cost.seconds
        expected += [f"{j.name}: {Path(j.content).name} × {Path(j.styles[0]).name}", *cost.lines(), ""]
        assert any(s.tiles for s in cost.scales) == (budget == 600 * 2**20)
    expected.append(f"2 jobs, about {format_duration(total)} of compute in all (one job at a time; concurrent "
                    "workers share the machine's memory and cores)")
    assert run.out.splitlines() == expected
    assert jobs[1].name == "beach__turner__size-1024_max_memory-600MiB.png"
    assert not out.exists()  # nothing written, no folder made


def test_show_cost_of_a_bad_manifest_is_still_exit_2(grid: tuple[Path, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "jobs.csv"
    bad.write_text("content,style,colour\na.png,b.png,red\n")
    assert impasto_main(["batch", "--manifest", str(bad), "-o", str(tmp_path / "out"), "--show-cost"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown column(s) colour" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_show_cost_names_a_job_that_cannot_run_under_its_budget(grid: tuple[Path, Path], weights_file: Path,
                                                                tmp_path: Path) -> None:
    contents, styles = grid
    run = run_batch_cli(["--contents", str(contents / "alps.png"), "--styles", str(styles / "monet.jpg"),
                         "-o", str(tmp_path / "out"), "--size", "4096", "--device", "cpu", "--max-memory", "600MiB",
                         "--weights", str(weights_file), "--show-cost"])
    assert run.rc == 1
    assert "alps__monet.png: alps.png × monet.jpg\n  cannot run: max_memory 600.0 MiB is below the " in run.out
    assert run.err == "impasto batch: 1 job(s) cannot run as configured: alps__monet.png\n"
    assert not (tmp_path / "out").exists()


def test_show_cost_splits_an_auto_budget_among_the_local_workers(
    grid: tuple[Path, Path], weights_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Local workers start together and each would see the machine's whole free memory: with ``--workers 2``
    each job's ``auto`` budget is half of what one worker gets (the same share the pool gives its workers)."""
    import impasto.tiling.memory as memory

    monkeypatch.setattr(memory, "available_memory", lambda device="cpu": 20 * 2**30)
    contents, styles = grid
    flags = ("--contents", str(contents / "alps.png"), "--styles", str(styles / "monet.jpg"), "-o", str(tmp_path / "o"),
             "--size", "64", "--steps", "3", "--device", "cpu", "--weights", str(weights_file), "--show-cost")
    one = run_batch_cli([*flags, "--workers", "1"])
    two = run_batch_cli([*flags, "--workers", "2", "--threads", "1"])
    assert one.rc == two.rc == 0, one.err + two.err
    budget = {r: next(ln for ln in run.out.splitlines() if "under the budget" in ln)
              for r, run in (("1", one), ("2", two))}
    assert "under the budget 18.0 GiB" in budget["1"]  # 20 GiB less 10 %
    assert "under the budget 9.0 GiB" in budget["2"]  # 10 GiB each, less 10 %
