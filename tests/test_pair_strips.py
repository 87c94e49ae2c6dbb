"""scripts/pair_strips.py: the test set's strips put photo, painting and each labelled result side by side,
skip a pair that lacks a label, and refuse a JSON where no pair has every label."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "pair_strips.py"


def _row(label: str, photo: str, painting: str, image: Path) -> dict[str, object]:
    return {"label": label, "photo": photo, "painting": painting, "image": str(image), "texture": 0.1,
            "cnn": 0.2, "color": 0.3, "structure": 0.9, "vgg_content": 0.6, "copied": 0.0, "seconds": 101.4}


def _run(tmp_path: Path, doc: dict[str, object], *labels: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "judged.json").write_text(json.dumps(doc))
    return subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "judged.json"), "--labels", *labels,
                           "--images", str(tmp_path / "images"), "--out", str(tmp_path / "strips")],
                          capture_output=True, text=True, timeout=60)


def test_a_strip_per_complete_pair_with_panels_in_label_order(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    Image.new("RGB", (400, 200), (0, 0, 255)).save(tmp_path / "images" / "cat.png")  # 2:1
    Image.new("RGB", (100, 100), (255, 0, 0)).save(tmp_path / "images" / "wave.png")
    ref, ours = tmp_path / "ref.png", tmp_path / "ours.png"
    Image.new("RGB", (400, 200), (0, 255, 0)).save(ref)
    Image.new("RGB", (400, 200), (255, 255, 0)).save(ours)
    doc = {"rows": [_row("standin", "cat", "wave", ref), _row("default", "cat", "wave", ours),
                    _row("default", "cat", "other", ours)]}  # no stand-in for cat x other: no strip
    r = _run(tmp_path, doc, "standin", "default")
    assert r.returncode == 0, r.stderr
    made = sorted(p.name for p in (tmp_path / "strips").iterdir())
    assert made == ["all.png", "cat_wave.png"]
    with Image.open(tmp_path / "strips" / "cat_wave.png") as strip:
        im = strip.convert("RGB")
    # Panels 256 px high: photo 512 wide, painting 256 (above the 250 px the text needs),
    # then the two results 512 each, with 6 px gaps.
    assert im.size == (512 + 256 + 512 + 512 + 3 * 6, 256 + 72)
    assert im.getpixel((10, 100)) == (0, 0, 255)
    assert im.getpixel((512 + 6 + 10, 100)) == (255, 0, 0)
    assert im.getpixel((512 + 256 + 12 + 10, 100)) == (0, 255, 0)  # the stand-in before the default
    assert im.getpixel((512 + 256 + 512 + 18 + 10, 100)) == (255, 255, 0)


def test_no_pair_with_every_label_is_refused(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    r = _run(tmp_path, {"rows": [_row("default", "cat", "wave", tmp_path / "x.png")]}, "standin", "default")
    assert r.returncode != 0
    assert "no pair" in r.stderr
