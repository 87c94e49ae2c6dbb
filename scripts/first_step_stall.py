"""The L-BFGS first-step stall, shown: one 512 px scale run from the same start with torch's first
step (``min(1, 1/‖g‖₁)·lr``) and with first steps of 1, 0.25 and 0.1 times the trust region (RMS;
impasto's is 0.1, :data:`impasto.engine.FIRST_STEP_FRACTION`).

The start is what the default pyramid hands to its last scale: a run at ``--start-size`` (256 → 362 px
at the defaults) enlarged to the final size. The style weight is a flag because the stall depends on
the loss's unit: at the relative balance's weight 35 on Astronaut × The Great Wave, torch's rule never
stores a curvature pair and the loss does not move (see ``docs/quality.md``).

    PYTHONPATH=src OMP_NUM_THREADS=2 python scripts/first_step_stall.py ../shared/images/astronaut.png \
        ../shared/images/the_wave.jpg --style-weight 35 --json docs/perf/first_step_stall_512.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from torch import Tensor

from impasto import Config, StyleTransfer
from impasto.optim.factory import Optimizer, OptimizerFactory, OptimizerSpec, make_optimizer
from impasto.optim.lbfgs import TwoLoopLBFGS
from impasto.vgg import load_weights


def with_first_step(first_step: float | None) -> OptimizerFactory:
    """The default factory with another first step (None: torch's)."""

    def factory(x: Tensor, spec: OptimizerSpec) -> Optimizer:
        if spec.plain_lbfgs and not x.is_cuda:
            return TwoLoopLBFGS(x, lr=spec.lr, history_size=spec.history, first_step=first_step)
        return make_optimizer(x, spec)

    return factory


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("content", type=Path)
    p.add_argument("style", type=Path)
    p.add_argument("--style-weight", type=float, default=35.0)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--start-size", type=int, default=362, help="size of the run whose result is the start")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    weights = load_weights(None)
    base = Config(style_weight=a.style_weight)
    start = StyleTransfer(a.content, [a.style], base.replace(size=a.start_size), weights=weights)
    for ev in start.run():
        if ev.done:
            break
    init = start.current_image()
    cfg = base.replace(size=a.size, start_size=None, steps=a.steps)
    doc: dict[str, Any] = {"content": a.content.name, "style": a.style.name, "style_weight": a.style_weight,
                           "start_size": a.start_size, "size": a.size, "load_start": os.getloadavg(), "runs": {}}
    assert cfg.lbfgs_max_step is not None
    limit = cfg.lbfgs_max_step * cfg.pixel_scale
    variants = {"torch first step": with_first_step(None),
                **{f"{f:g} x trust region": with_first_step(f * limit) for f in (1.0, 0.25, 0.1)}}
    for name, factory in variants.items():
        st = StyleTransfer(a.content, [a.style], cfg, weights=weights, init_image=init, optimizer_factory=factory)
        losses = [ev.loss for ev in st.run()][:-1]  # the last event repeats the final step
        doc["runs"][name] = losses
        print(f"{name}: loss {losses[0]:.4f} at step 1, {losses[len(losses) // 2]:.4f} at step "
              f"{len(losses) // 2 + 1}, {losses[-1]:.4f} at step {len(losses)}")
    if a.json is not None:
        a.json.write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
