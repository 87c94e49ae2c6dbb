"""Regenerate the golden pixels that ``tests/test_golden.py`` compares against.

    PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/make_golden.py            # writes tests/data/golden/golden.npz
    PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/make_golden.py --check    # compares, writes nothing

Each case is the default :class:`impasto.Config` or one preset of :mod:`impasto.presets`, run on the bundled
inputs (``src/impasto/data/content.jpg`` and ``style.png``) with the bundled VGG19 on the CPU, at a long
side of 64 px and a few steps (:data:`TINY`), so the whole set runs in seconds. The VGG16 preset
(``keras-white``) runs on the bundled VGG19 as ``--allow-vgg19`` does: impasto ships no VGG16, and the
golden pins impasto's pixels, not the write-up's network. The pixels are the uint8 values
:func:`impasto.io.save_image` would write (``round(255 · clamp(x, 0, 1))``).

Run it only when a change is *meant* to change the pixels of the default or a preset, and say so in the
commit; the test then guards every other change.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO_ROOT = Path(__file__).resolve().parents[1]
GOLDEN = REPO_ROOT / "tests" / "data" / "golden" / "golden.npz"

TINY: dict[str, dict[str, object]] = {
    # The default: two scales (32 -> 64 px), 4 steps each: the pyramid, palette start, trust region and
    # first-step rule all run.
    "default": {"size": 64, "start_size": 32, "scale_factor": 2.0, "steps": 4},
    "coursera": {"size": 64, "steps": 4},
    # 20 inner L-BFGS iterations per step: 2 steps are 40 evaluations.
    "pytorch-stylecnn": {"size": 64, "steps": 2},
    "tf-tutorial": {"size": 64, "steps": 4},
    "keras-white": {"size": 64, "steps": 4},
    "gatys": {"size": 64, "steps": 4},
}
"""Case name -> the Config fields changed to make it tiny (everything else is the default's or the preset's)."""


def case_config(name: str) -> object:
    """The :class:`impasto.Config` of one golden case."""
    from impasto import presets
    from impasto.config import Config

    if name == "default":
        base = Config()
    else:
        base = presets.mark_vgg19_substitute(presets.preset_config(name, allow_vgg19=True))
    return base.replace(**TINY[name])


def render(name: str) -> npt.NDArray[np.uint8]:
    """Run one case on the CPU and return its H x W x 3 uint8 pixels."""
    import torch

    from impasto.engine import stylize
    from impasto.io import default_content_path, default_style_path
    from impasto.vgg import load_weights

    torch.manual_seed(0)
    cfg = case_config(name)
    img = stylize(default_content_path(), [default_style_path()], cfg, weights=load_weights(None))  # type: ignore[arg-type]
    x = img.detach().to("cpu", torch.float32).nan_to_num(nan=0.0, posinf=1.0, neginf=0.0)
    arr: npt.NDArray[np.uint8] = (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return np.ascontiguousarray(arr)


def render_all(names: list[str] | None = None,
               log: Callable[[str], None] | None = None) -> dict[str, npt.NDArray[np.uint8]]:
    out: dict[str, npt.NDArray[np.uint8]] = {}
    for name in names or list(TINY):
        out[name] = render(name)
        if log is not None:
            log(f"{name}: {out[name].shape[1]}x{out[name].shape[0]}")
    return out


def load_golden(path: Path = GOLDEN) -> dict[str, npt.NDArray[np.uint8]]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=GOLDEN)
    p.add_argument("--check", action="store_true", help="compare with the committed goldens, write nothing")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    got = render_all(log=lambda s: print(s, flush=True))
    if args.check:
        want = load_golden(args.out)
        bad = 0
        for k, v in got.items():
            diff = int(np.abs(v.astype(np.int16) - want[k].astype(np.int16)).max()) if k in want else -1
            print(f"{k}: max |diff| {diff}")
            bad += diff != 0
        return 1 if bad else 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, **got)  # type: ignore[arg-type]  # numpy's stub types **kwds poorly
    args.out.write_bytes(buf.getvalue())
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
