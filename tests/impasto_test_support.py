"""Helpers shared by the tests (imported by name: ``from impasto_test_support import ...``); the
fixtures built on them are in conftest.py. A module of its own because several test folders have a
conftest.py, so ``from conftest import`` would be ambiguous."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from impasto.vgg.preprocess import Preprocess
from impasto.vgg.weights import CAFFE, VGG_BLOCKS, VGGWeights, torchvision_state_dict

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_path(env: str, default: str) -> Path:
    """A folder shared beside the repository: ``$env`` if set, else ``default`` relative to the repo root
    (tests and scripts only: product code never reads these)."""
    value = os.environ.get(env)
    return Path(value).expanduser() if value else (REPO_ROOT / default).resolve()


SHARED_IMAGES = shared_path("IMPASTO_IMAGES", "../shared/images")
SHARED_SEEDS = shared_path("IMPASTO_SEEDS", "../shared/seeds")


def tiny_convs(arch: str = "vgg19", widths: tuple[int, ...] = (4, 5, 6, 7, 7), seed: int = 0, *,
               scale: float = 0.3, bias: float | None = 0.1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Random (weight, bias) pairs with the real VGG layer structure and tiny channel counts; ``bias``
    None: zero biases (no random draw for them)."""
    g = torch.Generator().manual_seed(seed)
    convs = []
    prev = 3
    for n, c in zip(VGG_BLOCKS[arch], widths, strict=True):
        for _ in range(n):
            w = torch.randn(c, prev, 3, 3, generator=g) * scale
            convs.append((w, torch.zeros(c) if bias is None else torch.randn(c, generator=g) * bias))
            prev = c
    return convs


def tiny_vgg(arch: str = "vgg19", widths: tuple[int, ...] = (4, 5, 6, 7, 7), seed: int = 0) -> VGGWeights:
    """A randomly initialised VGG with the real layer structure and tiny channel counts."""
    return VGGWeights(arch=arch, convs=tiny_convs(arch, widths, seed), preprocess=CAFFE, source="tiny test VGG")


def homogeneous_vgg(seed: int = 0) -> VGGWeights:
    """A tiny VGG19 with zero biases and no preprocessing shift: features(k·x) = k·features(x) for k > 0
    (convolutions without bias are linear; ReLU and max pooling commute with positive scaling)."""
    pre = Preprocess(bgr=False, scale=1.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    return VGGWeights(arch="vgg19", convs=tiny_convs(seed=seed, scale=0.4, bias=None), preprocess=pre,
                      source="homogeneous test VGG")


def spy_objective(st: Any, spy: Callable[[torch.Tensor, Callable[[torch.Tensor], Any]], Any]) -> None:
    """Route every loss evaluation of ``st`` through ``spy(pixels, objective)``, which must return the
    objective's :class:`~impasto.objective.LossTerms` (possibly changed); the public seam is
    ``StyleTransfer.objective(size)``."""
    build = st.objective

    def objective(size: tuple[int, int]) -> Callable[[torch.Tensor], Any]:
        obj = build(size)
        return lambda px: spy(px, obj)

    st.objective = objective


def save_tiny_weights(path: Path, arch: str = "vgg19", seed: int = 0) -> Path:
    """The tiny VGG as a torchvision-layout .safetensors file (for the CLI's --weights)."""
    from safetensors.torch import save_file

    save_file(torchvision_state_dict(tiny_vgg(arch, seed=seed)), str(path), metadata={"preprocess": "caffe"})
    return path


NOBODY = 65534


def as_unprivileged(fn: Callable[[], None]) -> None:
    """Run ``fn`` as an ordinary user, so permission checks hold even when the tests run as root (CI).

    As root: fork, drop to uid/gid 65534 (nobody) in the child, run ``fn`` there and report its failure
    (the assertion's text) back through a pipe. Otherwise run ``fn`` here. Files ``fn`` uses must be in a
    folder nobody can reach (see :func:`public_tmp`).
    """
    if os.geteuid() != 0:
        fn()
        return
    import traceback

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        status = 0
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            fn()
        except BaseException:  # noqa: BLE001 - everything goes back to the parent
            os.write(w, traceback.format_exc().encode()[-4000:])
            status = 1
        os.close(w)
        os._exit(status)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        report = fh.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"as uid {NOBODY}:\n{report}"


def tight_budget(images: tuple[Path, Path]) -> str:
    """A budget that holds the 96x128 test picture (``small_images``, 128 px, the layers of
    ``tests/tiling/test_cli_tiles.py``) only in tiles of 32-48 px."""
    from impasto.config import Config
    from impasto.engine import StyleTransfer
    from impasto.tiling.memory import estimate_tiled

    cfg = Config(size=128, start_size=None, device="cpu", lbfgs_history=3, content_layers=("relu2_2",),
                 style_layers=("relu1_1", "relu2_1", "relu3_1"))
    st = StyleTransfer(images[0], [images[1]], cfg, weights=tiny_vgg())
    est = estimate_tiled(st.model, st.content_layers, st.style_layers, 96, 128, 3, 32, 12).total
    return f"{est + st.process_overhead()}B"


def load_script(name: str) -> ModuleType:
    """``scripts/NAME.py`` as a module (the scripts are not a package). Registered in ``sys.modules``
    under its name, where a dataclass of the script looks its module up."""
    path = REPO_ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
