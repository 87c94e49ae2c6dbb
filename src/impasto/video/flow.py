"""Optical flow, warping and the reliability mask of Ruder, Dosovitskiy and Brox (2016).

Conventions (used everywhere in :mod:`impasto.video`):

* A flow field is a float32 tensor ``[H, W, 2]`` of (u, v) pixel displacements, u along x (columns)
  and v along y (rows). ``flow_a_to_b[y, x]`` says where the point at (x, y) in frame a went in frame b.
* To bring frame t-1 into frame t we *sample* frame t-1 at ``p + backward(p)`` for every pixel p of
  frame t, with ``backward = flow_t_to_(t-1)``: every output pixel gets a value (no holes), and
  the pixels whose flow is unreliable are masked out by :func:`reliability_mask`.

OpenCV (``opencv-python-headless``) computes the flow: DIS (Kroeger et al. 2016, the "medium" preset)
by default, Farneback on request. Both run on the CPU in milliseconds per frame at 512 px, next to
seconds for the optimisation, so a GPU implementation would not pay for itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor

from impasto.errors import ImpastoError

FLOW_METHODS = ("dis", "farneback")


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise ImpastoError(
            "video needs OpenCV for optical flow: pip install 'impasto[video]' (opencv-python-headless)"
        ) from None
    return cv2


def _gray_u8(img: Tensor) -> npt.NDArray[np.uint8]:
    """[3, H, W] RGB in [0, 1] -> H x W uint8 luma (BT.601), the input OpenCV's flow methods take."""
    if img.ndim != 3 or img.shape[0] != 3:
        raise ValueError(f"expected a [3, H, W] image, got {tuple(img.shape)}")
    y = 0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]
    return (y.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).numpy()


def compute_flow(a: Tensor, b: Tensor, method: str = "dis") -> Tensor:
    """Dense optical flow from image ``a`` to image ``b`` (both [3, H, W] in [0, 1]) -> [H, W, 2]."""
    if method not in FLOW_METHODS:
        raise ImpastoError(f"unknown flow method {method!r} (use {' or '.join(FLOW_METHODS)})")
    if a.shape != b.shape:
        raise ValueError(f"frames differ in size: {tuple(a.shape)} and {tuple(b.shape)}")
    cv2 = _cv2()
    ga, gb = _gray_u8(a), _gray_u8(b)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        flow = dis.calc(ga, gb, None)
    else:
        flow = cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 4, 15, 5, 5, 1.2, 0)
    return torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32))


def sample_grid(flow: Tensor) -> Tensor:
    """The ``grid_sample`` grid ([1, H, W, 2], align_corners=True) that samples at ``p + flow(p)``."""
    h, w = int(flow.shape[0]), int(flow.shape[1])
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    px = xs + flow[..., 0]
    py = ys + flow[..., 1]
    # align_corners=True maps -1 and 1 to the centres of the first and last pixels: pixel i is at
    # -1 + 2i/(n-1). A one-pixel-wide axis has only one valid position (0).
    gx = 2.0 * px / max(w - 1, 1) - 1.0
    gy = 2.0 * py / max(h - 1, 1) - 1.0
    return torch.stack([gx, gy], dim=-1).unsqueeze(0)


def inside_mask(flow: Tensor) -> Tensor:
    """[H, W] float: 1 where ``p + flow(p)`` lands inside the frame, 0 where it leaves it."""
    h, w = int(flow.shape[0]), int(flow.shape[1])
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    px = xs + flow[..., 0]
    py = ys + flow[..., 1]
    ok = (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
    return ok.float()


def warp(image: Tensor, flow: Tensor) -> Tensor:
    """Sample ``image`` ([C, H, W] or [N, C, H, W]) at ``p + flow(p)``, bilinearly.

    Points that fall outside take the nearest border pixel (``inside_mask`` tells which they are).
    With the backward flow of frame t this carries frame t-1 into frame t.
    """
    batch = image if image.ndim == 4 else image.unsqueeze(0)
    if tuple(batch.shape[-2:]) != tuple(flow.shape[:2]):
        raise ValueError(f"image {tuple(batch.shape[-2:])} and flow {tuple(flow.shape[:2])} differ in size")
    grid = sample_grid(flow.to(batch.dtype)).expand(batch.shape[0], -1, -1, -1)
    out = F.grid_sample(batch, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out if image.ndim == 4 else out[0]


def reliability_mask(forward: Tensor, backward: Tensor) -> Tensor:
    """Ruder et al.'s consistency check: [H, W] float, 1 where frame t's backward flow is reliable.

    ``forward`` is the flow t-1 -> t and ``backward`` the flow t -> t-1, both [H, W, 2]. For each
    pixel p of frame t, with ŵ = backward(p) and w̃ = forward(p + ŵ) (the forward flow brought back
    to frame t), the paper marks p unreliable when

    * it is disoccluded (the two flows do not cancel): |w̃ + ŵ|² > 0.01·(|w̃|² + |ŵ|²) + 0.5, or
    * it lies on a motion boundary: |∇û|² + |∇v̂|² > 0.01·|ŵ|² + 0.002, or
    * ŵ leaves the frame (nothing in frame t-1 to compare with).

    Gradients are forward differences (0 in the last row/column).
    """
    if forward.shape != backward.shape or forward.ndim != 3 or forward.shape[2] != 2:
        raise ValueError(f"flows must be [H, W, 2] of one size (got {tuple(forward.shape)}, {tuple(backward.shape)})")
    fwd_at = warp(forward.permute(2, 0, 1), backward).permute(1, 2, 0)  # w̃ = forward(p + ŵ(p))
    s = fwd_at + backward
    occluded = s.pow(2).sum(-1) > 0.01 * (fwd_at.pow(2).sum(-1) + backward.pow(2).sum(-1)) + 0.5
    grad2 = torch.zeros(backward.shape[:2])
    for c in range(2):
        comp = backward[..., c]
        dx = torch.zeros_like(comp)
        dy = torch.zeros_like(comp)
        dx[:, :-1] = comp[:, 1:] - comp[:, :-1]
        dy[:-1, :] = comp[1:, :] - comp[:-1, :]
        grad2 = grad2 + dx.pow(2) + dy.pow(2)
    boundary = grad2 > 0.01 * backward.pow(2).sum(-1) + 0.002
    reliable = ~(occluded | boundary)
    return reliable.float() * inside_mask(backward)


def long_term_weights(masks: list[Tensor]) -> list[Tensor]:
    """Ruder et al.'s long-term weights ("closest first"), for masks ordered nearest frame first.

    c_j ← max(c_j − Σ_{k<j} c_k, 0): a pixel is constrained by the closest previous frame where it is
    reliable, and by a farther one only where all closer ones failed (e.g. after a passing occluder).
    """
    out: list[Tensor] = []
    for j, m in enumerate(masks):
        acc = m.clone()
        for k in range(j):
            acc = acc - masks[k]
        out.append(acc.clamp_min(0.0))
    return out


def resize_flow(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """A flow field resampled to ``size`` = (H, W), its vectors scaled with the axes."""
    h, w = int(flow.shape[0]), int(flow.shape[1])
    th, tw = size
    if (h, w) == (th, tw):
        return flow
    f = F.interpolate(flow.permute(2, 0, 1).unsqueeze(0), size=(th, tw), mode="bilinear", align_corners=False)[0]
    f[0] *= tw / w
    f[1] *= th / h
    return f.permute(1, 2, 0).contiguous()


def read_flo(path: str) -> Tensor:
    """A Middlebury ``.flo`` file ("PIEH", width, height, float32 u,v per pixel) -> [H, W, 2]."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
            if magic != b"PIEH":
                raise ImpastoError(f"{path} is not a Middlebury .flo file")
            w, h = (int(x) for x in np.frombuffer(fh.read(8), dtype="<i4"))
            data = np.frombuffer(fh.read(8 * w * h), dtype="<f4")
    except OSError as e:
        raise ImpastoError(f"cannot read {path}: {e.strerror}") from None
    if data.size != 2 * w * h:
        raise ImpastoError(f"{path} is truncated")
    return torch.from_numpy(data.reshape(h, w, 2).copy())
