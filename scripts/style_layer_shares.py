"""How much each loss term weighs at the start of a run: per layer, its value, its share of the style
loss, the norm of the gradient it sends to the pixels, and the energy (mean square) of its target.

Measured at the full size of one scale (no pyramid), from the configured start image, with both
balances, so the effect of ``balance="relative"`` is visible side by side (issue 10):

    PYTHONPATH=src python scripts/style_layer_shares.py ../shared/images/tubingen.jpg \
        ../shared/images/shipwreck.jpg ../shared/images/starry_night.jpg --size 512 \
        --json docs/perf/style_layer_shares_512.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import torch

from impasto import Config, StyleTransfer
from impasto.io import atomic_write
from impasto.vgg import load_weights


def shares(content: Path, style: Path, cfg: Config, weights: Any) -> dict[str, Any]:
    st = StyleTransfer(content, [style], cfg, weights=weights)
    size = st.sizes[-1]
    obj = st.objective(size)
    x = (st.initial * cfg.pixel_scale).detach().clone().requires_grad_(True)
    terms = obj(x)
    style_total = float(terms.style.detach())
    rows: dict[str, Any] = {}
    for name, value in terms.per.items():
        (grad,) = torch.autograd.grad(value, x, retain_graph=True)
        row = {"loss": float(value.detach()), "grad_norm": float(grad.norm())}
        if name.startswith("style/"):
            layer = name.split("/", 1)[1]
            target = obj.slots[0].layers[layer].gram
            row["share_of_style"] = row["loss"] / style_total if style_total else 0.0
            row["target_mean_square"] = float(target.pow(2).mean()) if target is not None else None
        rows[name] = row
    return {"size": list(size), "balance": cfg.balance, "style_weight": cfg.style_weight, "init": cfg.init,
            "content": float(terms.content.detach()),
            "style": style_total, "terms": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("content", type=Path)
    p.add_argument("styles", type=Path, nargs="+")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", str(torch.get_num_threads()))))
    weights = load_weights(None)
    doc: dict[str, Any] = {"content": a.content.name, "results": []}
    for style in a.styles:
        # The raw forms with the style weight they had as the default (100), and today's default.
        for cfg in (Config(size=a.size, start_size=None, balance="none", style_weight=100.0),
                    Config(size=a.size, start_size=None)):
            balance = cfg.balance
            r = {"style_image": style.name, **shares(a.content, style, cfg, weights)}
            doc["results"].append(r)
            print(f"{style.name} balance={balance} style_weight={cfg.style_weight:g} ({r['size'][1]}x{r['size'][0]}, "
                  f"start {r['init']}):")
            for name, t in r["terms"].items():
                extra = (f"  share {t['share_of_style']:6.1%}  target mean square {t['target_mean_square']:.3g}"
                         if "share_of_style" in t else "")
                print(f"  {name:16s} loss {t['loss']:12.4g}  grad norm {t['grad_norm']:10.4g}{extra}")
    if a.json is not None:
        data = (json.dumps(doc, indent=1) + "\n").encode()
        atomic_write(a.json, lambda fh: fh.write(data))


if __name__ == "__main__":
    main()
