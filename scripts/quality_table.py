"""The before/after table of issue 10: impasto's default before and after, and the reference, judged.

For every pair it runs impasto with the defaults as they were before issue 10 (written out explicitly
in :data:`BEFORE`, so this script keeps measuring the same thing after the defaults change) and with
today's ``Config()``, at one size, judges both and the reference picture (jcjohnson/neural-style,
``../shared/reference``) with :mod:`impasto.bench.quality`, and writes

* ``docs/perf/quality_table_<size>.json``: every number, the images' paths, the per-step cost at each
  scale size measured here, the load average before and after;
* ``docs/perf/quality_table_<size>.md``: the markdown table that docs/quality.md quotes.

Wall times taken while other work runs are wrong (a second process slows a run about 4x): the JSON
records the load average; re-run on an idle machine for the numbers to quote:

    PYTHONPATH=src OMP_NUM_THREADS=2 python scripts/quality_table.py --size 512

Result images go to ``out/quality/<size>/`` (they derive from photos the project may not redistribute).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from impasto import Config, StyleTransfer
from impasto.bench.quality import QualityJudge
from impasto.io import load_image, resize_long_side, save_image
from impasto.vgg import VGGWeights, load_weights

ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """../shared (images/ and reference/): from IMPASTO_IMAGES (its images folder), else next to the repo
    (a git worktree under wt/ looks one level further up)."""
    env = os.environ.get("IMPASTO_IMAGES")
    if env:
        return Path(env).resolve().parent
    for up in (ROOT.parent, ROOT.parent.parent):
        if (up / "shared" / "images").is_dir():
            return up / "shared"
    return ROOT.parent / "shared"

BEFORE: dict[str, Any] = {"start_size": 256, "steps": 100, "scale_steps": None, "step_ratio": 1.0, "init": "content",
                          "style_weight": 100.0, "quality": "standard", "balance": "none"}
"""The default values, before issue 10, of every field issue 10 changed or added."""

# name, content, style, reference (None: no reference picture for this pair)
PAIRS: list[tuple[str, str, str, str | None]] = [
    ("tubingen_shipwreck", "images/tubingen.jpg", "images/shipwreck.jpg", "reference/tubingen_shipwreck.png"),
    ("tubingen_starry", "images/tubingen.jpg", "images/starry_night.jpg", "reference/tubingen_starry.png"),
    ("astronaut_wave", "images/astronaut.png", "images/the_wave.jpg", None),
    ("chelsea_composition", "images/chelsea.png", "images/composition_vii.jpg", None),
    # The bundled demo inputs (public domain photo, impasto's own procedural painting): publishable.
    ("demo", "repo:src/impasto/data/content.jpg", "repo:src/impasto/data/style.png", None),
]


def where(rel: str, shared: Path) -> Path:
    """``repo:PATH`` is inside this repository, anything else under ../shared."""
    return ROOT / rel[5:] if rel.startswith("repo:") else shared / rel


def before_config(size: int) -> Config:
    known = {f for f in Config().to_dict()}
    return Config(size=size).replace(**{k: v for k, v in BEFORE.items() if k in known})


def step_cost(content: Any, style: Any, cfg: Config, weights: VGGWeights, steps: int = 4) -> dict[str, float]:
    """Median seconds per step at each scale size of ``cfg``'s schedule (one warm-up step each)."""
    out: dict[str, float] = {}
    st = StyleTransfer(content, [style], cfg, weights=weights)
    for hw in st.sizes:
        single = cfg.replace(size=max(hw), start_size=None, scale_steps=None, steps=steps + 1, quality="standard")
        times: list[float] = []
        t0 = time.perf_counter()
        for ev in StyleTransfer(content, [style], single, weights=weights).run():
            if ev.done:
                break
            t1 = time.perf_counter()
            times.append(t1 - t0)
            t0 = t1
        out[f"{hw[0]}x{hw[1]}"] = statistics.median(times[1:])
    return out


def run(content: Path, style: Path, cfg: Config, weights: VGGWeights, out_png: Path,
        init: str | None = None) -> dict[str, Any]:
    init_image = None
    if init == "match":  # the palette start, before the engine has it as init="palette"
        from impasto.losses.color import match_color

        init_image = match_color(load_image(content).rgb, load_image(style).rgb)
    st = StyleTransfer(content, [style], cfg, weights=weights, init_image=init_image)
    t0 = time.perf_counter()
    img = None
    for ev in st.run():
        if ev.done:
            img = ev.image
    seconds = time.perf_counter() - t0
    assert img is not None
    out_png.parent.mkdir(parents=True, exist_ok=True)
    save_image(img, out_png, metadata={"seconds": round(seconds, 2), "config": cfg.to_dict()})
    return {"image": str(out_png), "seconds": seconds, "sizes": [list(s) for s in st.sizes], "steps": st.steps}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--pairs", nargs="+", default=None, help="pair names (default: all)")
    p.add_argument("--shared", type=Path, default=None)
    p.add_argument("--out", type=Path, default=ROOT / "out" / "quality")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--skip-before", action="store_true", help="reuse 'before' entries of an existing JSON")
    p.add_argument("--after", default="{}", help="Config changes of the 'after' run (JSON; default: today's Config())")
    p.add_argument("--from-levers", nargs="+", default=None, metavar="PAIR=DIR:BEFORE:AFTER",
                   help="do not run: assemble rows from scripts/quality_levers.py output (levers.json in DIR)")
    p.add_argument("--step-seconds", type=float, default=None,
                   help="with --from-levers: idle seconds of one final-size step, for the 'predicted' column")
    a = p.parse_args()
    a.shared = a.shared or shared_dir()
    if a.from_levers:
        assemble(a)
        return
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", str(torch.get_num_threads()))))
    json_path = a.json or ROOT / "docs" / "perf" / f"quality_table_{a.size}.json"
    old = json.loads(json_path.read_text()) if json_path.exists() else {}
    weights = load_weights(None)
    doc: dict[str, Any] = {"size": a.size, "load_start": os.getloadavg(), "threads": torch.get_num_threads(),
                           "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                           "before": BEFORE, "after": Config(size=a.size).to_dict(), "pairs": {}}
    pairs = [x for x in PAIRS if a.pairs is None or x[0] in a.pairs]
    for name, c_rel, s_rel, r_rel in pairs:
        content, style = where(c_rel, a.shared), where(s_rel, a.shared)
        c_rgb, s_rgb = load_image(content).rgb, load_image(style).rgb
        judge = QualityJudge(c_rgb, s_rgb, weights=weights)
        row: dict[str, Any] = {"content": c_rel, "style": s_rel}
        after = dict(json.loads(a.after))
        after_init = after.pop("_init", None)
        runs = {"after": Config(size=a.size).replace(**after)}
        if not (a.skip_before and name in old.get("pairs", {})):
            runs = {"before": before_config(a.size), **runs}
        else:
            row["before"] = old["pairs"][name]["before"]
        for which, cfg in runs.items():
            r = run(content, style, cfg, weights, a.out / str(a.size) / f"{name}_{which}.png",
                    after_init if which == "after" else None)
            r["scores"] = judge(load_image(r["image"]).rgb).to_dict()
            r["step_cost"] = step_cost(c_rgb, s_rgb, cfg, weights)
            r["predicted_seconds"] = sum(
                n * r["step_cost"][f"{h}x{w}"] for (h, w), n in zip(r["sizes"], r["steps"]))
            r["load_end"] = os.getloadavg()
            row[which] = r
            print(f"{name} {which}: {r['seconds']:.0f} s, {json.dumps(r['scores'])[:160]}", flush=True)
        if r_rel is not None:
            ref = load_image(a.shared / r_rel).rgb
            row["reference"] = {"image": r_rel, "scores": judge(resize_long_side(ref, a.size)).to_dict()}
        doc["pairs"][name] = row
        doc["load_end"] = os.getloadavg()
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(doc, indent=1))
    md = table_markdown(doc)
    json_path.with_suffix(".md").write_text(md)
    print(md)


def assemble(a: argparse.Namespace) -> None:
    """Rows from lever runs (judged with the same judge, same size; seconds measured under the load recorded)."""
    json_path = a.json or ROOT / "docs" / "perf" / f"quality_table_{a.size}.json"
    doc: dict[str, Any] = {"size": a.size, "threads": None, "source": "scripts/quality_levers.py runs",
                           "before": BEFORE, "after": json.loads(a.after), "pairs": {}}
    loads: list[float] = []
    for spec in a.from_levers:
        name, _, rest = spec.partition("=")
        folder, before, after = rest.split(":")
        lev = json.loads((Path(folder) / "levers.json").read_text())
        pair = next(x for x in PAIRS if x[0] == name)
        row: dict[str, Any] = {"content": pair[1], "style": pair[2]}
        for which, variant in (("before", before), ("after", after)):
            if not variant:
                continue
            run = lev["runs"][variant]
            loads += [run["load_start"][0], run["load_end"][0]]
            doc["threads"] = 2
            row[which] = {"image": str(Path(folder) / f"{variant}.png"), "seconds": run["seconds"],
                          "cost_final_steps": run["cost_final_steps"], "variant": variant,
                          "changes": run["changes"], "steps": run["steps"], "sizes": run["sizes"],
                          "scores": run["final"], **({"predicted_seconds": run["cost_final_steps"] * a.step_seconds}
                                                     if a.step_seconds else {}), "trajectory": [
                              {"size": sc["size"], "cost": sc["cost"], **{k: sc["judge"][k] for k in
                                                                         ("style", "deep", "content", "color")}}
                              for sc in run["scales"]]}
        if pair[3] is not None and "reference" in lev:
            row["reference"] = {"image": pair[3], "scores": lev["reference"]}
        doc["pairs"][name] = row
    doc["load_start"], doc["load_end"] = [min(loads)], [max(loads)]
    if a.step_seconds:
        doc["step_seconds"] = a.step_seconds
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(doc, indent=1))
    md = table_markdown(doc)
    json_path.with_suffix(".md").write_text(md)
    print(md)


def table_markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"Measured at {doc['size']} px, {doc['threads']} threads, load average between {doc['load_start'][0]:.1f} and "
        f"{doc['load_end'][0]:.1f} (the run's own two threads make about 2: a higher figure means another job "
        "shared the cores and the seconds are too high; 'predicted' = steps × the per-step cost measured at each "
        "scale size in the same run; cost = FLOPs in final-size steps).",
        "",
        "| pair | run | wall s | predicted s | cost (final-size steps) | style | deep | content | colour ΔE |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in doc["pairs"].items():
        for which in ("before", "after", "reference"):
            if which not in row:
                continue
            r = row[which]
            s = r["scores"]
            wall = f"{r['seconds']:.0f}" if "seconds" in r else "GPU, 1000 it."
            pred = f"{r['predicted_seconds']:.0f}" if "predicted_seconds" in r else ""
            cost = f"{r['cost_final_steps']:.0f}" if "cost_final_steps" in r else ""
            lines.append(f"| {name} | {which} | {wall} | {pred} | {cost} | {s['style']:.3f} | {s['deep']:.3f} | "
                         f"{s['content']:.3f} | {s['color']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
