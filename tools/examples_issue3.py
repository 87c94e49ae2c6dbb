"""Closing artefacts of issue 3: Tübingen × Starry Night under every preset at 256 px, one balance
animation and one contact sheet, written to out/ (git-ignored).

    PYTHONPATH=src python tools/examples_issue3.py [--out out] [--full]

Without ``--full`` every preset runs fewer steps than its source (see ``REDUCED``: about a tenth to a
half), so the whole script fits about half an hour on 2 CPU cores shared with other jobs; ``--full`` runs the
sources' own counts (on a GPU). The summary lines say which count each image used.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from impasto import __version__
from impasto.animate import balance_alphas, balance_grid, balance_sweep, write_animation
from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.explain import LossHistory, contact_sheet
from impasto.imageio import load_image, save_image
from impasto.presets import names, preset_config
from impasto.weights import load_weights

# IMPASTO_IMAGES points elsewhere (e.g. a copy carried to a GPU machine).
IMAGES = Path(os.environ.get("IMPASTO_IMAGES", Path(__file__).resolve().parents[1].parent / "shared" / "images"))
REDUCED = {"coursera": 100, "pytorch-stylecnn": 8, "tf-tutorial": 60, "keras-white": 2, "gatys": 60}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "out"))
    ap.add_argument("--full", action="store_true", help="every preset's own step count")
    ap.add_argument("--only", nargs="*", help="run only these parts: preset names, balance, explain")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    content_path, style_path = IMAGES / "tubingen.jpg", IMAGES / "starry_night.jpg"
    if not content_path.exists() or not style_path.exists():
        print(f"needs {content_path} and {style_path}", file=sys.stderr)
        return 1
    content, style = load_image(content_path), load_image(style_path)
    vgg19 = load_weights(None)
    wanted = set(args.only) if args.only else None
    histories: dict[str, LossHistory] = {}
    results = {}
    for name in names():
        if wanted is not None and name not in wanted:
            continue
        cfg = preset_config(name, allow_vgg19=True)
        steps = cfg.steps if args.full else REDUCED.get(name, cfg.steps)
        cfg = cfg.replace(size=256, steps=steps)
        hist = LossHistory(terms={"loss": [], "content": [], "style": [], "tv": []})
        t0 = time.perf_counter()
        last = None
        for ev in StyleTransfer(content, [style], cfg, weights=vgg19).run():
            last = ev
            if not ev.done:
                hist.steps.append(ev.step)
                for k, v in (("loss", ev.loss), ("content", ev.content), ("style", ev.style), ("tv", ev.tv)):
                    hist.terms[k].append(v)
        assert last is not None and last.image is not None
        secs = time.perf_counter() - t0
        path = out / f"preset_{name}.png"
        save_image(last.image, path, metadata={
            "impasto_version": __version__, "config": cfg.to_dict(), "steps": last.step, "seconds": round(secs, 1),
            "loss_history": {"columns": ["step", "loss", "content", "style", "tv"],
                             "rows": [[s, *(hist.terms[k][i] for k in ("loss", "content", "style", "tv"))]
                                      for i, s in enumerate(hist.steps)]},
        })
        histories[name], results[name] = hist, last.image
        print(f"{name:17s} {steps:5d} steps ({cfg.lbfgs_max_iter if cfg.optimizer == 'lbfgs' else 1} it/step) "
              f"{secs:7.1f} s  loss {last.loss:.4g} content {last.content:.4g} style {last.style:.4g} "
              f"tv {last.tv:.4g} -> {path}", flush=True)

    if wanted is None or "balance" in wanted:
        t0 = time.perf_counter()
        cfg = Config(size=112, start_size=None, steps=6)
        frames = list(balance_sweep(content, style, cfg, balance_alphas(9), first_steps=24, weights=vgg19))
        gif = write_animation([f.image for f in frames], out / "balance.gif", fps=5)
        grid = balance_grid(frames, out / "balance_grid.png")
        print(f"balance: 9 frames at 112 px in {time.perf_counter() - t0:.1f} s -> {gif}, {grid}", flush=True)

    if wanted is None or "explain" in wanted:
        t0 = time.perf_counter()
        pick = "tf-tutorial" if "tf-tutorial" in results else None
        sheet = contact_sheet(content, style, results.get(pick) if pick else None, out / "explain_sheet.png",
                              history=histories.get(pick) if pick else None,
                              config=preset_config("tf-tutorial").replace(size=96, steps=20), weights=vgg19,
                              size=256)
        print(f"explain: {time.perf_counter() - t0:.1f} s -> {sheet}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
