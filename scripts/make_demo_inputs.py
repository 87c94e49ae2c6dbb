"""Make the bundled demo inputs in ``src/impasto/data/``.

* ``content.jpg``: matplotlib's public-domain sample photo of Grace Hopper, long side 512.
* ``style.png``: a 512x512 "painting" generated here from a fixed seed (numpy only): thick, curved,
  outlined brush strokes advected along a swirling flow field, lit as raised paint.  Neural style
  transfer learns texture statistics, so the style image needs strong, characterful strokes at several
  scales rather than a picture of anything.

Run from the repository root (needs numpy, Pillow and matplotlib)::

    .venv/bin/python tools/make_demo_inputs.py

The output is deterministic for a given numpy/Pillow version.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

Array = NDArray[np.float64]

SIZE = 512
SEED = 1889  # the year of The Starry Night, the look we are after
DATA_DIR = Path(__file__).resolve().parent.parent / "src" / "impasto" / "data"


# ------------------------------------------------------------------------------------------------
# Content photo
# ------------------------------------------------------------------------------------------------


def make_content(out: Path, long_side: int = 512) -> None:
    """Copy matplotlib's Grace Hopper sample photo, resized so its long side is *long_side*."""
    import matplotlib  # only needed here; the package itself does not depend on matplotlib

    src = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(src) as raw:
        im = raw.convert("RGB")
        w, h = im.size
        scale = long_side / max(w, h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        # LANCZOS: a high-quality downscale; the photo is the reference everyone will compare with.
        im.resize(size, Image.Resampling.LANCZOS).save(out, quality=92, optimize=True)


# ------------------------------------------------------------------------------------------------
# Style painting
# ------------------------------------------------------------------------------------------------


def smooth_noise(rng: np.random.Generator, n: int, sigma: float) -> Array:
    """Periodic smooth noise with unit standard deviation: white noise low-passed in Fourier space."""
    white = rng.standard_normal((n, n))
    f = np.fft.fftfreq(n)
    k2 = f[:, None] ** 2 + f[None, :] ** 2
    out: Array = np.fft.ifft2(np.fft.fft2(white) * np.exp(-2.0 * (np.pi * sigma) ** 2 * k2)).real
    out = (out - out.mean()) / (out.std() + 1e-12)
    return out


def bilinear(img: Array, x: Array, y: Array) -> Array:
    """Sample 2-D *img* (or H x W x C) at float pixel coordinates, clamped to the border."""
    h, w = img.shape[:2]
    x = np.clip(x, 0, w - 1.001)
    y = np.clip(y, 0, h - 1.001)
    x0 = x.astype(int)
    y0 = y.astype(int)
    fx = x - x0
    fy = y - y0
    if img.ndim == 3:
        fx = fx[..., None]
        fy = fy[..., None]
    top = img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx
    bot = img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx
    result: Array = top * (1 - fy) + bot * fy
    return result


def hex_rgb(code: str) -> Array:
    return np.array([int(code[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64) / 255.0


class Scene:
    """The composition: a swirling night sky, a glowing moon and stars, hills and a dark cypress."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.n = n
        yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
        self.xx, self.yy = xx, yy
        # Big vortices (x, y, radius, strength): the sky's rolling swirls.
        self.vortices = [
            (250.0, 175.0, 95.0, 1.0),
            (120.0, 120.0, 60.0, -0.9),
            (390.0, 95.0, 55.0, 0.9),
            (345.0, 250.0, 50.0, -0.8),
        ]
        # Glowing bodies (x, y, core radius, halo radius): stroked in concentric rings.
        self.stars = [
            (430.0, 70.0, 22.0, 58.0),  # moon
            (60.0, 60.0, 8.0, 28.0),
            (180.0, 40.0, 7.0, 24.0),
            (300.0, 55.0, 6.0, 22.0),
            (470.0, 210.0, 7.0, 26.0),
            (150.0, 215.0, 6.0, 22.0),
        ]
        noise_a = smooth_noise(rng, n, 40.0)
        noise_b = smooth_noise(rng, n, 40.0)
        self.hue_noise = smooth_noise(rng, n, 14.0)
        self.fine_noise = smooth_noise(rng, n, 5.0)

        # Horizon: a wavy line of hills.
        self.horizon = 330.0 + 22.0 * np.sin(xx / 70.0) + 14.0 * np.sin(xx / 23.0 + 1.0) + 10.0 * noise_a
        self.hills = yy > self.horizon
        # Cypress: a tall flame shape rising from the bottom-left.
        t = np.clip((n - yy) / 430.0, 0.0, 1.0)  # 0 at the bottom, 1 at its tip
        centre = 95.0 + 18.0 * np.sin(yy / 40.0) + 6.0 * noise_b
        half_width = 48.0 * (1.0 - t) ** 0.8 * (1.0 + 0.25 * np.sin(yy / 15.0)) + 2.0
        self.cypress = (np.abs(xx - centre) < half_width) & (t < 1.0)

        # Flow: a gentle drift to the right, bent by noise, plus the vortices and ring flow round stars.
        vx = np.ones((n, n)) + 0.5 * noise_a
        vy = 0.25 * np.sin(xx / 60.0 + yy / 90.0) + 0.5 * noise_b
        for cx, cy, r, s in self.vortices:
            dx, dy = xx - cx, yy - cy
            d = np.hypot(dx, dy) + 1e-6
            g = 3.0 * s * np.exp(-((d / r) ** 2)) * np.minimum(1.0, d / 12.0)
            vx += -dy / d * g
            vy += dx / d * g
        for cx, cy, _core, halo in self.stars:
            dx, dy = xx - cx, yy - cy
            d = np.hypot(dx, dy) + 1e-6
            g = 6.0 * np.exp(-((d / (1.1 * halo)) ** 4))
            vx += -dy / d * g
            vy += dx / d * g
        # Hills: follow the horizon; cypress: strokes climb like flames.
        hill_w = np.clip((yy - self.horizon + 8.0) / 16.0, 0.0, 1.0)
        slope = np.gradient(self.horizon, axis=1)
        vx = vx * (1 - hill_w) + hill_w * (1.0 + 0.3 * noise_b)
        vy = vy * (1 - hill_w) + hill_w * (slope + 0.3 * np.sin(xx / 30.0) * (yy - self.horizon) / 60.0)
        cyp = self.cypress.astype(np.float64)
        vx = vx * (1 - cyp) + cyp * (0.35 * np.sin(yy / 18.0 + xx / 25.0))
        vy = vy * (1 - cyp) + cyp * -1.0
        norm = np.hypot(vx, vy) + 1e-9
        self.vx, self.vy = vx / norm, vy / norm

    def glow(self, x: Array, y: Array) -> Array:
        """0..1 strength of the star/moon halo at points (x, y)."""
        g = np.zeros_like(x)
        for cx, cy, _core, halo in self.stars:
            d = np.hypot(x - cx, y - cy)
            g = np.maximum(g, np.clip(1.3 - d / halo, 0.0, 1.0))
        return g

    def colour(self, x: Array, y: Array, rng: np.random.Generator) -> tuple[Array, Array]:
        """Base paint colour and stroke width for strokes starting at (x, y)."""
        sky = [hex_rgb(c) for c in ("#0e1f5b", "#1c3a8c", "#2f5fb3", "#4f86c6", "#8db4d9", "#c9dbe0")]
        gold = [hex_rgb(c) for c in ("#d98e1f", "#e8b234", "#f2d35a", "#f7ea9c")]
        hill = [hex_rgb(c) for c in ("#0b1638", "#1d2e5c", "#2c4a6e", "#3c5e4a")]
        tree = [hex_rgb(c) for c in ("#0a120c", "#17261a", "#2b3d22", "#4a5a2a")]
        h = bilinear(self.hue_noise, x, y)
        f = bilinear(self.fine_noise, x, y)
        k = len(x)
        out = np.zeros((k, 3))
        width = np.zeros(k)

        # Sky: brighter inside the vortices, deep blue elsewhere; stroke shade varies stroke to stroke.
        swirl = np.zeros(k)
        for cx, cy, r, _s in self.vortices:
            d = np.hypot(x - cx, y - cy)
            swirl = np.maximum(swirl, np.exp(-(((d - 0.6 * r) / (0.35 * r)) ** 2)))
        level = np.clip(1.4 + 0.9 * h + 2.2 * swirl + 0.8 * f + rng.normal(0, 0.7, k), 0, len(sky) - 1.001)
        i = level.astype(int)
        frac = (level - i)[:, None]
        sky_arr = np.array(sky)
        out[:] = sky_arr[i] * (1 - frac) + sky_arr[i + 1] * frac
        width[:] = rng.uniform(2.6, 4.4, k)

        # Ochre/yellow bands running through the big swirl.
        band = (swirl > 0.75) & (rng.random(k) < 0.45)
        gi = rng.integers(0, 3, k)
        out[band] = np.array(gold)[gi[band]]

        # Star and moon halos: gold rings fading into pale blue.
        g = self.glow(x, y)
        gold_arr = np.array(gold)
        gl = np.clip(g * 3.2 + rng.normal(0, 0.5, k), 0, 3.0).astype(int)
        in_glow = (g > 0.05) & (rng.random(k) < np.clip(g * 1.6, 0, 1))
        out[in_glow] = gold_arr[gl[in_glow]]
        width[in_glow] = rng.uniform(2.2, 3.4, int(in_glow.sum()))

        below = bilinear(self.hills.astype(np.float64), x, y) > 0.5
        hi = np.clip(1.3 + 0.8 * h + 0.7 * f + rng.normal(0, 0.6, k), 0, len(hill) - 1).astype(int)
        out[below] = np.array(hill)[hi[below]]
        width[below] = rng.uniform(3.0, 4.8, int(below.sum()))

        in_tree = bilinear(self.cypress.astype(np.float64), x, y) > 0.5
        ti = np.clip(1.2 + 0.9 * f + rng.normal(0, 0.8, k), 0, len(tree) - 1).astype(int)
        out[in_tree] = np.array(tree)[ti[in_tree]]
        width[in_tree] = rng.uniform(3.0, 5.0, int(in_tree.sum()))

        # Colour jitter: no two strokes mixed quite the same.
        out = np.clip(out * rng.normal(1.0, 0.06, (k, 1)) + rng.normal(0, 0.02, (k, 3)), 0, 1)
        return out, width


def trace(scene: Scene, x0: Array, y0: Array, steps: int, step: float) -> tuple[Array, Array]:
    """Streamlines from all start points at once (midpoint integration); returns [K, steps+1] arrays."""
    xs = [x0]
    ys = [y0]
    x, y = x0.copy(), y0.copy()
    for _ in range(steps):
        ux, uy = bilinear(scene.vx, x, y), bilinear(scene.vy, x, y)
        mx, my = x + 0.5 * step * ux, y + 0.5 * step * uy
        ux, uy = bilinear(scene.vx, mx, my), bilinear(scene.vy, mx, my)
        x, y = x + step * ux, y + step * uy
        xs.append(x)
        ys.append(y)
    return np.stack(xs, 1), np.stack(ys, 1)


def paint_stroke(
    canvas: Array,
    height: Array,
    px: Array,
    py: Array,
    colour: Array,
    width: float,
    rng: np.random.Generator,
) -> None:
    """Lay one stroke (a polyline) on *canvas*, with bristle grooves, dark edges and a paint ridge."""
    n = canvas.shape[0]
    pad = width + 2.0
    x_lo, x_hi = int(max(0, np.floor(px.min() - pad))), int(min(n, np.ceil(px.max() + pad) + 1))
    y_lo, y_hi = int(max(0, np.floor(py.min() - pad))), int(min(n, np.ceil(py.max() + pad) + 1))
    if x_lo >= x_hi or y_lo >= y_hi:
        return
    gy, gx = np.mgrid[y_lo:y_hi, x_lo:x_hi].astype(np.float64)
    # Nearest point of the densely sampled polyline gives, for every pixel, the position along the
    # stroke (t) and the signed distance across it (v): the stroke's own coordinate system.
    dx = gx[..., None] - px
    dy = gy[..., None] - py
    d2 = dx * dx + dy * dy
    j = d2.argmin(axis=-1)
    m = len(px)
    tx = np.gradient(px)
    ty = np.gradient(py)
    tn = np.hypot(tx, ty) + 1e-9
    tx, ty = tx / tn, ty / tn
    ddx = np.take_along_axis(dx, j[..., None], -1)[..., 0]
    ddy = np.take_along_axis(dy, j[..., None], -1)[..., 0]
    v = ddx * ty[j] - ddy * tx[j]  # signed offset across the stroke
    u = ddx * tx[j] + ddy * ty[j]  # overshoot past the ends (rounded caps)
    t = j / max(1, m - 1)
    # Loaded brush: full width early, tapering to a dry tip; a little round at the start.
    half = width * (0.55 + 0.45 * np.sin(np.pi * np.clip(t * 0.85 + 0.12, 0, 1)) ** 0.6)
    at_end = (j == 0) | (j == m - 1)
    r = np.where(at_end, np.hypot(v, np.maximum(np.abs(u) - 0.0, 0.0)), np.abs(v))
    cover = np.clip(half - r + 0.5, 0.0, 1.0)  # 1-pixel antialiased edge
    if not cover.any():
        return
    s = np.clip(v / half, -1.0, 1.0)
    # Bristles: a per-stroke random profile across the width, smeared along the stroke.
    k = 9
    prof = rng.normal(0.0, 1.0, k)
    prof = np.convolve(prof, [0.25, 0.5, 0.25], mode="same")
    bristle = np.interp((s + 1) * 0.5 * (k - 1), np.arange(k), prof)
    bristle = bristle * (0.7 + 0.3 * np.cos(t * 6.0 + rng.uniform(0, 6.28)))
    shade = 1.0 + 0.15 * bristle
    # Dark rim: paint piles up and picks up the layer below at the stroke's edges.
    rim = np.clip((np.abs(s) - 0.7) / 0.3, 0.0, 1.0) ** 1.5
    rim_strength = rng.uniform(0.25, 0.55)
    col = colour[None, None, :] * (shade * (1.0 - rim_strength * rim))[..., None]
    # Paint thickness: a rounded ridge with grooves, thicker where the brush was loaded.
    ridge = np.sqrt(np.clip(1.0 - s * s, 0.0, 1.0)) * (1.0 - 0.5 * t) + 0.12 * bristle
    a = cover[..., None]
    region = canvas[y_lo:y_hi, x_lo:x_hi]
    region[:] = region * (1 - a) + np.clip(col, 0, 1) * a
    hreg = height[y_lo:y_hi, x_lo:x_hi]
    hreg[:] = hreg * (1 - cover) + (0.3 * hreg + width * 0.5 * ridge) * cover


def make_style(out: Path, n: int = SIZE, seed: int = SEED) -> None:
    """Generate the style painting and save it as an 8-bit PNG."""
    rng = np.random.default_rng(seed)
    scene = Scene(rng, n)

    # Underpainting: the scene's colours, broadly blurred, so gaps between strokes look like paint.
    canvas = np.zeros((n, n, 3))
    height = np.zeros((n, n))
    xs = scene.xx.ravel()
    ys = scene.yy.ravel()
    base, _ = scene.colour(xs, ys, np.random.default_rng(seed + 1))
    base = base.reshape(n, n, 3)
    for c in range(3):
        f = np.fft.fftfreq(n)
        k2 = f[:, None] ** 2 + f[None, :] ** 2
        canvas[..., c] = np.fft.ifft2(np.fft.fft2(base[..., c]) * np.exp(-2 * (np.pi * 4.0) ** 2 * k2)).real
    canvas = np.clip(canvas * 0.8, 0, 1)

    # Strokes in passes: long broad ones first, then shorter, denser, finer ones on top.
    for count, steps, step, wscale in ((2600, 16, 1.8, 1.25), (5200, 11, 1.6, 1.0), (4200, 9, 1.5, 0.8)):
        x0 = rng.uniform(-10, n + 10, count)
        y0 = rng.uniform(-10, n + 10, count)
        px, py = trace(scene, x0, y0, steps, step)
        cols, widths = scene.colour(x0, y0, rng)
        # Densify the polylines so nearest-point lookups are smooth (3 samples per step).
        dense = np.linspace(0, steps, steps * 3 + 1)
        idx = np.arange(steps + 1)
        for i in range(count):
            dpx = np.interp(dense, idx, px[i])
            dpy = np.interp(dense, idx, py[i])
            paint_stroke(canvas, height, dpx, dpy, cols[i], widths[i] * wscale, rng)

    # Dark outlines along the horizon and round the cypress, drawn with the flow like everything else.
    hills = scene.hills
    tree = scene.cypress
    edge = np.zeros((n, n), dtype=bool)
    for mask in (hills, tree):
        edge[:-1] |= mask[:-1] != mask[1:]
        edge[:, :-1] |= mask[:, :-1] != mask[:, 1:]
    ey, ex = np.nonzero(edge)
    pick = rng.choice(len(ex), size=min(len(ex), 420), replace=False)
    x0 = ex[pick] + rng.normal(0, 1.5, len(pick))
    y0 = ey[pick] + rng.normal(0, 1.5, len(pick))
    steps = 10
    px, py = trace(scene, x0, y0, steps, 1.6)
    dense = np.linspace(0, steps, steps * 3 + 1)
    idx = np.arange(steps + 1)
    dark = hex_rgb("#0a0f2a")
    for i in range(len(pick)):
        colour = np.clip(dark * rng.normal(1.0, 0.25) + rng.normal(0, 0.02, 3), 0, 1)
        paint_stroke(
            canvas,
            height,
            np.interp(dense, idx, px[i]),
            np.interp(dense, idx, py[i]),
            colour,
            rng.uniform(1.3, 2.1),
            rng,
        )

    # Light the raised paint from the top-left: this is what makes it read as thick oil paint.
    hy, hx = np.gradient(height)
    light = np.clip(1.0 + 0.16 * (-hx - hy), 0.65, 1.3)
    img = np.clip(canvas * light[..., None], 0, 1)
    Image.fromarray((img * 255 + 0.5).astype(np.uint8)).save(out, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="folder to write into")
    parser.add_argument("--only", choices=("content", "style"), help="make just one of the two")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "content"):
        make_content(args.out / "content.jpg")
    if args.only in (None, "style"):
        make_style(args.out / "style.png")


if __name__ == "__main__":
    main()
