"""Tests for impasto.io.images: decoding every mode, errors, atomic saving, metadata, resizing."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from impasto.errors import ImpastoError
from impasto.io import images as imageio
from impasto.io.images import (
    check_output_path,
    default_content_path,
    default_style_path,
    load_image,
    pil_to_loaded,
    read_metadata,
    resize_long_side,
    resize_to,
    save_image,
    scaled_size,
    to_pil,
)
from impasto_test_support import as_unprivileged

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _assert_one_line_error(excinfo: pytest.ExceptionInfo[ImpastoError], name: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    assert name in msg
    return msg


# ------------------------------------------------------------------------------------------------
# Modes
# ------------------------------------------------------------------------------------------------


def test_rgb_png_exact_values(tmp_path: Path) -> None:
    arr = np.array([[[255, 0, 0], [0, 128, 255]]], dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    li = load_image(tmp_path / "a.png")
    assert li.rgb.shape == (3, 1, 2)
    assert li.rgb.dtype == torch.float32
    assert li.rgb.is_contiguous()
    assert li.alpha is None
    assert li.path == tmp_path / "a.png"
    assert not li.icc_converted
    torch.testing.assert_close(li.rgb, torch.from_numpy(arr).permute(2, 0, 1).float() / 255)


def test_greyscale_l_and_1(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 128, 255]], dtype=np.uint8)).save(tmp_path / "l.png")
    li = load_image(tmp_path / "l.png")
    assert li.rgb.shape == (3, 1, 3)
    for c in range(3):
        torch.testing.assert_close(li.rgb[c, 0], torch.tensor([0.0, 128 / 255, 1.0]))

    bw = Image.new("1", (2, 1))
    bw.putpixel((1, 0), 1)
    bw.save(tmp_path / "bw.png")
    li = load_image(tmp_path / "bw.png")
    torch.testing.assert_close(li.rgb[:, 0, :], torch.tensor([[0.0, 1.0]] * 3))


def test_la_alpha_carried_and_opaque_alpha_dropped(tmp_path: Path) -> None:
    la = Image.new("LA", (2, 1), (200, 255))
    la.putpixel((1, 0), (50, 0))
    la.save(tmp_path / "la.png")
    li = load_image(tmp_path / "la.png")
    assert li.alpha is not None
    assert li.alpha.shape == (1, 1, 2)
    torch.testing.assert_close(li.alpha[0, 0], torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(li.rgb[:, 0, 0], torch.full((3,), 200 / 255))

    Image.new("LA", (2, 2), (10, 255)).save(tmp_path / "opaque.png")
    assert load_image(tmp_path / "opaque.png").alpha is None
    Image.new("RGBA", (2, 2), (1, 2, 3, 255)).save(tmp_path / "opaque_rgba.png")
    assert load_image(tmp_path / "opaque_rgba.png").alpha is None


def test_palette_colours_exact(tmp_path: Path) -> None:
    p = Image.new("P", (3, 1))
    p.putpalette([10, 20, 30, 200, 100, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    for x in range(3):
        p.putpixel((x, 0), x)
    p.save(tmp_path / "p.png")
    li = load_image(tmp_path / "p.png")
    expected = torch.tensor([[10, 200, 0], [20, 100, 0], [30, 0, 255]], dtype=torch.float32) / 255
    torch.testing.assert_close(li.rgb[:, 0, :], expected)
    assert li.alpha is None


@pytest.mark.parametrize("ext", [".png", ".gif"])
def test_palette_with_transparency_gives_alpha(tmp_path: Path, ext: str) -> None:
    p = Image.new("P", (2, 1))
    p.putpalette([255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6))
    p.putpixel((0, 0), 0)
    p.putpixel((1, 0), 1)
    p.save(tmp_path / f"t{ext}", transparency=1)
    li = load_image(tmp_path / f"t{ext}")
    assert li.alpha is not None
    torch.testing.assert_close(li.alpha[0, 0], torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(li.rgb[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))


def test_16bit_greyscale_png_keeps_range(tmp_path: Path) -> None:
    arr = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    li = load_image(tmp_path / "g16.png")
    assert li.rgb[0, 0, 0].item() == 0.0
    assert li.rgb[0, 0, 1].item() == pytest.approx(0.5, abs=1e-4)
    assert li.rgb[0, 0, 2].item() == 1.0
    assert torch.equal(li.rgb[0], li.rgb[2])


def test_16bit_greyscale_tiff(tmp_path: Path) -> None:
    Image.fromarray(np.array([[65535, 16384]], dtype=np.uint16)).save(tmp_path / "g16.tif")
    li = load_image(tmp_path / "g16.tif")
    torch.testing.assert_close(li.rgb[1, 0], torch.tensor([1.0, 16384 / 65535]))


def test_32bit_int_and_float_modes() -> None:
    i = Image.new("I", (3, 1))
    for x, v in enumerate((0, 32768, 65535)):
        i.putpixel((x, 0), v)
    li = pil_to_loaded(i)
    torch.testing.assert_close(li.rgb[0, 0], torch.tensor([0.0, 32768 / 65535, 1.0]))
    assert li.path is None

    f = Image.fromarray(np.array([[0.25, 0.5, 1.0]], dtype=np.float32))
    assert f.mode == "F"
    torch.testing.assert_close(pil_to_loaded(f).rgb[2, 0], torch.tensor([0.25, 0.5, 1.0]))


def test_16bit_rgb_png(tmp_path: Path) -> None:
    # Pillow has no 16-bit RGB mode: it hands these over as 8-bit RGB, which must still be right.
    raw = b"\x00" + np.array([[65535, 0, 32896]], dtype=">u2").tobytes()
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 16, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )
    (tmp_path / "rgb16.png").write_bytes(png)
    li = load_image(tmp_path / "rgb16.png")
    torch.testing.assert_close(li.rgb[:, 0, 0], torch.tensor([1.0, 0.0, 128 / 255]))


def test_cmyk(tmp_path: Path) -> None:
    li = pil_to_loaded(Image.new("CMYK", (2, 2), (255, 0, 0, 0)))  # pure cyan
    torch.testing.assert_close(li.rgb[:, 0, 0], torch.tensor([0.0, 1.0, 1.0]))

    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=100)  # red
    li = load_image(tmp_path / "cmyk.jpg")
    assert li.rgb.shape == (3, 8, 8)
    assert li.rgb[0].mean() > 0.9 and li.rgb[1].mean() < 0.1 and li.rgb[2].mean() < 0.1


def test_ycbcr_and_rgbx() -> None:
    ycc = Image.new("RGB", (2, 2), (30, 60, 90)).convert("YCbCr")
    li = pil_to_loaded(ycc)
    assert li.rgb.shape == (3, 2, 2)
    torch.testing.assert_close(li.rgb[:, 0, 0], torch.tensor([30, 60, 90]) / 255, atol=3 / 255, rtol=0)
    rgbx = Image.new("RGBX", (1, 1), (1, 2, 3, 0))
    torch.testing.assert_close(pil_to_loaded(rgbx).rgb[:, 0, 0], torch.tensor([1, 2, 3]) / 255)


def test_icc_profile_converted(tmp_path: Path) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = Image.new("RGB", (4, 4), (200, 100, 50))
    img.save(tmp_path / "icc.png", icc_profile=srgb)
    li = load_image(tmp_path / "icc.png")
    assert li.icc_converted
    # sRGB -> sRGB is (nearly) the identity.
    torch.testing.assert_close(li.rgb[:, 0, 0], torch.tensor([200, 100, 50]) / 255, atol=2 / 255, rtol=0)

    rgba = Image.new("RGBA", (2, 2), (200, 100, 50, 77))
    rgba.save(tmp_path / "icc_rgba.png", icc_profile=srgb)
    li = load_image(tmp_path / "icc_rgba.png")
    assert li.icc_converted and li.alpha is not None
    assert li.alpha[0, 0, 0].item() == pytest.approx(77 / 255)


def test_broken_icc_profile_falls_back(tmp_path: Path) -> None:
    img = Image.new("RGB", (2, 2), (200, 100, 50))
    img.save(tmp_path / "bad_icc.png", icc_profile=b"this is not an ICC profile")
    li = load_image(tmp_path / "bad_icc.png")
    assert not li.icc_converted
    torch.testing.assert_close(li.rgb[:, 0, 0], torch.tensor([200, 100, 50]) / 255)


def test_exif_orientation_rotates(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), (0, 0, 0))  # wide
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    li = load_image(tmp_path / "rot.jpg")
    assert li.rgb.shape == (3, 40, 20)  # shown tall

    img.save(tmp_path / "plain.jpg")
    assert load_image(tmp_path / "plain.jpg").rgb.shape == (3, 20, 40)


# ------------------------------------------------------------------------------------------------
# Load errors
# ------------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImpastoError) as ei:
        load_image(tmp_path / "nope.png")
    assert _assert_one_line_error(ei, "nope.png").startswith("no such file:")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ImpastoError) as ei:
        load_image(tmp_path)
    assert "folder" in _assert_one_line_error(ei, str(tmp_path))


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImpastoError) as ei:
        load_image(tmp_path / "empty.png")
    assert "empty" in _assert_one_line_error(ei, "empty.png")


def test_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("hello\nworld\n")
    with pytest.raises(ImpastoError) as ei:
        load_image(tmp_path / "notes.jpg")
    assert "not an image" in _assert_one_line_error(ei, "notes.jpg")


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_truncated_image(tmp_path: Path, ext: str) -> None:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format=Image.EXTENSION[ext])
    data = buf.getvalue()
    (tmp_path / f"cut{ext}").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImpastoError) as ei:
        load_image(tmp_path / f"cut{ext}")
    _assert_one_line_error(ei, f"cut{ext}")


def test_decompression_bomb_header(tmp_path: Path) -> None:
    # A PNG header claiming 100000 x 100000 pixels, with no pixel data: refused before decoding.
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
        + _png_chunk(b"IEND", b"")
    )
    (tmp_path / "bomb.png").write_bytes(png)
    with pytest.raises(ImpastoError) as ei:
        load_image(tmp_path / "bomb.png")
    assert "too large" in _assert_one_line_error(ei, "bomb.png")


def test_max_pixels_is_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "small.png")
    monkeypatch.setattr(imageio, "MAX_PIXELS", 10)
    with pytest.raises(ImpastoError) as ei:
        load_image(tmp_path / "small.png")
    assert "4x4" in _assert_one_line_error(ei, "small.png")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_permission_denied(public_tmp: Path) -> None:
    # As root (CI) the check runs in a child that has dropped to an ordinary user.
    f = public_tmp / "secret.png"
    Image.new("RGB", (2, 2)).save(f)
    f.chmod(0)

    def check() -> None:
        with pytest.raises(ImpastoError) as ei:
            load_image(f)
        assert "permission" in _assert_one_line_error(ei, "secret.png")

    as_unprivileged(check)


# ------------------------------------------------------------------------------------------------
# Saving
# ------------------------------------------------------------------------------------------------


def _rand_rgb(h: int = 8, w: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, h, w, generator=g)


def test_png_roundtrip_exact_with_alpha(tmp_path: Path) -> None:
    rgb = (torch.randint(0, 256, (3, 5, 7)).float() / 255).contiguous()
    alpha = torch.linspace(0, 1, 35).reshape(1, 5, 7)
    out = save_image(rgb, tmp_path / "o.png", alpha=alpha)
    assert out == (tmp_path / "o.png").resolve()
    li = load_image(out)
    torch.testing.assert_close(li.rgb, rgb)
    assert li.alpha is not None
    torch.testing.assert_close(li.alpha, (alpha * 255).round() / 255)


@pytest.mark.parametrize("ext", [".webp", ".tif"])
def test_alpha_kept_in_webp_and_tiff(tmp_path: Path, ext: str) -> None:
    alpha = torch.zeros(1, 8, 6)
    alpha[:, :4] = 1.0
    save_image(_rand_rgb(), tmp_path / f"o{ext}", alpha=alpha)
    li = load_image(tmp_path / f"o{ext}")
    assert li.alpha is not None
    torch.testing.assert_close(li.alpha, alpha, atol=2 / 255, rtol=0)


def test_jpeg_drops_alpha_and_accepts_batched_input(tmp_path: Path) -> None:
    save_image(_rand_rgb()[None], tmp_path / "o.jpg", alpha=torch.zeros(1, 8, 6))
    with Image.open(tmp_path / "o.jpg") as im:
        assert im.mode == "RGB" and im.size == (6, 8)


def test_alpha_resized_to_rgb(tmp_path: Path) -> None:
    alpha = torch.zeros(1, 4, 3)
    alpha[:, :2] = 1.0
    save_image(_rand_rgb(8, 6), tmp_path / "o.png", alpha=alpha)
    li = load_image(tmp_path / "o.png")
    assert li.alpha is not None and li.alpha.shape == (1, 8, 6)
    assert li.alpha[0, 0, 0] == 1.0 and li.alpha[0, 7, 5] == 0.0


def test_save_clamps_and_handles_nan(tmp_path: Path) -> None:
    rgb = torch.tensor([[[-1.0, 2.0, float("nan")]]]).expand(3, 1, 3)
    save_image(rgb, tmp_path / "o.png")
    li = load_image(tmp_path / "o.png")
    torch.testing.assert_close(li.rgb[0, 0], torch.tensor([0.0, 1.0, 0.0]))


def test_save_is_atomic_and_leaves_no_temp(tmp_path: Path) -> None:
    save_image(_rand_rgb(), tmp_path / "o.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png"]
    mode = (tmp_path / "o.png").stat().st_mode & 0o777
    assert mode & 0o044, "output should not be private-only like a mkstemp file"


def test_failed_write_keeps_existing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "o.png"
    target.write_bytes(b"precious")

    def broken_save(self: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
        fp.write(b"half an image")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ImpastoError) as ei:
        save_image(_rand_rgb(), target)
    assert "No space left" in _assert_one_line_error(ei, "o.png")
    assert target.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]


def test_interrupted_write_removes_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
        fp.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_image(_rand_rgb(), tmp_path / "o.png")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------
# Output path checks
# ------------------------------------------------------------------------------------------------


def test_refuses_output_equal_to_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inp = tmp_path / "in.png"
    Image.new("RGB", (2, 2)).save(inp)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    for out in (inp, "../in.png", tmp_path / "sub" / ".." / "in.png"):
        with pytest.raises(ImpastoError) as ei:
            save_image(_rand_rgb(), out, inputs=[inp])
        assert "same file" in _assert_one_line_error(ei, "in.png")
    # and the other way round: a relative input, an absolute output
    with pytest.raises(ImpastoError):
        check_output_path(inp, ["../in.png"])
    assert load_image(inp).rgb.shape == (3, 2, 2)  # untouched


@pytest.mark.skipif(os.name != "posix", reason="symlinks/hard links")
def test_refuses_output_via_links(tmp_path: Path) -> None:
    inp = tmp_path / "in.png"
    Image.new("RGB", (2, 2)).save(inp)
    (tmp_path / "link.png").symlink_to(inp)
    os.link(inp, tmp_path / "hard.png")
    for out in ("link.png", "hard.png"):
        with pytest.raises(ImpastoError):
            check_output_path(tmp_path / out, [inp])
    # a link to a folder containing the input
    (tmp_path / "d").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(ImpastoError):
        check_output_path(tmp_path / "d" / "in.png", [inp])


def test_bad_extension_lists_choices(tmp_path: Path) -> None:
    for name in ("out.gif", "out"):
        with pytest.raises(ImpastoError) as ei:
            check_output_path(tmp_path / name, [])
        msg = _assert_one_line_error(ei, name)
        for ext in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"):
            assert ext in msg
    assert check_output_path(tmp_path / "OUT.PNG", []) == (tmp_path / "OUT.PNG").resolve()


def test_missing_parent_and_directory_target(tmp_path: Path) -> None:
    with pytest.raises(ImpastoError) as ei:
        check_output_path(tmp_path / "no" / "such" / "out.png", [])
    assert "does not exist" in _assert_one_line_error(ei, "such")
    (tmp_path / "x.png").mkdir()
    with pytest.raises(ImpastoError) as ei:
        save_image(_rand_rgb(), tmp_path / "x.png")
    assert "folder" in _assert_one_line_error(ei, "x.png")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_unwritable_folder(public_tmp: Path) -> None:
    ro = public_tmp / "ro"
    ro.mkdir()
    ro.chmod(0o555)

    def check() -> None:
        with pytest.raises(ImpastoError) as ei:
            check_output_path(ro / "out.png", [])
        assert "not writable" in _assert_one_line_error(ei, "ro")
        with pytest.raises(ImpastoError):
            save_image(_rand_rgb(), ro / "out.png")
        assert list(ro.iterdir()) == []

    as_unprivileged(check)


# ------------------------------------------------------------------------------------------------
# Metadata
# ------------------------------------------------------------------------------------------------

META: dict[str, Any] = {
    "impasto": "0.1.0",
    "content": "photo é.jpg",
    "style_weight": 1e6,
    "layers": ["conv1_1", "conv2_1"],
    "seed": 0,
    "nested": {"ok": True, "none": None},
}


@pytest.mark.parametrize("ext", [".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"])
def test_metadata_roundtrip(tmp_path: Path, ext: str) -> None:
    out = save_image(_rand_rgb(), tmp_path / f"o{ext}", metadata=META)
    assert read_metadata(out) == META
    plain = save_image(_rand_rgb(), tmp_path / f"plain{ext}")
    assert read_metadata(plain) is None


def test_metadata_with_alpha_png(tmp_path: Path) -> None:
    out = save_image(_rand_rgb(), tmp_path / "o.png", alpha=torch.full((1, 8, 6), 0.5), metadata=META)
    assert read_metadata(out) == META
    assert load_image(out).alpha is not None


def test_foreign_jpeg_comment_is_not_metadata(tmp_path: Path) -> None:
    Image.new("RGB", (2, 2)).save(tmp_path / "c.jpg", comment=b"made with something else")
    assert read_metadata(tmp_path / "c.jpg") is None


def test_read_metadata_errors(tmp_path: Path) -> None:
    (tmp_path / "t.png").write_text("not an image")
    with pytest.raises(ImpastoError):
        read_metadata(tmp_path / "t.png")
    with pytest.raises(ImpastoError):
        read_metadata(tmp_path / "missing.png")


def test_unserialisable_metadata_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        save_image(_rand_rgb(), tmp_path / "o.png", metadata={"x": object()})
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------
# Resizing and conversion
# ------------------------------------------------------------------------------------------------


def test_scaled_size() -> None:
    assert scaled_size(1000, 500, 512) == (512, 256)
    assert scaled_size(500, 1000, 512) == (256, 512)
    assert scaled_size(300, 300, 64) == (64, 64)
    assert scaled_size(3, 1000, 100) == (1, 100)  # never 0
    assert scaled_size(1, 10000, 10) == (1, 10)
    assert scaled_size(3, 2, 3) == (3, 2)
    with pytest.raises(ImpastoError):
        scaled_size(10, 10, 0)


def test_resize_long_side_shapes_and_range() -> None:
    x = torch.rand(3, 100, 50)
    y = resize_long_side(x, 64)
    assert y.shape == (3, 64, 32)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert resize_long_side(torch.rand(2, 3, 50, 100), 20).shape == (2, 3, 10, 20)
    assert resize_long_side(x, 300).shape == (3, 300, 150)  # upscaling too
    assert resize_long_side(x, 100) is x  # already that size: no copy
    # a sharp edge would overshoot with plain bicubic; results stay clamped
    edge = torch.zeros(1, 16, 16)
    edge[:, :, 8:] = 1.0
    z = resize_to(edge, (40, 40))
    assert z.shape == (1, 40, 40) and float(z.min()) >= 0.0 and float(z.max()) <= 1.0
    with pytest.raises(ValueError):
        resize_long_side(torch.rand(100, 50), 10)


def test_to_pil_modes() -> None:
    assert to_pil(torch.rand(3, 4, 5)).mode == "RGB"
    im = to_pil(torch.rand(1, 3, 4, 5), torch.rand(1, 4, 5))
    assert im.mode == "RGBA" and im.size == (5, 4)
    with pytest.raises(ValueError):
        to_pil(torch.rand(4, 4, 5))


# ------------------------------------------------------------------------------------------------
# Bundled demo inputs
# ------------------------------------------------------------------------------------------------


def test_default_inputs_load() -> None:
    content = load_image(default_content_path())
    style = load_image(default_style_path())
    assert max(content.rgb.shape[1:]) == 512
    assert style.rgb.shape == (3, 512, 512)
    assert content.alpha is None and style.alpha is None
