"""scripts/protocol_table.py applies docs/quality_protocol.md's margins: each requirement missed by a
hair is named, each met by a hair is not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from impasto_test_support import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "protocol_table.py"


def _script() -> ModuleType:
    return load_script("protocol_table")


REF = {"texture": 0.10, "cnn": -0.20, "color": 0.00, "structure": 0.70, "vgg_content": 0.60, "copied": 0.0,
       "vgg_style": 0.1, "vgg_deep": 0.6}


def _cand(**change: float) -> dict[str, Any]:
    return {**REF, **change}


def test_each_margin_is_the_protocols() -> None:
    misses = _script().misses
    assert misses(REF, _cand(), 119.9) == ()
    assert misses(REF, _cand(texture=0.149, cnn=-0.151, color=0.049, structure=0.651, vgg_content=0.629,
                             copied=0.005), 120.0) == ()
    assert misses(REF, _cand(texture=0.151), None) == ("texture",)
    assert misses(REF, _cand(cnn=-0.149), None) == ("cnn",)
    assert misses(REF, _cand(color=0.051), None) == ("color",)
    assert misses(REF, _cand(vgg_content=0.631), None) == ("content",)
    assert misses(REF, _cand(structure=0.649), None) == ("structure",)
    assert misses(REF, _cand(copied=0.0051), None) == ("copied",)
    assert misses({**REF, "copied": 0.02}, _cand(copied=0.02), None) == ()  # at the reference's own level
    assert misses(REF, _cand(), 120.1) == ("time",)
    assert misses(REF, _cand(texture=0.2, copied=0.01), 130.0) == ("texture", "copied", "time")


def test_the_table_pairs_reference_and_candidate_and_counts_passes(tmp_path: Path) -> None:
    judged = {"rows": [{"label": "standin", "photo": "cat", "painting": "wave", **REF},
                       {"label": "default", "photo": "cat", "painting": "wave", **_cand(texture=0.3)},
                       {"label": "standin", "photo": "dog", "painting": "wave", **REF},
                       {"label": "default", "photo": "dog", "painting": "wave", **REF},
                       {"label": "default", "photo": "eel", "painting": "wave", **REF}]}  # no reference: left out
    wall = {"runs": [{"content": "x/cat.png", "style": "x/wave.jpg", "quality": "standard", "seconds": 101.0},
                     {"content": "x/dog.png", "style": "x/wave.jpg", "quality": "standard", "seconds": 125.5}]}
    (tmp_path / "j.json").write_text(json.dumps(judged))
    (tmp_path / "w.json").write_text(json.dumps(wall))
    r = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "j.json"), "--reference", "standin",
                        "--candidate", "default", "--wall", str(tmp_path / "w.json")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 4
    assert rows[1].split("|")[-2].strip() == "texture" and "| 101.0 |" in rows[1]
    assert rows[3].split("|")[-2].strip() == "time" and "| 125.5 |" in rows[3]
    assert "0 of 2 pairs pass every figure" in r.stdout
