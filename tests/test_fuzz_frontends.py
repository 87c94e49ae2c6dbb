"""The hostile-input corpus of the front-ends (issue 20): batch manifests, video command lines and studio
job configurations. Every case ends with exit 0 or 2 and at most one line on stderr (a studio config: a
Config or one-line ImpastoError), never a traceback. Manifests are planned with ``--dry-run`` (no worker
starts) so the corpus runs in seconds; ``tests/batch``, ``tests/video`` and ``tests/studio`` run the engine
on the cases that need it."""

from __future__ import annotations

import io
import json
import random
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from impasto.cli import main
from impasto.config import Config
from impasto.errors import ImpastoError

JSON_VALUES: list[Any] = [None, True, 0, -1, 1.5, 1e308, "x", "", "\u0000", "a\u0000.png", "../x.png", "/etc/passwd",
                          [], [1], {}, {"a": 1}, "nan", "Infinity", 10**30, ";", " ; ", "a;b", ".hidden.png",
                          "x" * 300, "\u202e.png", "a\nb.png"]
FIELDS = ["content", "style", "styles", "output", "preset", "size", "steps", "seed", "style_weight", "weights",
          "mask", "init_file", "lbfgs_max_iter", "style_scale", "bogus"]


def _run(argv: list[str]) -> tuple[int | None, str, str | None]:
    saved = sys.stdout, sys.stderr
    out, err = io.StringIO(), io.StringIO()
    sys.stdout, sys.stderr = out, err
    try:
        code: int | None = main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException as e:  # noqa: BLE001 - a traceback is what this corpus looks for
        tb = traceback.extract_tb(e.__traceback__)
        return None, err.getvalue(), f"{type(e).__name__}: {str(e)[:200]} at {tb[-1].filename if tb else '?'}"
    finally:
        sys.stdout, sys.stderr = saved
    return code, err.getvalue(), None


def _manifest_cases(d: Path, good: dict[str, str]) -> Iterator[tuple[str, str]]:
    n = 0

    def write(ext: str, text: str) -> str:
        nonlocal n
        n += 1
        p = d / f"m{n:04d}.{ext}"
        p.write_text(text, encoding="utf-8", errors="surrogatepass")
        return str(p)

    for field in FIELDS:
        for v in JSON_VALUES:
            yield f"jsonl-{field}", write("jsonl", json.dumps({**good, field: v}) + "\n")
    for depth in (1000, 100_000):
        yield "jsonl-deep", write("jsonl", "[" * depth + "]" * depth + "\n")
        yield "jsonl-deep", write("jsonl", '{"content": ' + "[" * depth + "]" * depth + "}\n")
    for header in ("content,style,style", "content,content,style", "content,style,styles", ",content,style",
                   "content;style", "CONTENT,STYLE", "content,style,\u0000", "content,style,seed,seed"):
        yield "csv-header", write("csv", f"{header}\n{good['content']},{good['style']},1,2\n")
    for row in ('"unterminated', ",".join(["x"] * 50), "\u0000,\u0000", f"{good['content']},;",
                f"{good['content']},{good['style']},{'[' * 60_000}"):
        yield "csv-row", write("csv", f"content,style,seed\n{row}\n")
    for text in ("", "\n\n", "\ufeff", "null\n", "[]\n", '"x"\n', "{}\n", "{\n"):
        yield "jsonl-shape", write("jsonl", text)


def test_manifest_corpus_no_traceback_one_line(tmp_path: Path) -> None:
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    Image.new("RGB", (32, 24), (200, 120, 40)).save(content)
    Image.new("RGB", (32, 32), (20, 60, 220)).save(style)
    good = {"content": str(content), "style": str(style)}
    cases = list(_manifest_cases(tmp_path, good))
    assert len(cases) >= 400
    bad = []
    for kind, manifest in cases:
        code, err, tb = _run(["batch", "--manifest", manifest, "-o", str(tmp_path / "out"), "--dry-run"])
        lines = err.strip().splitlines()
        if tb is not None or code not in (0, 2) or (code == 2 and len(lines) != 1):
            bad.append(f"{kind} {manifest}: exit {code}, {tb or lines[:3]}")
    assert not bad, f"{len(bad)} of {len(cases)} cases:\n" + "\n".join(bad[:20])
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


@pytest.mark.parametrize("extra", [
    ["--frame-steps", "0"], ["--frame-steps", "-1"], ["--frame-steps", "nan"], ["--temporal-frames", "0"],
    ["--temporal-frames", ","], ["--temporal-weight", "nan"], ["--temporal-weight", "-1"], ["--fps", "0"],
    ["--fps", "inf"], ["--max-frames", "0"], ["--flow", "magic"], ["--save-every", "2"], ["--size", "0"],
])
def test_video_flag_corpus_is_refused_in_one_line(tmp_path: Path, extra: list[str]) -> None:
    frames = tmp_path / "clip"
    frames.mkdir()
    for i in range(2):
        Image.new("RGB", (24, 18), (40 * i, 90, 200)).save(frames / f"f{i}.png")
    Image.new("RGB", (24, 24), (200, 20, 20)).save(tmp_path / "s.png")
    code, err, tb = _run(["video", str(frames), str(tmp_path / "s.png"), "-o", str(tmp_path / "out"), *extra])
    assert tb is None, tb
    assert code == 2 and len(err.strip().splitlines()) == 1, (code, err)
    assert not (tmp_path / "out").exists()


def test_studio_config_corpus_is_a_config_or_one_line() -> None:
    from impasto.studio.app import Limits, parse_config

    rng = random.Random(20)
    fields = list(Config.__dataclass_fields__)
    values: list[Any] = [*JSON_VALUES, 10_000, 8, 0.0, -0.0, 2**31, [1, 2, 3], {"x": [1]}, "draft", "file"]
    cases = [json.dumps({f: v}) for f in fields for v in values]
    cases += [json.dumps({rng.choice(fields): rng.choice(values) for _ in range(4)}) for _ in range(200)]
    cases += ["[" * 100_000, "{" * 50, "null", "1", '"x"', "{not json", "\u0000"]
    bad = []
    for raw in cases:
        try:
            cfg = parse_config(raw, None, 1, (48, 64), Limits(max_size=512, max_job_mib=4096.0))
        except ImpastoError as e:
            if "\n" in str(e):
                bad.append(f"two lines for {raw[:80]}")
            continue
        except Exception as e:  # noqa: BLE001
            bad.append(f"{type(e).__name__}: {str(e)[:120]} for {raw[:80]}")
            continue
        assert cfg.lbfgs_max_iter <= 20 and cfg.style_scale <= 2 and cfg.lbfgs_history_mib is not None
    assert len(cases) >= 500
    assert not bad, f"{len(bad)} cases:\n" + "\n".join(bad[:20])
