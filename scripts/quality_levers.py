"""Measure what each lever of the default schedule buys, with the independent judge (issue 10).

Each variant is a set of Config changes. For every variant the script runs impasto on one pair,
saves the image at the end of every scale, and judges each of them upsampled to the final size (so
the trajectory shows at which scale stylisation is won or lost). Cost is counted in FLOPs (VGG
forward + input backward, :func:`impasto.bench.perf.step_flops`) and given as "final-size step
equivalents", which does not depend on what else runs on the machine; the measured seconds and the
load average are recorded too.

    PYTHONPATH=src python scripts/quality_levers.py --size 256 --out out/levers \
        --content ../shared/images/tubingen.jpg --style ../shared/images/shipwreck.jpg \
        --variant 'default={}' --variant 'start128={"start_size": 128}'
"""

from __future__ import annotations

import argparse
import json
import os
import time
from itertools import accumulate
from pathlib import Path
from typing import Any

import torch

from impasto import Config, StyleTransfer
from impasto.bench.perf import step_flops
from impasto.bench.quality import QualityJudge
from impasto.io import load_image, resize_to, save_image
from impasto.vgg import load_weights


def run_variant(name: str, changes: dict[str, Any], content: Path, style: Path, size: int, out: Path,
                judge: QualityJudge, weights: Any) -> dict[str, Any]:
    changes = dict(changes)
    init = changes.pop("_init", None)
    cfg = Config(size=size).replace(**changes)
    init_image = None
    if init == "match":
        # The photo recoloured to the painting's RGB mean and covariance: the palette, the slowest part of
        # the style for the optimiser, is there from the first step.
        from impasto.losses.color import match_color

        init_image = match_color(load_image(content).rgb, load_image(style).rgb)
    st = StyleTransfer(content, [style], cfg, weights=weights, init_image=init_image)
    ends = list(accumulate(st.steps))
    final_hw = st.sizes[-1]
    unit = step_flops(*final_hw).total
    rec: dict[str, Any] = {"name": name, "changes": changes, "sizes": st.sizes, "steps": st.steps, "scales": [],
                           "load_start": os.getloadavg()}
    cost = 0.0
    t0 = time.perf_counter()
    for ev in st.run():
        if ev.done:
            break
        if ev.step in ends:
            i = ends.index(ev.step)
            img = st.current_image()
            save_image(img, out / f"{name}_scale{i}.png")
            cost += st.steps[i] * step_flops(*st.sizes[i]).total / unit
            s = judge(resize_to(img, final_hw))
            rec["scales"].append({"scale": i, "size": list(st.sizes[i]), "elapsed": ev.elapsed, "cost": cost,
                                  "loss": ev.loss, "content_loss": ev.content, "style_loss": ev.style, "tv": ev.tv,
                                  "judge": s.to_dict()})
    rec["seconds"] = time.perf_counter() - t0
    rec["cost_final_steps"] = cost
    rec["load_end"] = os.getloadavg()
    save_image(st.current_image(), out / f"{name}.png")
    rec["final"] = rec["scales"][-1]["judge"]
    return rec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--content", type=Path, required=True)
    p.add_argument("--style", type=Path, required=True)
    p.add_argument("--reference", type=Path, default=None, help="a reference result, judged at --size too")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--out", type=Path, default=Path("out/levers"))
    p.add_argument("--variant", action="append", required=True, help="NAME=JSON of Config changes")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    weights = load_weights(None)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    content = load_image(a.content).rgb
    judge = QualityJudge(content, load_image(a.style).rgb, weights=weights)
    results_path = a.out / "levers.json"
    doc: dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {"runs": {}}
    if a.reference is not None:
        from impasto.io import resize_long_side

        ref = resize_long_side(load_image(a.reference).rgb, a.size)
        doc["reference"] = judge(ref).to_dict()
        print("reference", json.dumps(doc["reference"]), flush=True)
    for spec in a.variant:
        name, _, js = spec.partition("=")
        rec = run_variant(name, json.loads(js), a.content, a.style, a.size, a.out, judge, weights)
        doc["runs"][name] = rec
        results_path.write_text(json.dumps(doc, indent=1))
        f = rec["final"]
        traj = " | ".join(f"{max(s['size'])}px {s['judge']['style']:.3f}/{s['judge']['content']:.3f}"
                          for s in rec["scales"])
        print(f"{name}: style {f['style']:.3f} deep {f['deep']:.3f} content {f['content']:.3f} color {f['color']:.1f} "
              f"cost {rec['cost_final_steps']:.0f} steps@{a.size} {rec['seconds']:.0f}s  [{traj}]", flush=True)


if __name__ == "__main__":
    main()
