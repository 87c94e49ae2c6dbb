"""Optical flow, warping, the reliability mask and the temporal loss, on cases computed by hand."""

from __future__ import annotations

import pytest
import torch
from video_helpers import scene

from impasto.video.flow import (
    compute_flow,
    inside_mask,
    long_term_weights,
    reliability_mask,
    resize_flow,
    warp,
)
from impasto.video.temporal import TemporalLoss, temporal_loss_value

pytest.importorskip("cv2", reason="the video extra (opencv-python-headless) is not installed")


def _const_flow(h: int, w: int, u: float, v: float) -> torch.Tensor:
    f = torch.zeros(h, w, 2)
    f[..., 0] = u
    f[..., 1] = v
    return f


def test_warp_integer_shift_is_exact() -> None:
    img = torch.rand(3, 20, 30, generator=torch.Generator().manual_seed(1))
    out = warp(img, _const_flow(20, 30, 3.0, -2.0))  # out(y, x) = img(y - 2, x + 3)
    # Exact up to float rounding of the sampling grid (grid_sample works in [-1, 1] coordinates).
    torch.testing.assert_close(out[:, 2:, :27], img[:, :18, 3:], atol=1e-5, rtol=0)
    inside = inside_mask(_const_flow(20, 30, 3.0, -2.0))
    assert inside[2:, :27].eq(1).all() and inside[:2].eq(0).all() and inside[:, 27:].eq(0).all()


def test_warp_fractional_shift_is_bilinear() -> None:
    img = torch.rand(3, 10, 12, generator=torch.Generator().manual_seed(2))
    out = warp(img, _const_flow(10, 12, 0.25, 0.5))
    want = (0.75 * 0.5 * img[:, :-1, :-1] + 0.25 * 0.5 * img[:, :-1, 1:]
            + 0.75 * 0.5 * img[:, 1:, :-1] + 0.25 * 0.5 * img[:, 1:, 1:])
    torch.testing.assert_close(out[:, :-1, :-1], want, atol=1e-6, rtol=0)


def test_dis_flow_recovers_a_synthetic_shift_and_warps_back() -> None:
    big = scene(90, 110)
    prev, cur = big[:, 10:74, 10:94], big[:, 7:71, 6:90]  # the camera moved up 3 and left 4: content moves (+4, +3)
    back = compute_flow(cur, prev)  # frame t -> t-1
    fwd = compute_flow(prev, cur)
    inner = (slice(8, -8), slice(8, -8))
    torch.testing.assert_close(back[inner].mean((0, 1)), torch.tensor([-4.0, -3.0]), atol=0.1, rtol=0)
    torch.testing.assert_close(fwd[inner].mean((0, 1)), torch.tensor([4.0, 3.0]), atol=0.1, rtol=0)
    # Warping frame t-1 with the estimated backward flow gives frame t up to interpolation.
    err = (warp(prev, back) - cur)[:, 8:-8, 8:-8].abs()
    assert float(err.mean()) < 2.0 / 255
    # Exactly, with the exact flow.
    exact = warp(prev, _const_flow(64, 84, -4.0, -3.0))
    torch.testing.assert_close(exact[:, 3:, 4:], cur[:, 3:, 4:], atol=1e-5, rtol=0)
    # Consistent flows: reliable everywhere except the strip that came into view.
    mask = reliability_mask(fwd, back)
    assert float(mask[inner].mean()) > 0.97
    assert float(mask[:, :3].mean()) < 0.05  # x - 4 < 0: nothing in frame t-1 to compare with


def test_reliability_mask_on_a_synthetic_occlusion() -> None:
    """A square moves 4 px right over a static background (flows written down exactly)."""
    h, w = 16, 32
    fwd = torch.zeros(h, w, 2)  # t-1 -> t: the square at rows 4-11, columns 10-19 moves by +4
    fwd[4:12, 10:20, 0] = 4.0
    back = torch.zeros(h, w, 2)  # t -> t-1: the square now covers columns 14-23
    back[4:12, 14:24, 0] = -4.0
    mask = reliability_mask(fwd, back)
    want = torch.ones(h, w)
    want[4:12, 10:14] = 0  # disoccluded: background at t, square at t-1 (w~ = +4, w^ = 0)
    want[4:12, 13] = 0  # motion boundaries (forward differences of the backward flow)
    want[4:12, 23] = 0
    want[3, 14:24] = 0
    want[11, 14:24] = 0
    assert torch.equal(mask, want)
    # Inside the moving square the flows agree: reliable.
    assert mask[5:11, 15:23].eq(1).all()


def test_long_term_weights_closest_first() -> None:
    c1 = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    c2 = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    c4 = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    w1, w2, w4 = long_term_weights([c1, c2, c4])
    assert torch.equal(w1, c1)
    assert torch.equal(w2, torch.tensor([[0.0, 1.0, 0.0, 0.0]]))
    assert torch.equal(w4, torch.tensor([[0.0, 0.0, 1.0, 0.0]]))


def test_temporal_loss_hand_computed() -> None:
    x = torch.zeros(1, 3, 2, 2)
    x[0, :, 0, 0] = 10 / 255
    x[0, 0, 1, 1] = 4 / 255
    warped = torch.zeros(1, 3, 2, 2)
    warped[0, 1, 1, 1] = 2 / 255
    c = torch.tensor([[1.0, 1.0], [1.0, 0.5]])
    # Differences in 0-255 units: 10 in all three channels at (0,0), weight 1 -> 300;
    # at (1,1): red 4, green -2, weight 0.5 -> 0.5·(16 + 4) = 10. D = 3·2·2 = 12.
    want = (300.0 + 10.0) / 12.0
    assert float(temporal_loss_value(x, warped, c)) == pytest.approx(want, rel=1e-6)
    loss = TemporalLoss([warped[0]], [c], weight=1000.0)
    assert loss.name == "temporal"
    assert float(loss(x)) == pytest.approx(1000.0 * want, rel=1e-6)
    # At a coarser scale the targets are resampled: a 1x1 image against the average target and weight.
    small = torch.full((1, 3, 1, 1), 1 / 255)
    w_avg = warped.mean((2, 3), keepdim=True)
    c_avg = c.mean()
    manual = float((c_avg * ((small - w_avg) * 255) ** 2).sum() / 3)
    assert float(loss(small)) == pytest.approx(1000.0 * manual, rel=1e-5)


def test_temporal_loss_gradient_pulls_towards_the_warped_frame() -> None:
    warped = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(3))
    c = torch.ones(8, 8)
    c[:, :4] = 0  # unreliable left half: no pull there
    x = torch.zeros(1, 3, 8, 8, requires_grad=True)
    TemporalLoss([warped], [c], weight=1.0)(x).backward()
    assert x.grad is not None
    assert torch.equal(x.grad[..., :4], torch.zeros(1, 3, 8, 4))
    assert (x.grad[..., 4:] < 0).all()  # x < warped: the loss falls as x rises


def test_resize_flow_scales_vectors() -> None:
    f = _const_flow(10, 20, 4.0, 2.0)
    g = resize_flow(f, (5, 10))
    torch.testing.assert_close(g, _const_flow(5, 10, 2.0, 1.0))
