"""scripts/gpu_print_size.py on the CPU (it runs there without GPU figures): one record per scale of the
command line's run, options after -- passed to impasto, and the picture written after a given step."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from impasto.engine import StyleTransfer
from impasto_test_support import load_script


def test_records_each_scale_and_writes_the_picture_after_the_step_asked(
        small_images: tuple[Path, Path], tiny_weights_file: Path, tmp_path: Path) -> None:
    content, style = small_images
    engine_run = StyleTransfer.run
    out, record, early = tmp_path / "out.png", tmp_path / "run.json", tmp_path / "after_3.png"
    rc = load_script("gpu_print_size").main([
        str(content), str(style), "-o", str(out), "--size", "64", "--max-memory", "1GiB",
        "--save-image-at", "3", str(early), "--json", str(record),
        "--", "--weights", str(tiny_weights_file), "--start-size", "48", "--scale-steps", "3,2"])
    assert rc == 0
    assert StyleTransfer.run is engine_run  # the script's measuring wrapper is gone again
    run = json.loads(record.read_text())
    assert run["exit_status"] == 0 and run["gpu"] is None and run["cudnn"] is True
    assert run["impasto_command"].endswith("--start-size 48 --scale-steps 3,2")
    assert [(s["width"], s["steps"]) for s in run["scales"]] == [(48, 3), (64, 2)]
    with Image.open(early) as im:  # step 3 is the last of the 48 px scale
        assert im.size == (48, 36)
    with Image.open(out) as im:
        assert im.size == (64, 48)
