"""Layer naming, truncation, freezing and pooling of the VGG feature extractor."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from impasto.errors import ImpastoError
from impasto.vgg.features import VGGFeatures, canonical_layer, layer_names
from impasto.vgg.weights import VGGWeights


def test_layer_names_counts() -> None:
    assert len([n for n in layer_names("vgg19") if n.startswith("conv")]) == 16
    assert len([n for n in layer_names("vgg16") if n.startswith("conv")]) == 13
    assert layer_names("vgg19")[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("conv4_2", "conv4_2"),
        ("relu4_2", "relu4_2"),
        ("block4_conv2", "relu4_2"),  # Keras Conv2D includes its ReLU
        ("block3_pool", "pool3"),
        ("conv_1", "conv1_1"),
        ("conv_4", "conv2_2"),
        ("conv_5", "conv3_1"),
        ("relu_5", "relu3_1"),
        ("pool_2", "pool2"),
        ("  RELU1_1 ", "relu1_1"),
    ],
)
def test_canonical_layer(name: str, canonical: str) -> None:
    assert canonical_layer(name, "vgg19") == canonical


@pytest.mark.parametrize("bad", ["conv6_1", "relu3_4x", "conv_17", "fc7", ""])
def test_unknown_layer_is_one_line_error(bad: str) -> None:
    with pytest.raises(ImpastoError) as err:
        canonical_layer(bad, "vgg19")
    assert "\n" not in str(err.value)


def test_vgg16_has_no_conv3_4() -> None:
    assert canonical_layer("conv3_4", "vgg19") == "conv3_4"
    with pytest.raises(ImpastoError):
        canonical_layer("conv3_4", "vgg16")


def test_truncates_at_deepest_layer(tiny_weights: Callable[..., VGGWeights]) -> None:
    m = VGGFeatures(tiny_weights(), ["relu1_1", "conv2_1"])
    assert m.deepest == "conv2_1"
    assert len(m.convs) == 3  # conv1_1, conv1_2, conv2_1: nothing deeper is built or run
    out = m(torch.rand(1, 3, 16, 16))
    assert set(out) == {"relu1_1", "conv2_1"}
    assert out["conv2_1"].shape == (1, 5, 8, 8)


def test_weights_are_frozen(tiny_weights: Callable[..., VGGWeights]) -> None:
    m = VGGFeatures(tiny_weights(), ["relu3_1"])
    assert all(not p.requires_grad for p in m.parameters())
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    m(x)["relu3_1"].sum().backward()
    assert x.grad is not None and all(p.grad is None for p in m.parameters())


def test_matches_a_plain_reference_forward(tiny_weights: Callable[..., VGGWeights]) -> None:
    w = tiny_weights()
    x = torch.rand(1, 3, 16, 16)
    h = w.preprocess.apply(x)
    for i, (k, b) in enumerate(w.convs[:3]):
        h = F.relu(F.conv2d(h, k, b, padding=1))
        if i == 1:
            h = F.avg_pool2d(h, 2)
    for channels_last in (False, True):
        m = VGGFeatures(w, ["relu2_1"], pooling="avg").use_channels_last(channels_last)
        # Caffe-scaled activations reach the hundreds: compare relative to that scale.
        torch.testing.assert_close(m(x)["relu2_1"], h, rtol=1e-4, atol=1e-3)


def test_pre_and_post_relu_differ(tiny_weights: Callable[..., VGGWeights]) -> None:
    m = VGGFeatures(tiny_weights(), ["conv1_1", "relu1_1"])
    out = m(torch.rand(1, 3, 8, 8))
    assert (out["conv1_1"] < 0).any()
    assert torch.equal(out["relu1_1"], out["conv1_1"].clamp_min(0))


def test_max_and_avg_pooling_differ(tiny_weights: Callable[..., VGGWeights]) -> None:
    x = torch.rand(1, 3, 16, 16)
    a = VGGFeatures(tiny_weights(), ["pool1"], pooling="max")(x)["pool1"]
    b = VGGFeatures(tiny_weights(), ["pool1"], pooling="avg")(x)["pool1"]
    assert a.shape == b.shape == (1, 4, 8, 8)
    assert (a >= b - 1e-6).all() and not torch.allclose(a, b)


def test_bad_pooling(tiny_weights: Callable[..., VGGWeights]) -> None:
    with pytest.raises(ImpastoError):
        VGGFeatures(tiny_weights(), ["relu1_1"], pooling="min")


def test_pools_before(tiny_weights: Callable[..., VGGWeights]) -> None:
    m = VGGFeatures(tiny_weights(), ["relu5_1"])
    assert [m.pools_before(x) for x in ("relu1_1", "pool1", "relu2_1", "relu5_1")] == [0, 1, 1, 4]


def test_recomputing_activations_gives_the_same_gradients(tiny_weights: Callable[..., VGGWeights]) -> None:
    m = VGGFeatures(tiny_weights(), ["relu1_1", "relu2_1", "relu3_1"]).use_channels_last()
    x = torch.rand(1, 3, 16, 24)
    grads, values = [], []
    for on in (False, True):
        m.checkpointing = on
        xr = x.clone().requires_grad_(True)
        out = m(xr)
        loss = sum((v**2).mean() for v in out.values())
        loss.backward()  # type: ignore[union-attr]
        grads.append(xr.grad)
        values.append({k: v.detach() for k, v in out.items()})
    assert values[0].keys() == values[1].keys()
    for k in values[0]:
        assert torch.equal(values[0][k], values[1][k])
    assert grads[0] is not None and grads[1] is not None
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-6, atol=1e-6)


def test_activation_estimate_counts_maps_and_pool_indices(tiny_weights: Callable[..., VGGWeights]) -> None:
    w = tiny_weights()
    c1 = w.convs[0][0].shape[0]
    m = VGGFeatures(w, ["relu1_1"])
    assert m.activation_mib(8, 10) == pytest.approx(4 * c1 * 8 * 10 / 2**20)  # relu1_1 only
    m2 = VGGFeatures(w, ["conv2_1"])  # relu1_1, relu1_2, pool1 (+ int64 indices); conv2_1 is freed
    c2 = w.convs[1][0].shape[0]
    want = 4 * c1 * 80 + 4 * c2 * 80 + (4 + 8) * c2 * 20
    assert m2.activation_mib(8, 10) == pytest.approx(want / 2**20)
    assert VGGFeatures(w, ["conv2_1"], pooling="avg").activation_mib(8, 10) == pytest.approx(
        (want - 8 * c2 * 20) / 2**20)
