"""A generated corpus of malformed and unusual inputs through ``impasto.cli.main``, in-process.

Images (truncated at many offsets, corrupt chunks, wrong magic, huge headers, 1×N, every PIL mode, EXIF
orientations, multi-frame), every numeric flag with 0, negatives, nan, inf, overflow and words, and
configurations (wrong types, unknown keys, non-UTF-8, deep nesting). Every case must end with exit 0 or
exit 2 and one line on stderr (bad cases: exit 2), never a traceback, and no file that existed before
may change. Runs use the tiny VGG from a weights file, 24 px and one step, so the default corpus takes
seconds; ``IMPASTO_FUZZ_SCALE=N`` multiplies the truncation offsets and random corruptions (``IMPASTO_FUZZ_SCALE=10``
for a long run).

The list of tracebacks (where, the last line, argv) is written to ``$IMPASTO_FUZZ_REPORT`` when set.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import struct
import traceback
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from impasto.cli import main
from impasto.config import Config
from impasto_test_support import save_tiny_weights

SCALE = max(1, int(os.environ.get("IMPASTO_FUZZ_SCALE", "1")))
BASE = ["--size", "24", "--start-size", "none", "--steps", "1", "-q"]
BAD_NUMBERS = ["nan", "inf", "-inf", "-1", "1e309", "18446744073709551616", "abc", "", "²", "0x10", "1,,2",
               "-0.5", "1e-400x"]
MAYBE_VALID = {"18446744073709551616", "0x10", "1,,2"}
"""Valid for some flags (a large finite weight, a list with an empty item), refused by others."""


@dataclass
class Case:
    kind: str
    argv: list[str]
    bad: bool
    """True: must be refused (exit 2, one line). False: may also succeed (exit 0)."""


@dataclass
class Outcome:
    case: Case
    code: int | None
    err: str
    tb: str | None = None
    where: str = ""


@dataclass
class Corpus:
    root: Path
    cases: list[Case] = field(default_factory=list)


def _png(img: Image.Image, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _enc(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _image_cases(d: Path, rng: random.Random, run: list[str], style: Path) -> Iterator[Case]:
    base = Image.new("RGB", (24, 18))
    for y in range(18):
        for x in range(24):
            base.putpixel((x, y), (x * 10, y * 12, (x * y) % 256))
    good = {"png": _png(base), "jpg": _enc(base, "JPEG", quality=90), "gif": _enc(base.convert("P"), "GIF"),
            "tif": _enc(base, "TIFF"), "webp": _enc(base, "WEBP"), "bmp": _enc(base, "BMP")}
    n = 0

    def case(data: bytes, ext: str, bad: bool, kind: str) -> Case:
        nonlocal n
        n += 1
        p = d / f"in{n:05d}.{ext}"
        p.write_bytes(data)
        return Case(kind, [str(p), str(style), *run, "-o", f"{{out}}/o{n}.png"], bad)

    for ext, data in good.items():
        offsets = sorted({int(len(data) * i / (12 * SCALE)) for i in range(12 * SCALE)} | {1, 8, 16})
        for off in offsets:
            if 0 < off < len(data) - (12 if ext == "png" else 2):
                # A truncated TIFF/BMP/WebP may still hold every pixel row: only "not a traceback" is asserted.
                # Cut inside a PNG's last CRC or IEND, every pixel is still there.
                bad = ext in ("jpg", "gif") or (ext == "png" and off < len(data) - 16)
                yield case(data[:off], ext, bad, f"truncated-{ext}")
        for _ in range(6 * SCALE):  # corrupt bytes in the middle
            b = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(8, len(b))
                b[i] = rng.randrange(256)
            yield case(bytes(b), ext, False, f"corrupt-{ext}")
        yield case(b"\x00" * 8 + data[8:], ext, True, "wrong-magic")
        yield case(b"GIF89a" + data[6:], ext, ext != "gif", "wrong-magic")
    sig = b"\x89PNG\r\n\x1a\n"
    for w, h in ((2**31 - 1, 1), (1, 2**31 - 1), (100000, 100000), (0, 10), (10, 0), (2**32 - 1, 2**32 - 1)):
        yield case(sig + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + _chunk(b"IEND", b""),
                   "png", True, "huge-header")
    raw = b"".join(b"\x00" + bytes(range(24 * 3)) for _ in range(18))
    hdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", 24, 18, 8, 2, 0, 0, 0))
    for frac in (0.1, 0.5, 0.9):
        short = zlib.compress(raw[: int(len(raw) * frac)])
        yield case(sig + hdr + _chunk(b"IDAT", short) + _chunk(b"IEND", b""), "png", True, "short-zlib")
    bad_crc = sig + hdr[:-4] + b"\x00\x00\x00\x00" + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")
    yield case(bad_crc, "png", True, "bad-crc")
    yield case(b"", "png", True, "empty")
    yield case(b"not an image at all\n" * 3, "png", True, "text")
    for w, h in ((1, 5000), (5000, 1), (2, 300), (300, 2)):
        yield case(_png(Image.new("RGB", (w, h), (90, 20, 200))), "png", True, "degenerate")
    for w, h in ((40, 16), (16, 16), (7, 5), (3, 40), (1, 1)):
        yield case(_png(Image.new("RGB", (w, h), (90, 20, 200))), "png", False, "small")
    for mode in ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16", "F",
                 "La", "RGBa"):
        try:
            im = base.convert(mode) if mode not in ("I;16", "PA") else base.convert("L").convert(mode)
        except ValueError:
            continue
        for fmt, ext in (("PNG", "png"), ("TIFF", "tif"), ("JPEG", "jpg"), ("WEBP", "webp")):
            try:
                data = _enc(im, fmt)
            except (OSError, ValueError, KeyError):
                continue
            yield case(data, ext, False, f"mode-{mode}")
    for orient in range(0, 10):
        exif = Image.Exif()
        exif[0x0112] = orient
        yield case(_enc(base, "JPEG", exif=exif.tobytes()), "jpg", False, "exif-orientation")
    frames = [base, base.rotate(90), base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    yield case(_enc(frames[0], "GIF", save_all=True, append_images=frames[1:]), "gif", False, "multi-frame")
    yield case(_enc(frames[0], "TIFF", save_all=True, append_images=frames[1:]), "tif", False, "multi-frame")
    yield case(_enc(frames[0], "PNG", save_all=True, append_images=frames[1:]), "png", False, "multi-frame")


def _numeric_flags() -> list[str]:
    from impasto.cli.run import build_parser

    flags = []
    for a in build_parser()._actions:
        if not a.option_strings or a.type is None or not callable(a.type):
            continue
        try:
            a.type("abc")  # a word: only non-numeric flags (paths, names) take it
        except Exception:  # noqa: BLE001 - ArgumentTypeError, ValueError, ImpastoError ...
            flags.append(a.option_strings[-1])
    return flags


def _flag_cases(content: Path, style: Path, run: list[str]) -> Iterator[Case]:
    values = BAD_NUMBERS * SCALE if SCALE > 1 else BAD_NUMBERS
    for i, flag in enumerate(_numeric_flags()):
        for j, v in enumerate(dict.fromkeys(values)):
            bad = v not in MAYBE_VALID or (flag == "--seed" and v != "1,,2")
            yield Case("flag", [str(content), str(style), *run, flag, v, "-o", f"{{out}}/f{i}_{j}.png"], bad)
        # 0 is valid for some flags (steps, seed, weights) and not others: only "no traceback" is asserted.
        yield Case("flag-zero", [str(content), str(style), *run, flag, "0", "-o", f"{{out}}/f{i}_z.png"], False)
    for sub, flag, v in (("balance", "--fps", "0"), ("balance", "--fps", "nan"), ("balance", "--fps", "-1"),
                         ("balance", "--frames", "0"), ("balance", "--size", "-5"), ("explain", "--channels", "0"),
                         ("explain", "--size", "-1"), ("explain", "--steps", "-3")):
        # Small safe values first (a flag given twice: the last wins), so a missed check stays cheap.
        safe = ["--size", "32", "--steps", "1"] + (["--frames", "2"] if sub == "balance" else [])
        ext = "gif" if sub == "balance" else "png"
        yield Case("subcommand", [sub, str(content), str(style), "-o", f"{{out}}/s.{ext}", *safe, flag, v], True)


def _config_cases(d: Path) -> Iterator[Case]:
    n = 0

    def case(data: bytes, bad: bool, kind: str) -> Case:
        nonlocal n
        n += 1
        p = d / f"cfg{n:05d}.json"
        p.write_bytes(data)
        return Case(kind, ["--config", str(p), "--show-config"], bad)

    wrong: list[Any] = ["x", "10", [1], [], {}, None, 1.5, True, -1, 10**30, [[1]], {"a": 1}]
    for f in Config.__dataclass_fields__:
        for v in wrong:
            # Some of these are valid for some fields (null for optional ones): "no traceback" for all.
            yield case(json.dumps({f: v}).encode(), False, "config-type")
    yield case(b'{"steps": 1e400}', True, "config-inf")
    yield case(b'{"steps": NaN}', True, "config-nan")
    for top in (b"[]", b"3", b'"x"', b"null", b"true"):
        yield case(top, True, "config-shape")
    yield case(json.dumps({"no_such_key": 1}).encode(), True, "config-unknown")
    yield case(json.dumps({"config": {"bogus": 2}}).encode(), True, "config-unknown")
    yield case(b'{"steps": 5, "size": "\xff\xfe"}', True, "config-non-utf8")
    yield case(b"\xff\xfe{\x00}\x00", True, "config-non-utf8")
    yield case(b"[" * 100_000 + b"]" * 100_000, True, "config-deep")
    yield case(b'{"a":' + b"[" * 50_000 + b"]" * 50_000 + b"}", True, "config-deep")
    yield case(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, True, "config-image")
    yield case(b"", True, "config-empty")


def _checksums(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _run(case: Case, out: Path, capsys: _Capture) -> Outcome:
    argv = [a.replace("{out}", str(out)) for a in case.argv]
    case.argv = argv
    code: int | None
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's usage errors: what the console script exits with
        code = e.code if isinstance(e.code, int) else 1
    except BaseException as e:  # noqa: BLE001 - a traceback is what the fuzz test exists to find
        captured = capsys.readouterr()
        tb = traceback.extract_tb(e.__traceback__)
        frames = [fr.filename for fr in tb if "impasto" in fr.filename]
        where = frames[-1] if frames else (tb[-1].filename if tb else "")
        line = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
        return Outcome(case, None, captured.err, line, where)
    captured = capsys.readouterr()
    return Outcome(case, code, captured.err)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Outcome], dict[str, str], Path]]:
    root = tmp_path_factory.mktemp("fuzz")
    inputs, out = root / "inputs", root / "out"
    inputs.mkdir()
    out.mkdir()
    weights = save_tiny_weights(inputs / "tiny.safetensors")
    content, style = inputs / "content.png", inputs / "style.png"
    Image.new("RGB", (32, 24), (200, 120, 40)).save(content)
    Image.new("RGB", (32, 32), (20, 60, 220)).save(style)
    run = [*BASE, "--weights", str(weights)]
    rng = random.Random(11)
    cases = [*_image_cases(inputs, rng, run, style), *_flag_cases(content, style, run), *_config_cases(inputs)]
    before = _checksums(inputs)
    results: list[Outcome] = []
    for c in cases:
        with _Capture() as cs:
            results.append(_run(c, out, cs))
    report = os.environ.get("IMPASTO_FUZZ_REPORT")
    if report:
        lines = [f"{o.where}\t{o.tb}\t{json.dumps(o.case.argv)}" for o in results if o.tb]
        Path(report).write_text("\n".join(lines) + "\n", encoding="utf-8")
    yield results, before, inputs


class _Capture:
    """stderr of one in-process CLI call (redirected sys.stderr/sys.stdout)."""

    def __enter__(self) -> _Capture:
        import sys

        self._saved = (sys.stdout, sys.stderr)
        self._out, self._err = io.StringIO(), io.StringIO()
        sys.stdout, sys.stderr = self._out, self._err
        return self

    def readouterr(self) -> Any:
        from types import SimpleNamespace

        r = SimpleNamespace(out=self._out.getvalue(), err=self._err.getvalue())
        self._out.seek(0), self._out.truncate(), self._err.seek(0), self._err.truncate()
        return r

    def __exit__(self, *exc: object) -> None:
        import sys

        sys.stdout, sys.stderr = self._saved


def test_corpus_is_large(outcomes: tuple[list[Outcome], dict[str, str], Path]) -> None:
    results, _, _ = outcomes
    assert len(results) >= 1000
    kinds = {o.case.kind.split("-")[0] for o in results}
    assert {"truncated", "corrupt", "wrong", "huge", "degenerate", "mode", "exif", "multi", "flag",
            "config"} <= kinds


def test_no_traceback(outcomes: tuple[list[Outcome], dict[str, str], Path]) -> None:
    results, _, _ = outcomes
    bad = [f"{o.tb} at {o.where} for {o.case.argv}" for o in results if o.tb]
    assert not bad, f"{len(bad)} tracebacks:\n" + "\n".join(bad[:20])


def test_every_refusal_is_one_line_exit_2(outcomes: tuple[list[Outcome], dict[str, str], Path]) -> None:
    results, _, _ = outcomes
    wrong = []
    for o in results:
        if o.tb:
            continue  # counted by the traceback tests
        lines = o.err.strip("\n").split("\n") if o.err.strip() else []
        if o.code == 2 and len(lines) != 1:
            wrong.append(f"exit 2 with {len(lines)} lines {lines[:3]} for {o.case.argv}")
        elif o.code not in (0, 2) or (o.case.bad and o.code != 2):
            wrong.append(f"exit {o.code} ({lines[-1:] if lines else ''}) for a {o.case.kind} case {o.case.argv}")
    assert not wrong, f"{len(wrong)} cases:\n" + "\n".join(wrong[:25])


def test_no_preexisting_file_changed(outcomes: tuple[list[Outcome], dict[str, str], Path]) -> None:
    _, before, inputs = outcomes
    assert _checksums(inputs) == before
