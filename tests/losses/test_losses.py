"""Exact values of the pure loss functions on tiny hand-computed tensors."""

from __future__ import annotations

import pytest
import torch

from impasto.losses import content_loss, gram_matrix, style_layer_loss, tv_loss

# F has C=2 channels over H=1, W=2 positions: rows (1, 2) and (3, 4).
F = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
G_RAW = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]])


@pytest.mark.parametrize(
    ("norm", "divisor"), [("none", 1.0), ("chw", 4.0), ("hw", 2.0), ("abcd", 4.0)]
)
def test_gram_normalisations(norm: str, divisor: float) -> None:
    assert torch.equal(gram_matrix(F, norm), G_RAW / divisor)


def test_gram_abcd_counts_the_batch() -> None:
    f2 = torch.cat([F, F])
    assert torch.equal(gram_matrix(f2, "abcd"), torch.cat([G_RAW, G_RAW]) / 8.0)
    assert torch.equal(gram_matrix(f2, "chw"), torch.cat([G_RAW, G_RAW]) / 4.0)


def test_gram_of_channels_last_features_is_the_same_matrix() -> None:
    """The NHWC path (no copy to NCHW) gives the same Gram matrix, exactly on small integers."""
    f = torch.randint(-3, 4, (2, 3, 4, 5)).float()
    nhwc = f.contiguous(memory_format=torch.channels_last)
    assert not nhwc.is_contiguous()
    for norm in ("none", "chw", "hw", "abcd"):
        assert torch.equal(gram_matrix(nhwc, norm), gram_matrix(f, norm))
    g = torch.einsum("bchw,bdhw->bcd", f, f)
    assert torch.equal(gram_matrix(nhwc, "none"), g)


def test_gram_unknown_norm() -> None:
    with pytest.raises(ValueError):
        gram_matrix(F, "bogus")


# P differs from F by (1, 0, -2, 0): squared differences sum to 5 over 4 entries.
P = torch.tensor([[[[0.0, 2.0]], [[5.0, 4.0]]]])


@pytest.mark.parametrize(
    ("form", "value"),
    [("sse", 5.0), ("half_sse", 2.5), ("mse", 1.25), ("coursera", 5.0 / (4 * 1 * 2 * 2))],
)
def test_content_loss_forms(form: str, value: float) -> None:
    assert content_loss(F, P, form).item() == pytest.approx(value, rel=1e-7)


def test_content_loss_zero_at_target() -> None:
    assert content_loss(F, F.clone(), "sse").item() == 0.0


A = torch.tensor([[[4.0, 11.0], [11.0, 27.0]]])  # G - A = (1, 0, 0, -2): Σ² = 5


@pytest.mark.parametrize(
    ("form", "value"),
    [("sse", 5.0), ("mse", 1.25), ("paper", 5.0 / (4 * 2**2 * 2**2))],
)
def test_style_layer_loss_forms(form: str, value: float) -> None:
    got = style_layer_loss(G_RAW, A, form, channels=2, positions=2).item()
    assert got == pytest.approx(value, rel=1e-7)


def test_style_loss_paper_on_features_end_to_end() -> None:
    # E_l = 1/(4 N² M²) Σ (G − A)² with G from F and A from P: G(P) = [[4, 8], [8, 41]].
    a = gram_matrix(P, "none")
    assert torch.equal(a, torch.tensor([[[4.0, 8.0], [8.0, 41.0]]]))
    expected = (1.0 + 3.0**2 + 3.0**2 + 16.0**2) / (4 * 2**2 * 2**2)
    got = style_layer_loss(gram_matrix(F, "none"), a, "paper", channels=2, positions=2).item()
    assert got == pytest.approx(expected, rel=1e-7)


def test_tv_checkerboard() -> None:
    # 3x3 checkerboard: 6 vertical and 6 horizontal neighbour pairs, each differing by 1.
    board = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    assert tv_loss(board, "l1").item() == 12.0
    assert tv_loss(board, "l2").item() == 12.0
    assert tv_loss(2 * board, "l1").item() == 24.0
    assert tv_loss(2 * board, "l2").item() == 48.0


def test_tv_l1_matches_tf_image_total_variation_definition() -> None:
    x = torch.tensor([[1.0, 4.0], [2.0, 8.0]]).view(1, 1, 2, 2)
    # |2-1| + |8-4| (down) + |4-1| + |8-2| (across) = 1 + 4 + 3 + 6
    assert tv_loss(x, "l1").item() == 14.0
    assert tv_loss(x, "l2").item() == 1 + 16 + 9 + 36


def test_tv_constant_image_is_zero() -> None:
    assert tv_loss(torch.full((1, 3, 5, 7), 0.3), "l2").item() == 0.0


def test_unknown_forms_raise() -> None:
    with pytest.raises(ValueError):
        content_loss(F, P, "bogus")
    with pytest.raises(ValueError):
        style_layer_loss(G_RAW, A, "bogus", channels=2, positions=2)
    with pytest.raises(ValueError):
        tv_loss(F, "bogus")


def test_losses_are_differentiable() -> None:
    x = F.clone().requires_grad_(True)
    loss = content_loss(x, P, "sse") + style_layer_loss(gram_matrix(x, "chw"), A / 4, "mse",
                                                         channels=2, positions=2) + tv_loss(x, "l2")
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    # d/dF of Σ(F−P)² is 2(F−P) alone for the content part: check one entry where the others vanish.
    assert x.grad.shape == F.shape
