"""Figures that share nothing with the objective: no VGG, no Gram matrix of a layer impasto optimises.

The VGG judge of :mod:`impasto.bench.quality` reads layers next to the objective's, of the same network,
with a statistic close to the objective's own; an optimiser that satisfies the objective satisfies much
of it. The four figures here read other things (issue 19):

* **texture** (:func:`texture_distance`): the luminance alone (Rec. 601 luma of the sRGB values), through
  a fixed bank of log-Gabor filters (:data:`GABOR_WAVELENGTHS` × :data:`GABOR_ORIENTATIONS`, applied in
  the Fourier domain of the image mirror-padded by GABOR_PAD px, so no edge wraps round). Per band, the
  energy E_b = mean |r_b|² of the complex response and the marginal distribution of its real part.
  Raw distance = RMS over bands of ln(E_b(x) / E_b(painting)) + mean over bands of the 1-D Wasserstein-1
  distance between the real parts' distributions (:data:`QUANTILES` quantiles), each divided by the
  painting's RMS response in that band. No colour: a change of hue at equal luma leaves it unchanged.
* **cnn** (:func:`cnn_distance`): Gram statistics of :data:`RANDOM_CNN_SEEDS` random-weight CNNs (not VGG;
  fixed seeds, He-normal weights, no biases, 3×3 convolutions and ReLU, 2×2 average pooling between
  stages of :data:`RANDOM_CNN_WIDTHS` channels, RGB − 0.5 as input). Raw distance = mean over nets and
  stages of ‖G − A‖_F / ‖A‖_F with G = F·Fᵀ / (H·W).
* **colour** (:func:`color_distance_sw`): the full CIELAB distribution, not a Gaussian fit: the sliced
  Wasserstein-2 distance over :data:`SW_ROTATIONS` seeded random orthonormal bases of directions (3 each),
  with :data:`QUANTILES` quantiles per direction, times √3. Because the directions are a union of
  orthonormal bases, two flat images give exactly their CIE76 ΔE.
* **structure** (:func:`structure_agreement`): gradient-orientation agreement with the photo, on the luma
  resized to a long side of :data:`STRUCTURE_SIDE` px (brush texture averaged away), through the smoothed
  structure tensor J = G_σ * (∇I ∇Iᵀ) (σ = :data:`STRUCTURE_SIGMA` px at that size). With
  v = (Jxx − Jyy, 2·Jxy), the doubled-angle orientation vector: agreement(x, photo) =
  Σ ⟨v_x / |v_x|, v_photo⟩ / Σ |v_photo|, i.e. the mean of cos 2(θ_x − θ_photo) weighted by the photo's
  oriented edge strength: 1 for the photo itself, about 0 for an unrelated image, −1 for every edge turned
  90°.

**Normalisation** (:func:`independent_figures`): every figure reads 0 at the painting and 1 at the photo,
so pairs compare. With P the painting resized so its long side is the result's (as the VGG judge does),
C the photo resized to the result's size, and P₁, P₂ the top-left and bottom-right crops of P, each 3/4
of its height and width (:func:`floor_crops`):

* texture, cnn, colour: n(x) = (d(x, P) − floor) / (ceiling − floor), floor = ½ (d(P₁, P) + d(P₂, P))
  (the painting against crops of itself), ceiling = d(C, P) (the photo against the painting). The photo
  scores exactly 1 and the whole painting exactly −floor / (ceiling − floor) (a little below 0); a result
  as close to the painting as a 3/4 crop of it scores 0. Lower = more stylised. (Disjoint halves were
  tried as the floor and rejected: the halves of The Starry Night differ more than the photo differs from
  it, to the CNN figure, which made the range negative.)
* structure: n(x) = (a(x) − a(P̃)) / (1 − a(P̃)), a = agreement with C, P̃ the painting resized to the
  result's exact size: the photo scores exactly 1 (all its structure kept), the painting 0. Higher = more
  of the photo's structure kept.

A figure whose ceiling does not exceed its floor (photo and painting indistinguishable to it) is NaN.

Everything here is a pure function of tensors ([3, H, W] RGB in [0, 1], any float dtype; computed in
float64), deterministic on the CPU, and never prints.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from impasto.bench.colour import srgb_to_lab

GABOR_WAVELENGTHS: tuple[float, ...] = (4.0, 8.0, 16.0, 32.0)
"""Centre wavelengths of the log-Gabor bands, in pixels of the judged image (high band first)."""
GABOR_ORIENTATIONS = 4
GABOR_BANDWIDTH = 0.55
"""σ of the radial log-Gaussian relative to the centre frequency (ln units): about 1.6 octaves wide."""
GABOR_ANGULAR_SIGMA = math.pi / 8
GABOR_PAD = 48
"""Mirror padding before the FFT: three spatial σ of the longest band (about 9 px for λ = 32)."""
QUANTILES = 128
RANDOM_CNN_SEEDS: tuple[int, ...] = (11, 22, 33)
RANDOM_CNN_WIDTHS: tuple[int, ...] = (24, 32, 48, 64)
SW_ROTATIONS = 8
SW_SEED = 19
STRUCTURE_SIDE = 128
STRUCTURE_SIGMA = 1.5
LUMA = (0.299, 0.587, 0.114)
"""Rec. 601 luma weights on the sRGB values: a colour change along (0.587, −0.299, 0) keeps luma exactly."""


# ---------------------------------------------------------------------------------------------------
# Helpers


def luma(rgb: Tensor) -> Tensor:
    """Rec. 601 luma of sRGB values: [3, H, W] -> [H, W] float64."""
    w = torch.tensor(LUMA, dtype=torch.float64).view(3, 1, 1)
    return (rgb.double() * w).sum(0)


def _quantiles(x: Tensor, n: int = QUANTILES) -> Tensor:
    """The n mid-point quantiles ((i + ½)/n) of a 1-D (or [..., N]) tensor, by sorting and linear interpolation."""
    s, _ = torch.sort(x.float(), dim=-1)
    s = s.double()
    m = s.shape[-1]
    pos = (torch.arange(n, dtype=torch.float64) + 0.5) / n * (m - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp_max(m - 1)
    frac = pos - lo.double()
    return s[..., lo] * (1.0 - frac) + s[..., hi] * frac


def floor_crops(img: Tensor) -> tuple[Tensor, Tensor]:
    """The top-left and the bottom-right crops of [C, H, W], each 3/4 of its height and width: "the
    painting, another crop of itself"."""
    _, h, w = img.shape
    ch, cw = max(1, (3 * h) // 4), max(1, (3 * w) // 4)
    return img[:, :ch, :cw], img[:, h - ch :, w - cw :]


def _normalise(d: float, floor: float, ceiling: float) -> float:
    if not ceiling > floor:
        return math.nan
    return (d - floor) / (ceiling - floor)


# ---------------------------------------------------------------------------------------------------
# (a) Luminance texture: a fixed log-Gabor bank


@functools.lru_cache(maxsize=4)
def gabor_bank(h: int, w: int) -> Tensor:
    """Frequency responses [B, H, W] (float64) of the log-Gabor bank on an H × W Fourier grid; one-sided in
    angle, so each band's response is complex (real part even, imaginary part odd). Bands are ordered
    wavelength-major: (λ₀, θ₀), (λ₀, θ₁), ... Cached per size: do not modify the result."""
    fy = torch.fft.fftfreq(h, dtype=torch.float64).view(h, 1)
    fx = torch.fft.fftfreq(w, dtype=torch.float64).view(1, w)
    radius = torch.sqrt(fx**2 + fy**2)
    theta = torch.atan2(fy.expand(h, w), fx.expand(h, w))
    safe_r = torch.where(radius > 0, radius, torch.ones_like(radius))
    bands = []
    for lam in GABOR_WAVELENGTHS:
        f0 = 1.0 / lam
        radial = torch.exp(-(torch.log(safe_r / f0) ** 2) / (2.0 * GABOR_BANDWIDTH**2))
        radial = torch.where(radius > 0, radial, torch.zeros_like(radial))
        for k in range(GABOR_ORIENTATIONS):
            t0 = math.pi * k / GABOR_ORIENTATIONS
            dt = torch.remainder(theta - t0 + math.pi, 2.0 * math.pi) - math.pi
            angular = torch.exp(-(dt**2) / (2.0 * GABOR_ANGULAR_SIGMA**2))
            bands.append(radial * angular)
    return torch.stack(bands)


def gabor_responses(rgb: Tensor) -> Tensor:
    """Complex responses [B, H, W] (complex64) of the luma (its mean removed) to :func:`gabor_bank`. The
    image is mirror-padded by :data:`GABOR_PAD` px on every side (less for a smaller image) first, so
    what the Fourier transform wraps round lies outside the filters' reach of the image."""
    y = luma(rgb)
    y = (y - y.mean()).float()
    h, w = y.shape
    ph, pw = min(GABOR_PAD, h - 1), min(GABOR_PAD, w - 1)
    big = F.pad(y.view(1, 1, h, w), (pw, pw, ph, ph), mode="reflect")[0, 0] if ph > 0 and pw > 0 else y
    ph, pw = (ph, pw) if big is not y else (0, 0)
    spec = torch.fft.fft2(big)
    bank = gabor_bank(*big.shape).float()
    out: Tensor = torch.fft.ifft2(spec.unsqueeze(0) * bank)[:, ph : ph + h, pw : pw + w]
    return out


@dataclass(frozen=True)
class TextureStats:
    energy: Tensor
    """[B] mean |r_b|² per band."""
    marginals: Tensor
    """[B, QUANTILES] quantiles of the real part of each band's response."""


def texture_stats(rgb: Tensor) -> TextureStats:
    r = gabor_responses(rgb)
    b = r.shape[0]
    energy = (r.real.double() ** 2 + r.imag.double() ** 2).reshape(b, -1).mean(1)
    return TextureStats(energy=energy, marginals=_quantiles(r.real.reshape(b, -1)))


def band_energies(rgb: Tensor) -> Tensor:
    """[len(GABOR_WAVELENGTHS)] luma energy per wavelength (summed over orientations), high band first."""
    e = texture_stats(rgb).energy
    return e.view(len(GABOR_WAVELENGTHS), GABOR_ORIENTATIONS).sum(1)


def texture_stats_distance(x: TextureStats, ref: TextureStats) -> float:
    """RMS_b ln(E_b(x)/E_b(ref)) + mean_b W1(marginal_b(x), marginal_b(ref)) / sqrt(E_b(ref)/2)."""
    tiny = 1e-12
    log_ratio = torch.log((x.energy + tiny) / (ref.energy + tiny))
    energy_term = float(torch.sqrt((log_ratio**2).mean()))
    # The real part carries half the complex energy on average: its RMS is sqrt(E/2).
    scale = torch.sqrt(ref.energy / 2.0 + tiny)
    w1 = (x.marginals - ref.marginals).abs().mean(1) / scale
    return energy_term + float(w1.mean())


def texture_distance(x: Tensor, ref: Tensor) -> float:
    """Raw luminance-texture distance between two images (0 for identical images)."""
    return texture_stats_distance(texture_stats(x), texture_stats(ref))


# ---------------------------------------------------------------------------------------------------
# (b) Gram statistics of random-weight CNNs


def random_cnn(seed: int, widths: Sequence[int] = RANDOM_CNN_WIDTHS) -> list[Tensor]:
    """The 3×3 convolution weights of one random CNN (He-normal, float32, from ``seed``; no biases)."""
    g = torch.Generator().manual_seed(seed)
    convs = []
    prev = 3
    for c in widths:
        std = math.sqrt(2.0 / (prev * 9))
        convs.append(torch.randn(c, prev, 3, 3, generator=g, dtype=torch.float32) * std)
        prev = c
    return convs


def random_cnn_grams(rgb: Tensor, convs: Sequence[Tensor]) -> list[Tensor]:
    """Per stage, G = F·Fᵀ / (H·W) (float64) of conv -> ReLU, with 2×2 average pooling before every stage
    but the first; input RGB − 0.5, reflect-padded."""
    x = (rgb.float() - 0.5).unsqueeze(0)
    grams = []
    with torch.no_grad():
        for i, w in enumerate(convs):
            if i > 0:
                x = F.avg_pool2d(x, 2)
            x = F.relu(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), w))
            c = x.shape[1]
            flat = x[0].reshape(c, -1).double()
            grams.append(flat @ flat.T / flat.shape[1])
    return grams


def _rel(a: Tensor, ref: Tensor) -> float:
    den = float(torch.linalg.vector_norm(ref))
    num = float(torch.linalg.vector_norm(a - ref))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den


def cnn_grams(rgb: Tensor) -> list[list[Tensor]]:
    return [random_cnn_grams(rgb, random_cnn(s)) for s in RANDOM_CNN_SEEDS]


def cnn_grams_distance(x: list[list[Tensor]], ref: list[list[Tensor]]) -> float:
    """Mean over nets and stages of ‖G − A‖_F / ‖A‖_F."""
    vals = [_rel(a, b) for gx, gr in zip(x, ref, strict=True) for a, b in zip(gx, gr, strict=True)]
    return sum(vals) / len(vals)


def cnn_distance(x: Tensor, ref: Tensor) -> float:
    """Raw random-CNN Gram distance between two images (0 for identical images)."""
    return cnn_grams_distance(cnn_grams(x), cnn_grams(ref))


# ---------------------------------------------------------------------------------------------------
# (c) The full CIELAB distribution: sliced Wasserstein


def sw_directions() -> Tensor:
    """[3·SW_ROTATIONS, 3] unit directions: the rows of SW_ROTATIONS seeded random orthonormal bases."""
    g = torch.Generator().manual_seed(SW_SEED)
    bases = []
    for _ in range(SW_ROTATIONS):
        q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
        bases.append(q.T)
    return torch.cat(bases)


def lab_quantiles(rgb: Tensor) -> Tensor:
    """[directions, QUANTILES] quantiles of the image's CIELAB pixels projected on :func:`sw_directions`."""
    lab = srgb_to_lab(rgb).reshape(3, -1)
    return _quantiles(sw_directions() @ lab)


def color_distance_sw(x: Tensor, ref: Tensor) -> float:
    """√3 · sliced Wasserstein-2 distance of the CIELAB pixel distributions, in ΔE units (CIE76 for flat
    images, exactly)."""
    return _sw(lab_quantiles(x), lab_quantiles(ref))


def _sw(qx: Tensor, qr: Tensor) -> float:
    return math.sqrt(3.0 * float(((qx - qr) ** 2).mean()))


# ---------------------------------------------------------------------------------------------------
# (d) Structure kept: gradient-orientation agreement with the photo


def _gauss_blur(img: Tensor, sigma: float) -> Tensor:
    r = max(1, int(math.ceil(3.0 * sigma)))
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-(t**2) / (2.0 * sigma**2))
    k = k / k.sum()
    x = img.view(1, 1, *img.shape)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return x[0, 0]


def orientation_field(rgb: Tensor) -> Tensor:
    """[2, h, w] doubled-angle vectors (Jxx − Jyy, 2·Jxy) of the smoothed structure tensor of the luma at a
    long side of STRUCTURE_SIDE px."""
    from impasto.io import resize_long_side

    small = resize_long_side(rgb.float().clamp(0, 1), STRUCTURE_SIDE) if max(rgb.shape[1:]) != STRUCTURE_SIDE else rgb
    y = luma(small)
    p = F.pad(y.view(1, 1, *y.shape), (1, 1, 1, 1), mode="replicate")[0, 0]
    gx = (p[1:-1, 2:] - p[1:-1, :-2]) / 2.0
    gy = (p[2:, 1:-1] - p[:-2, 1:-1]) / 2.0
    jxx = _gauss_blur(gx * gx, STRUCTURE_SIGMA)
    jyy = _gauss_blur(gy * gy, STRUCTURE_SIGMA)
    jxy = _gauss_blur(gx * gy, STRUCTURE_SIGMA)
    return torch.stack([jxx - jyy, 2.0 * jxy])


def orientation_agreement(vx: Tensor, vp: Tensor) -> float:
    """Σ ⟨v_x/|v_x|, v_p⟩ / Σ |v_p|: the photo-edge-weighted mean of cos 2(θ_x − θ_p)."""
    nx = torch.linalg.vector_norm(vx, dim=0)
    unit = vx / nx.clamp_min(1e-12)
    den = float(torch.linalg.vector_norm(vp, dim=0).sum())
    if den == 0.0:
        return math.nan
    return float((unit * vp).sum()) / den


def structure_agreement(x: Tensor, photo: Tensor) -> float:
    """Raw agreement of ``x``'s local orientations with ``photo``'s (same size expected; 1 if identical)."""
    return orientation_agreement(orientation_field(x), orientation_field(photo))


# ---------------------------------------------------------------------------------------------------
# The four figures, normalised


@dataclass(frozen=True)
class IndependentScores:
    """Normalised figures (0 = the painting, 1 = the photo; see the module docstring) and their raw parts."""

    texture: float
    cnn: float
    color: float
    structure: float
    raw: dict[str, float]
    """Raw distance/agreement of the result, and each figure's floor and ceiling (``texture_floor`` ...)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class IndependentJudge:
    """Targets (the painting's statistics, floors and ceilings) are computed once per result size."""

    def __init__(self, content: Tensor, style: Tensor) -> None:
        """``content``, ``style``: [3, H, W] RGB in [0, 1] at any size."""
        self.content = content.float().clamp(0, 1)
        self.style = style.float().clamp(0, 1)
        self._cache: dict[tuple[int, int], dict[str, Any]] = {}

    def _targets(self, hw: tuple[int, int]) -> dict[str, Any]:
        if hw in self._cache:
            return self._cache[hw]
        from impasto.io import resize_long_side, resize_to

        photo = resize_to(self.content, hw)
        paint = resize_long_side(self.style, max(hw))
        p1, p2 = floor_crops(paint)
        t_paint = texture_stats(paint)
        g_paint = cnn_grams(paint)
        q_paint = lab_quantiles(paint)
        v_photo = orientation_field(photo)
        s_floor = orientation_agreement(orientation_field(resize_to(self.style, hw)), v_photo)

        def mean2(f: Any, ref: Any, a: Tensor, b: Tensor, stat: Any) -> float:
            return 0.5 * (float(f(stat(a), ref)) + float(f(stat(b), ref)))

        t = {
            "t_paint": t_paint, "g_paint": g_paint, "q_paint": q_paint, "v_photo": v_photo,
            "texture_floor": mean2(texture_stats_distance, t_paint, p1, p2, texture_stats),
            "texture_ceiling": texture_stats_distance(texture_stats(photo), t_paint),
            "cnn_floor": mean2(cnn_grams_distance, g_paint, p1, p2, cnn_grams),
            "cnn_ceiling": cnn_grams_distance(cnn_grams(photo), g_paint),
            "color_floor": mean2(_sw, q_paint, p1, p2, lab_quantiles),
            "color_ceiling": _sw(lab_quantiles(photo), q_paint),
            "structure_floor": s_floor,
            "structure_ceiling": 1.0,
        }
        self._cache[hw] = t
        return t

    def __call__(self, result: Tensor) -> IndependentScores:
        x = result.float().clamp(0, 1)
        hw = (int(x.shape[1]), int(x.shape[2]))
        t = self._targets(hw)
        raw = {
            "texture": texture_stats_distance(texture_stats(x), t["t_paint"]),
            "cnn": cnn_grams_distance(cnn_grams(x), t["g_paint"]),
            "color": _sw(lab_quantiles(x), t["q_paint"]),
            "structure": orientation_agreement(orientation_field(x), t["v_photo"]),
        }
        for k in ("texture", "cnn", "color", "structure"):
            raw[f"{k}_floor"] = float(t[f"{k}_floor"])
            raw[f"{k}_ceiling"] = float(t[f"{k}_ceiling"])
        return IndependentScores(
            texture=_normalise(raw["texture"], raw["texture_floor"], raw["texture_ceiling"]),
            cnn=_normalise(raw["cnn"], raw["cnn_floor"], raw["cnn_ceiling"]),
            color=_normalise(raw["color"], raw["color_floor"], raw["color_ceiling"]),
            structure=_normalise(raw["structure"], raw["structure_floor"], 1.0),
            raw=raw,
        )


def independent_figures(content: Tensor, style: Tensor, result: Tensor) -> IndependentScores:
    """The four normalised figures of one result (see the module docstring for every definition)."""
    return IndependentJudge(content, style)(result)


__all__ = [
    "IndependentJudge", "IndependentScores", "TextureStats", "band_energies", "cnn_distance", "color_distance_sw",
    "floor_crops", "gabor_bank", "gabor_responses", "independent_figures", "luma", "orientation_agreement",
    "orientation_field", "random_cnn", "structure_agreement", "texture_distance", "texture_stats",
]
