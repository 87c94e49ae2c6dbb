"""The robust step-time protocol's statistics and guards, and the benchmark's like-for-like settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from impasto.bench import perf, protocol


def test_stats_are_exact() -> None:
    s = protocol._stats([1.0, 2.0, 3.0, 4.0, 10.0])
    assert (s["n"], s["min"], s["median"], s["max"]) == (5, 1.0, 3.0, 10.0)
    assert (s["p25"], s["p75"]) == (2.0, 4.0)
    assert s["iqr_over_median"] == pytest.approx(2.0 / 3.0)
    m = protocol._mean_sd([0.9, 1.1])
    assert m["mean"] == pytest.approx(1.0) and m["sd"] == pytest.approx(0.1414213562, rel=1e-6)


def test_fewer_than_20_timed_steps_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        protocol.main(["--steps", "5"])
    assert e.value.code == 2 and "at least 20" in capsys.readouterr().err


def test_like_for_like_runs_plain_lbfgs() -> None:
    cfg = perf.pastiche_config(64, "cpu")
    assert cfg.lbfgs_max_step is None and cfg.restart_factor is None and cfg.lbfgs_max_iter == 1


def test_bound_counts_gram_matrices_too() -> None:
    fl = perf.step_flops(256, 256)
    assert round(fl.gram / 1e9, 2) == 4.56 and fl.total == fl.conv + fl.gram
    assert "Gram" in (perf.__doc__ or "") and "Gram" in perf.format_table([], 100.0)


def test_images_folder_is_a_setting_not_a_product_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("IMPASTO_IMAGES", raising=False)
    assert perf.default_images_dir() is None  # bundled demo pair
    monkeypatch.setenv("IMPASTO_IMAGES", str(tmp_path))
    assert perf.default_images_dir() == tmp_path
    c, s = perf.prepare_inputs(32, tmp_path / "inputs")  # no tubingen.jpg there: the bundled pair
    assert c.is_file() and s.is_file()
