"""Reliability defects of issue 11 outside the CLI files: each test failed before its fix."""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image

from impasto.cli import main
from impasto.errors import ImpastoError, out_of_memory_message
from impasto.io import images as imageio
from impasto.io.images import bound_metadata, load_image, read_metadata, save_image, save_result
from impasto.vgg import weights as W
from impasto.vgg.features import VGGFeatures


def _rgb(h: int = 8, w: int = 8) -> torch.Tensor:
    return torch.rand(3, h, w, generator=torch.Generator().manual_seed(0))


# -- metadata is bounded for every format, so a long run's save never fails --------------------------
def _long_run_meta(steps: int, styles: int = 1) -> dict[str, object]:
    return {
        "impasto_version": "x", "content": "/c.png", "styles": [f"/styles/s{i:04d}.png" for i in range(styles)],
        "config": {"steps": steps},
        "loss_history": {"columns": ["step", "loss", "content", "style", "tv"],
                         "rows": [[i, 1.234567e5, 2.345678e4, 3.456789e3, 4.56789] for i in range(1, steps + 1)]},
    }


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".tif"])
def test_long_run_and_many_styles_save_in_every_format(tmp_path: Path, ext: str) -> None:
    meta = _long_run_meta(1500, styles=800)
    out = save_image(_rgb(), tmp_path / f"out{ext}", metadata=meta)  # raised ValueError for JPEG before
    back = read_metadata(out)
    assert back is not None and len(json.dumps(back)) <= imageio.MAX_METADATA_BYTES
    rows = back["loss_history"]["rows"]
    assert back["loss_history"]["thinned_from"] == 1500 and len(rows) <= imageio.MAX_HISTORY_ROWS
    assert rows[0][0] == 1 and rows[-1][0] == 1500  # first and last step kept
    assert back["styles_summary"]["count"] == 800 and len(back["styles"]) == imageio.MAX_LISTED_PATHS


def test_bound_metadata_leaves_small_metadata_alone_and_drops_what_cannot_fit() -> None:
    small = _long_run_meta(10)
    assert bound_metadata(small) == small
    huge = {"config": {"notes": ["x" * 100_000]}, "steps": 5}
    out = bound_metadata(huge)
    assert out["steps"] == 5 and out["config"] is None and "config_omitted" in out


# -- a finished image is never lost -----------------------------------------------------------------
def test_save_result_writes_a_rescue_png_when_the_requested_save_fails(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real = imageio.save_image
    calls: list[Path] = []

    def flaky(rgb: torch.Tensor, path: object, **kw: object) -> Path:
        calls.append(Path(str(path)))
        if str(path).endswith(".jpg"):
            raise ImpastoError(f"could not write {path}: No space left on device")
        return real(rgb, path, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(imageio, "save_image", flaky)
    res = save_result(_rgb(), tmp_path / "result.jpg", metadata={"a": 1})
    assert res.rescued and res.path == tmp_path / "result.rescued.png"
    assert "No space left" in res.message() and str(res.path) in res.message()
    assert torch.equal(load_image(res.path).rgb, load_image(res.path).rgb) and read_metadata(res.path) == {"a": 1}
    ok = save_result(_rgb(), tmp_path / "fine.png")
    assert not ok.rescued and ok.path == tmp_path / "fine.png" and ok.message() == ""


# -- truncated PNG (zlib stream ends half-way) is refused -----------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_png_whose_zlib_stream_ends_half_way_is_refused(tmp_path: Path) -> None:
    w, h = 16, 16
    raw = b"".join(b"\x00" + bytes(range(w * 3)) for _ in range(h))
    comp = zlib.compress(raw)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    sig = b"\x89PNG\r\n\x1a\n"
    good = sig + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", comp) + _chunk(b"IEND", b"")
    # A complete zlib stream that ends half-way through the rows (Pillow fills the rest with black).
    half = sig + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw[: len(raw) // 2])) + _chunk(b"IEND", b"")
    (tmp_path / "good.png").write_bytes(good)
    (tmp_path / "half.png").write_bytes(half)
    assert load_image(tmp_path / "good.png").rgb.shape == (3, h, w)
    with pytest.raises(ImpastoError, match="half.png.*ends early"):
        load_image(tmp_path / "half.png")


# -- decoder warnings do not leak to stderr ---------------------------------------------------------
def test_decoder_warnings_do_not_reach_stderr(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A Python warning (Pillow: corrupt EXIF, odd TIFF tags) and a C library's write to file descriptor 2
    (libtiff, libpng) during decoding stay out of the one-line error output."""
    import warnings

    real = imageio.pil_to_loaded

    def noisy(img: Image.Image, path: Path | None = None) -> imageio.LoadedImage:
        warnings.warn("Possibly corrupt EXIF data", UserWarning, stacklevel=1)
        os.write(2, b"TIFFReadDirectory: Warning, Unknown field with tag 65000\n")
        return real(img, path)

    monkeypatch.setattr(imageio, "pil_to_loaded", noisy)
    Image.new("RGB", (4, 4)).save(tmp_path / "x.png")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert load_image(tmp_path / "x.png").rgb.shape == (3, 4, 4)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    os.write(2, b"after\n")  # stderr itself is back
    assert capfd.readouterr().err == "after\n"


# -- IMPASTO_CACHE with an unknown user ----------------------------------------------------------------
def test_cache_setting_with_unknown_user_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMPASTO_CACHE", "~nosuchuser_impasto/x")
    with pytest.raises(ImpastoError, match="IMPASTO_CACHE=.*no such user"):
        W.cache_dir()


# -- the weight cache is verified by its recorded digest --------------------------------------------------
def _fake_convs(seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    from impasto_test_support import tiny_vgg

    return list(tiny_vgg("vgg19", seed=seed).convs)


def test_weight_cache_digest_detects_flipped_bytes_and_nan(tmp_path: Path) -> None:
    convs = _fake_convs()
    path = tmp_path / "cache.safetensors"
    W._write_cache(path, convs, "src")
    got = W._read_cache(path, "src")
    assert got is not None and all(torch.equal(a[0], b[0]) for a, b in zip(got, convs))
    data = bytearray(path.read_bytes())
    # Flip bytes inside the last tensor's data (the header is at the start).
    for i in range(len(data) - 64, len(data) - 32):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    assert W._read_cache(path, "src") is None  # rebuilt, not used
    nan = [(w.clone(), b.clone()) for w, b in convs]
    nan[3][0].view(-1)[5] = float("nan")
    W._write_cache(path, nan, "src")
    assert W._read_cache(path, "src") is None


def test_nan_in_a_user_weights_file_is_named(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    sd: dict[str, torch.Tensor] = {}
    for i, (w, b) in zip(W.torchvision_indices("vgg19"), _fake_convs(), strict=True):
        sd[f"features.{i}.weight"], sd[f"features.{i}.bias"] = w.clone(), b.clone()
    sd["features.0.weight"].view(-1)[0] = float("nan")
    save_file(sd, str(tmp_path / "w.safetensors"))
    with pytest.raises(ImpastoError, match="NaN or infinite.*damaged"):
        W.load_weights(tmp_path / "w.safetensors")


# -- small and degenerate images ---------------------------------------------------------------------------
def test_small_images_are_upsampled_for_the_network_and_thin_ones_refused(
    tiny_weights: Callable[..., W.VGGWeights],
) -> None:
    model = VGGFeatures(tiny_weights(), ["relu4_2", "relu5_1"])
    assert model.min_side() == 16
    out = model(torch.rand(1, 3, 6, 16))  # --size 16 of a 40x16 photo: was "Output size is too small"
    assert out["relu5_1"].shape[-2:] == (1, 2)
    big = model(torch.rand(1, 3, 32, 32))
    assert big["relu5_1"].shape[-2:] == (2, 2)
    with pytest.raises(ImpastoError, match="512x1 pixels is too thin"):
        model(torch.rand(1, 3, 1, 512))


def test_cli_small_and_degenerate_images(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         tiny_weights_file: Path) -> None:
    Image.new("RGB", (40, 16), (200, 30, 30)).save(tmp_path / "small.png")
    Image.new("RGB", (5000, 1), (10, 30, 200)).save(tmp_path / "strip.png")
    Image.new("RGB", (32, 32), (10, 200, 30)).save(tmp_path / "style.png")
    common = ["--weights", str(tiny_weights_file), "--steps", "1", "-q", "--start-size", "none"]
    assert main([str(tmp_path / "small.png"), str(tmp_path / "style.png"), "-o", str(tmp_path / "o.png"),
                 "--size", "16", *common]) == 0
    assert Image.open(tmp_path / "o.png").size == (16, 6)
    capsys.readouterr()
    assert main([str(tmp_path / "strip.png"), str(tmp_path / "style.png"), "-o", str(tmp_path / "p.png"),
                 "--size", "64", *common]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "too thin" in err


# -- show-config on deeply nested metadata -----------------------------------------------------------------
def test_show_config_on_deeply_nested_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("impasto", '{"a":' + "[" * 100_000 + "]" * 100_000 + "}")
    Image.new("RGB", (4, 4)).save(tmp_path / "deep.png", pnginfo=info)
    assert main(["show-config", str(tmp_path / "deep.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no impasto configuration" in err
    info = PngImagePlugin.PngInfo()
    info.add_text("impasto", '{"a":' + "[" * 500 + "]" * 500 + "}")  # parses, but would recurse when printed
    Image.new("RGB", (4, 4)).save(tmp_path / "deep2.png", pnginfo=info)
    assert read_metadata(tmp_path / "deep2.png") is None


# -- out of memory ---------------------------------------------------------------------------------------
def test_out_of_memory_messages() -> None:
    cpu = RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                       "you tried to allocate 1099511627776 bytes. Error code 12 (Cannot allocate memory)")
    assert out_of_memory_message(cpu) == "out of memory on the CPU: try a smaller --size"
    assert out_of_memory_message(RuntimeError("CUDA out of memory. Tried to allocate")) == (
        "out of memory on the GPU: try a smaller --size")
    assert out_of_memory_message(MemoryError()) is not None
    assert out_of_memory_message(RuntimeError("shape mismatch")) is None


def test_cli_recognises_cpu_out_of_memory(monkeypatch: pytest.MonkeyPatch, small_images: tuple[Path, Path],
                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import impasto.jobs.run

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes")

    monkeypatch.setattr(impasto.jobs.run, "StyleTransfer", boom)
    c, s = small_images
    assert main([str(c), str(s), "-o", str(tmp_path / "o.png"), "-q"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# -- the one writer ------------------------------------------------------------------------------------------
def test_animation_and_contact_sheet_use_the_atomic_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from impasto.io import atomic
    from impasto.viz import animate

    seen: list[str] = []
    real = atomic.atomic_write

    def spy(target: object, write: Callable[..., None], **kw: object) -> Path:
        seen.append(str(target))
        return real(target, write, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(animate, "atomic_write", spy)
    animate.write_animation([_rgb(), _rgb().flip(-1)], tmp_path / "a.gif")
    assert seen == [str(tmp_path / "a.gif")]
    with Image.open(tmp_path / "a.gif") as im:
        assert im.n_frames >= 2
    src = Path(animate.__file__).read_text() + Path(W.__file__).read_text()
    src += (Path(animate.__file__).parent / "explain.py").read_text()
    assert "os.replace" not in src and "mkstemp" not in src


def test_full_disk_animation_is_one_line_error(tmp_path: Path) -> None:
    from impasto.viz import animate

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with pytest.raises(ImpastoError):
        animate.write_animation([_rgb()], "/dev/full")


def test_save_result_rescues_even_when_the_metadata_broke_the_save(tmp_path: Path) -> None:
    res = save_result(_rgb(), tmp_path / "out.jpg", metadata={"bad": object()})
    assert res.rescued and "JSON-serialisable" in (res.problem or "")
    assert res.path == tmp_path / "out.rescued.png" and read_metadata(res.path) is None
    assert load_image(res.path).rgb.shape == (3, 8, 8) and not (tmp_path / "out.jpg").exists()


def test_save_result_falls_back_to_another_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = tmp_path / "removed-during-the-run"
    monkeypatch.chdir(tmp_path)
    res = save_result(_rgb(), gone / "out.png")
    assert res.rescued and res.path == tmp_path / "out.rescued.png" and "does not exist" in (res.problem or "")
