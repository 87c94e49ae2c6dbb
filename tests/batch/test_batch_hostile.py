"""Hostile manifests and damaged outputs: each is refused up front with one line and exit 2 (or, for a
damaged output, reported as damaged), never a traceback, and no file is touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from batch_helpers import image, run_batch_cli

from impasto.batch.jobs import read_manifest
from impasto.cli import main as impasto_main
from impasto.errors import ImpastoError
from impasto.io import save_image


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> str:
    assert impasto_main(["batch", *argv]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("impasto: error: "), err
    for needle in needles:
        assert needle in err, err
    return err


def test_a_jsonl_line_nested_100000_deep_is_one_line_exit_2(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    for name, line in (("deep.jsonl", "[" * 100_000 + "]" * 100_000),
                       ("deepobj.jsonl", '{"content": ' + "[" * 100_000 + "]" * 100_000 + "}")):
        manifest = tmp_path / name
        manifest.write_text(line + "\n")
        with pytest.raises(ImpastoError, match=f"{name} line 1: nested too deeply"):
            read_manifest(str(manifest))
        _refused(capsys, ["--manifest", str(manifest), "-o", str(tmp_path / "out")], "nested too deeply")
    assert not (tmp_path / "out").exists()


def test_a_deep_csv_cell_is_refused_too(tmp_path: Path, grid: tuple[Path, Path],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    contents, styles = grid
    manifest = tmp_path / "deep.csv"
    deep = "[" * 50_000 + "]" * 50_000  # under the csv module's field limit, over json's recursion limit
    manifest.write_text(f"content,style,seed\n{contents}/alps.png,{styles}/monet.jpg,{deep}\n")
    _refused(capsys, ["--manifest", str(manifest), "-o", str(tmp_path / "out")], "line 2", "nested too deeply")
    manifest.write_text(f"content,style,seed\n{contents}/alps.png,{styles}/monet.jpg,{deep * 2}\n")
    _refused(capsys, ["--manifest", str(manifest), "-o", str(tmp_path / "out")], "line 2: not CSV")


@pytest.mark.parametrize("field", ["output", "content", "style"])
def test_a_nul_in_a_manifest_name_is_one_line_exit_2(tmp_path: Path, grid: tuple[Path, Path], field: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    contents, styles = grid
    row = {"content": f"{contents}/alps.png", "style": f"{styles}/monet.jpg", "output": "alps.png"}
    row[field] = "a\u0000.png"
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text(json.dumps(row) + "\n")
    _refused(capsys, ["--manifest", str(manifest), "-o", str(tmp_path / "out")], "jobs.jsonl line 1",
             "NUL" if field == "output" else "does not exist")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("output", ["a\nb.png", "tab\there.png", "\u202egnp.exe", "x" * 300 + ".png",
                                    "x" * 240 + ".png"])
def test_other_hostile_output_names_are_refused(tmp_path: Path, grid: tuple[Path, Path], output: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    contents, styles = grid
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text(json.dumps({"content": f"{contents}/alps.png", "style": f"{styles}/monet.jpg",
                                    "output": output}) + "\n")
    _refused(capsys, ["--manifest", str(manifest), "-o", str(tmp_path / "out")], "jobs.jsonl line 1", "output")


def test_a_csv_header_with_a_column_twice_is_refused(tmp_path: Path, grid: tuple[Path, Path],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    contents, styles = grid
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(f"content,style,style\n{contents}/alps.png,{styles}/monet.jpg,{styles}/turner.jpg\n")
    _refused(capsys, ["--manifest", str(manifest), "-o", str(tmp_path / "out")],
             "jobs.csv line 1: column style appears twice")
    manifest.write_text(f"content, style ,style\n{contents}/alps.png,{styles}/monet.jpg,{styles}/turner.jpg\n")
    _refused(capsys, ["--manifest", str(manifest), "-o", str(tmp_path / "out")], "column style appears twice")
    manifest.write_text(f"content,style,styles\n{contents}/alps.png,{styles}/monet.jpg,[]\n")
    _refused(capsys, ["--manifest", str(manifest), "-o", str(tmp_path / "out")], "give style or styles, not both")


@pytest.mark.parametrize("row", [
    '{"content": "photos/alps.png", "styles": []}',
    '{"content": "photos/alps.png", "style": ";"}',
    '{"content": "photos/alps.png", "style": " ; ; "}',
    '{"content": "photos/alps.png", "styles": [""]}',
    '{"content": "photos/alps.png", "style": []}',
    '{"content": "photos/alps.png"}',
])
def test_a_row_without_a_style_is_refused_before_any_job_runs(tmp_path: Path, grid: tuple[Path, Path], row: str,
                                                              weights_file: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    contents, styles = grid
    manifest = tmp_path / "jobs.jsonl"
    # A good row first: nothing may run before the bad one is found.
    manifest.write_text(f'{{"content": "photos/beach.png", "style": "paintings/monet.jpg"}}\n{row}\n')
    _refused(capsys, ["--manifest", str(manifest), "-o", str(tmp_path / "out"), "--weights", str(weights_file),
                      "--size", "32", "--steps", "1"], "jobs.jsonl line 2: no style image")
    assert not (tmp_path / "out").exists()


def test_a_truncated_output_is_reported_as_damaged(tmp_path: Path, grid: tuple[Path, Path], weights_file: Path) -> None:
    contents, styles = grid
    out = tmp_path / "out"
    argv = ["--contents", str(contents / "alps.png"), "--styles", str(styles / "monet.jpg"), "-o", str(out),
            "--weights", str(weights_file), "--size", "32", "--start-size", "none", "--steps", "2", "--workers", "1"]
    for fmt in ("png", "jpg"):
        first = run_batch_cli([*argv, "--format", fmt])
        assert first.rc == 0, first.err
        result = out / f"alps__monet.{fmt}"
        whole = result.read_bytes()
        result.write_bytes(whole[: len(whole) * 2 // 3])  # cut short (a full disk, a bad copy)
        cut = result.read_bytes()
        again = run_batch_cli([*argv, "--format", fmt])
        assert again.rc == 1
        assert f"alps__monet.{fmt}: " in again.err and "damaged or truncated" in again.err, again.err
        assert "not written by impasto batch" not in again.err
        assert result.read_bytes() == cut  # reported, not replaced
        fixed = run_batch_cli([*argv, "--format", fmt, "--overwrite"])
        assert fixed.rc == 0 and len(result.read_bytes()) > len(cut)


def test_a_foreign_file_is_still_called_foreign_and_overwrite_replaces_it(tmp_path: Path, grid: tuple[Path, Path],
                                                                          weights_file: Path) -> None:
    contents, styles = grid
    out = tmp_path / "out"
    out.mkdir()
    mine = save_image(image(10, 10, 5), out / "alps__monet.png")
    argv = ["--contents", str(contents / "alps.png"), "--styles", str(styles / "monet.jpg"), "-o", str(out),
            "--weights", str(weights_file), "--size", "32", "--start-size", "none", "--steps", "2", "--workers", "1"]
    run = run_batch_cli(argv)
    assert run.rc == 1 and "was not written by impasto batch (--overwrite replaces it)" in run.err
    # --overwrite did nothing before: the CLI never passed it on.
    forced = run_batch_cli([*argv, "--overwrite"])
    assert forced.rc == 0, forced.err
    from impasto.io import read_metadata

    meta = read_metadata(mine)
    assert meta is not None and "batch" in meta
