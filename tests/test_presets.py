"""Presets: every number of every source pinned, the loss forms checked on numbers, each preset run end to end."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from impasto import losses
from impasto.cli import main
from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.errors import ImpastoError
from impasto.io.images import resize_to
from impasto.presets import (
    PRESETS,
    PYTORCH_STYLECNN_STYLE_W,
    check_weights,
    get_preset,
    names,
    preset_config,
)
from impasto.vgg import weights as W
from impasto.vgg.features import canonical_layer
from impasto.vgg.weights import CAFFE, VGG_BLOCKS, load_weights
from impasto_test_support import spy_objective

FIVE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

# The numbers of each source, written out by hand from the issue (and the sources): a change to a preset
# that disagrees with its source breaks these.
SOURCE: dict[str, dict[str, object]] = {
    "coursera": dict(
        content_layers=("relu4_2",), style_layers=FIVE, style_layer_weights=(0.2,) * 5, pooling="avg",
        content_loss="coursera", gram_norm="none", style_loss="paper", content_weight=10.0, style_weight=40.0,
        tv_weight=0.0, optimizer="adam", lr=2.0, adam_betas=(0.9, 0.999), adam_eps=1e-8, pixel_scale=255.0,
        init="blend", noise="uniform", noise_scale=20.0 / 255.0, noise_mean=None, noise_ratio=0.6, steps=200,
        size=400, start_size=None, clamp=False,
    ),
    "pytorch-stylecnn": dict(
        content_layers=("conv_4",), style_layers=("conv_1", "conv_2", "conv_3", "conv_4", "conv_5"),
        style_layer_weights=None, pooling="max", gram_norm="abcd", content_loss="mse", style_loss="mse",
        content_weight=1.0, style_weight=1000.0**2, tv_weight=0.0, optimizer="lbfgs", lr=1.0,
        lbfgs_max_iter=20, lbfgs_history=100, lbfgs_line_search=False, init="content",
        pixel_scale=1.0, clamp=False, clamp_before_eval=False, size=256,
        start_size=None, steps=31,
    ),
    "tf-tutorial": dict(
        content_layers=("block5_conv2",),
        style_layers=("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"),
        style_layer_weights=(0.2,) * 5, pooling="max", gram_norm="hw", style_loss="mse", content_loss="mse",
        style_weight=1e-2, content_weight=1e4, tv_weight=30.0, tv_loss="l1", init="content", optimizer="adam",
        lr=0.02, adam_betas=(0.99, 0.999), adam_eps=0.1, pixel_scale=1.0, clamp=True, steps=1000,
        start_size=None,
    ),
    "keras-white": dict(
        weights=None, content_layers=("block4_conv2",),
        style_layers=("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"),
        style_layer_weights=(0.2,) * 5, content_loss="sse", gram_norm="none", style_loss="keras",
        content_weight=1e-2, style_weight=1.0, init="preprocessed-ones", tv_weight=0.0, start_size=None,
        optimizer="adam", adam_betas=(0.9, 0.999), adam_eps=1e-7, pixel_scale=255.0, clamp=False,
    ),
    "gatys": dict(
        content_layers=("relu4_2",), style_layers=FIVE, style_layer_weights=(0.2,) * 5, pooling="avg",
        content_loss="half_sse", gram_norm="none", style_loss="paper", content_weight=1.0, style_weight=1e3,
        tv_weight=0.0, optimizer="lbfgs", init="noise", start_size=None, clamp=False,
    ),
}

SNAPSHOT = Path(__file__).with_name("data") / "presets_snapshot.json"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Keep the real weights' cache where it is (fast), but forget memoised fake files between tests.
    yield
    W._clear_memo()


def test_registry_names() -> None:
    assert names() == ["coursera", "pytorch-stylecnn", "tf-tutorial", "keras-white", "gatys"]
    with pytest.raises(ImpastoError, match="unknown preset 'nope'.*coursera"):
        get_preset("nope")


@pytest.mark.parametrize("name", list(SOURCE))
def test_source_numbers(name: str) -> None:
    cfg = preset_config(name, allow_vgg19=True)
    for field, want in SOURCE[name].items():
        got = getattr(cfg, field)
        if isinstance(want, float):
            assert got == pytest.approx(want, rel=1e-12), field
        else:
            assert got == want, field
    assert cfg.preset == name
    assert cfg.notes and any("preprocessing" in n for n in cfg.notes)


def test_full_snapshot() -> None:
    """Every field of every preset, including the ones the sources leave at impasto's defaults."""
    snap = json.loads(SNAPSHOT.read_text())
    assert set(snap) == set(PRESETS)
    for name, p in PRESETS.items():
        got = {k: v for k, v in p.factory().to_dict().items() if k not in ("preset", "notes")}
        assert got == snap[name], name


def test_layer_readings() -> None:
    # Coursera/paper conv4_2 are post-ReLU (conv+ReLU graph nodes, Caffe in-place ReLU).
    assert [canonical_layer(x) for x in PRESETS["coursera"].factory().content_layers] == ["relu4_2"]
    # PyTorch tutorial counts convolutions, pre-activation.
    cfg = PRESETS["pytorch-stylecnn"].factory()
    assert [canonical_layer(x) for x in cfg.content_layers] == ["conv2_2"]
    assert [canonical_layer(x) for x in cfg.style_layers] == ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"]
    # Keras layers include the ReLU.
    tf = PRESETS["tf-tutorial"].factory()
    assert [canonical_layer(x) for x in tf.content_layers] == ["relu5_2"]
    assert [canonical_layer(x) for x in tf.style_layers] == list(FIVE)
    kw = PRESETS["keras-white"].factory()
    assert [canonical_layer(x, "vgg16") for x in kw.content_layers] == ["relu4_2"]


def test_cli_side_defaults() -> None:
    assert PRESETS["coursera"].cli_defaults == {"save_every": 20, "print_every": 20}
    assert PRESETS["pytorch-stylecnn"].cli_defaults == {"save_every": 10}
    assert PRESETS["tf-tutorial"].cli_defaults == {"save_every": 100}
    assert PRESETS["keras-white"].needs_arch == "vgg16"


def test_pytorch_weight_inside_mse_is_w_squared() -> None:
    g, a = torch.randn(1, 4, 4), torch.randn(1, 4, 4)
    w = PYTORCH_STYLECNN_STYLE_W
    inside = torch.nn.functional.mse_loss(g * w, a * w)
    cfg = PRESETS["pytorch-stylecnn"].factory()
    ours = cfg.style_weight * losses.style_layer_loss(g, a, cfg.style_loss, channels=4, positions=9)
    assert float(ours) == pytest.approx(float(inside), rel=1e-5)


def test_coursera_formulas() -> None:
    f, p = torch.randn(1, 3, 5, 7), torch.randn(1, 3, 5, 7)
    assert float(losses.content_loss(f, p, "coursera")) == pytest.approx(float(((f - p) ** 2).sum() / (4 * 5 * 7 * 3)))
    gs, gg = losses.gram_matrix(f, "none"), losses.gram_matrix(p, "none")
    want = ((gs - gg) ** 2).sum() / (4 * 3**2 * (5 * 7) ** 2)
    assert float(losses.style_layer_loss(gg, gs, "paper", channels=3, positions=35)) == pytest.approx(float(want))


def test_keras_style_uses_image_size_and_36() -> None:
    g, a = torch.randn(1, 8, 8), torch.randn(1, 8, 8)
    got = losses.style_layer_loss(g, a, "keras", channels=8, positions=4, image_positions=64 * 48)
    assert float(got) == pytest.approx(float(((g - a) ** 2).sum() / (36.0 * (64 * 48) ** 2)))


def test_tf_tutorial_style_and_tv_forms() -> None:
    f = torch.randn(1, 6, 4, 5)
    g = losses.gram_matrix(f, "hw")
    want = torch.einsum("bijc,bijd->bcd", f.permute(0, 2, 3, 1), f.permute(0, 2, 3, 1)) / 20
    assert torch.allclose(g, want, atol=1e-5)
    x = torch.tensor([[[[0.0, 1.0], [3.0, 0.5]]]])
    assert float(losses.tv_loss(x, "l1")) == pytest.approx(3.0 + 0.5 + 1.0 + 2.5)


@pytest.mark.slow
def test_initial_images(real_content: torch.Tensor) -> None:
    vgg = load_weights(None)
    # Keras 'white image': ones in the Caffe input space = (1 + mean)/255 per channel, RGB order.
    st = StyleTransfer(real_content, [real_content], preset_config("keras-white", allow_vgg19=True).replace(size=32),
                       weights=vgg)
    want = torch.tensor([(1 + 123.68) / 255, (1 + 116.779) / 255, (1 + 103.939) / 255]).view(1, 3, 1, 1)
    assert torch.allclose(st.initial, want.expand_as(st.initial), atol=1e-6)
    assert torch.allclose(CAFFE.apply(st.initial), torch.ones_like(st.initial), atol=1e-4)
    # Coursera: 0.6·(mean ± 20/255) + 0.4·content, in pixel units.
    cfg = preset_config("coursera").replace(size=32)
    st = StyleTransfer(real_content, [real_content], cfg, weights=vgg)
    noise = (st.initial - 0.4 * resize_to(real_content, st.sizes[0])) / 0.6
    mean = torch.tensor([123.68, 116.779, 103.939]).view(1, 3, 1, 1) / 255
    dev = (noise - mean) * 255
    assert 19.0 < float(dev.abs().max()) <= 20.0 + 1e-3


@pytest.fixture
def real_content() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(3, 24, 32, generator=g)


def _fake_vgg16(path: Path) -> Path:
    g = torch.Generator().manual_seed(0)
    sd: dict[str, torch.Tensor] = {}
    prev = 3
    idx = W.torchvision_indices("vgg16")
    k = 0
    for n, c in zip(VGG_BLOCKS["vgg16"], (4, 5, 6, 7, 7)):
        for _ in range(n):
            sd[f"features.{idx[k]}.weight"] = torch.randn(c, prev, 3, 3, generator=g) * 0.3
            sd[f"features.{idx[k]}.bias"] = torch.randn(c, generator=g) * 0.1
            prev, k = c, k + 1
    save_file(sd, str(path), metadata={"preprocess": "caffe"})
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SOURCE))
def test_each_preset_runs_end_to_end(name: str, tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    content, style = torch.rand(3, 24, 32, generator=g), torch.rand(3, 32, 32, generator=g)
    if name == "keras-white":
        cfg = preset_config(name, weights=str(_fake_vgg16(tmp_path / "vgg16.safetensors")))
    else:
        cfg = preset_config(name)
    cfg = cfg.replace(size=32, steps=2, lbfgs_max_iter=min(cfg.lbfgs_max_iter, 3))
    st = StyleTransfer(content, [style], cfg)
    events = list(st.run())
    assert st.weights.arch == ("vgg16" if name == "keras-white" else "vgg19")
    assert [e.step for e in events] == [1, 2, 2] and events[-1].done
    last = events[-1]
    assert last.image is not None and last.image.shape == (3, 24, 32)
    assert math.isfinite(last.loss) and last.loss > 0
    assert not torch.equal(last.image, st.initial[0].clamp(0, 1))


def test_keras_white_needs_weights(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ImpastoError, match="--weights FILE.*--allow-vgg19"):
        preset_config("keras-white")
    cfg = preset_config("keras-white", allow_vgg19=True)
    with pytest.raises(ImpastoError):
        check_weights(cfg)
    check_weights(cfg, allow_vgg19=True)
    check_weights(cfg.replace(weights="x.pth"))
    # The CLI: one line, exit 2, before any work.
    assert main(["a.png", "b.png", "-o", "c.png", "--preset", "keras-white"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--weights" in err and "--allow-vgg19" in err


def test_cli_presets_and_show_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for n in names():
        assert sum(1 for ln in lines if ln.startswith(n + " ")) == 1
    assert main(["--preset", "tf-tutorial", "--show-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["adam_eps"] == 0.1 and cfg["preset"] == "tf-tutorial"
    assert any("ε" in n for n in cfg["notes"])
    # Explicit flags override the preset, everything else stays.
    assert main(["--preset", "coursera", "--steps", "7", "--lr", "3", "--show-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["steps"], cfg["lr"], cfg["style_weight"], cfg["init"]) == (7, 3.0, 40.0, "blend")
    # The printed configuration round-trips through --config.
    assert Config.from_dict(cfg).content_loss == "coursera"


def test_cli_preset_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--preset", "nope", "--show-config"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
    conf = tmp_path / "c.json"
    conf.write_text(Config().to_json())
    assert main(["--preset", "gatys", "--config", str(conf), "--show-config"]) == 2
    assert "not both" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["--preset", "gatys"])
    assert e.value.code == 2


# -- engine features the presets needed ------------------------------------------------------------
def _count_evals(st: StyleTransfer) -> list[int]:
    calls = [0]

    def counting(px: torch.Tensor, objective: Any) -> Any:
        calls[0] += 1
        return objective(px)

    spy_objective(st, counting)
    return calls


@pytest.mark.slow
def test_lbfgs_max_iter_runs_inner_iterations(real_content: torch.Tensor) -> None:
    vgg = load_weights(None)
    base = Config(size=24, start_size=None, steps=2, content_layers=("relu1_1",), style_layers=("relu1_1",))
    for max_iter, want in ((1, 2), (4, 8)):
        st = StyleTransfer(real_content, [real_content.flip(-1)], base.replace(lbfgs_max_iter=max_iter), weights=vgg)
        calls = _count_evals(st)
        list(st.run())
        assert calls[0] == want
    with pytest.raises(ImpastoError, match="lbfgs_max_iter"):
        base.replace(lbfgs_max_iter=0)


@pytest.mark.slow
def test_clamp_before_eval_keeps_every_evaluation_in_range(real_content: torch.Tensor) -> None:
    vgg = load_weights(None)
    cfg = Config(size=24, start_size=None, steps=1, init="noise", noise_scale=1.0, noise_mean=0.0, pixel_scale=1.0,
                 content_layers=("relu1_1",), style_layers=("relu1_1",), lbfgs_max_iter=3)
    seen: list[tuple[float, float]] = []
    for flag in (False, True):
        st = StyleTransfer(real_content, [real_content], cfg.replace(clamp_before_eval=flag), weights=vgg)
        def spy(x: torch.Tensor, objective: Any) -> Any:
            seen.append((float(x.detach().min()), float(x.detach().max())))
            return objective(x)

        spy_objective(st, spy)
        seen.clear()
        list(st.run())
        inside = all(lo >= 0.0 and hi <= 1.0 for lo, hi in seen)
        assert inside == flag  # N(0, 1) noise starts far outside [0, 1]


@pytest.mark.slow
def test_init_image_overrides_config_init(real_content: torch.Tensor) -> None:
    vgg = load_weights(None)
    warm = torch.full((3, 12, 16), 0.25)
    st = StyleTransfer(real_content, [real_content], Config(size=32, start_size=None, steps=0, init="noise"),
                       weights=vgg, init_image=warm)
    assert st.initial.shape == (1, 3, 24, 32)
    assert torch.allclose(st.initial, torch.full_like(st.initial, 0.25))
    events = list(st.run())
    assert events[-1].image is not None and torch.allclose(events[-1].image, torch.full((3, 24, 32), 0.25))


def test_docs_list_every_preset_and_departure() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "presets.md").read_text(encoding="utf-8")
    for p in PRESETS.values():
        assert f"## `{p.name}`" in doc
        for note in p.notes:
            assert note in doc, note
