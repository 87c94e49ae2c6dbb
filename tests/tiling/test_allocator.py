"""impasto.tiling.allocator: with the bound, memory a tiled scale frees goes back to the system."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import impasto.engine as engine
from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.tiling import allocator
from impasto.tiling.memory import MemoryEstimate, ScalePlan
from impasto_test_support import tight_budget, tiny_vgg

# In a fresh process (the allocator's settings are the process's), relaxed (glibc's threshold at its 32 MiB
# ceiling, where a long run leaves it) or bound: 4 MiB tensors (a tile's activations) alternate with small
# tensors that stay (1 MiB: what is kept between tiles), and the big ones are freed. Prints the resident
# growth the freed blocks left behind, in MiB.
RETAINED = """
import json, sys
from pathlib import Path
import torch
from impasto.tiling import allocator

def rss():
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20

took = {"bound": allocator.bound_allocator, "relaxed": allocator.relax_allocator}[sys.argv[1]]()
before = rss()
big, kept = [], []
for _ in range(64):
    big.append(torch.ones(2**20))  # 4 MiB, every page written
    kept.append(torch.ones(2**18))  # 1 MiB
del big
print(json.dumps({"took": took, "retained_mib": rss() - before - 64}))  # less the 64 MiB kept
"""


def _retained(mode: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", RETAINED, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the resident size from /proc (Linux)")
def test_freed_tile_memory_is_returned_under_the_bound_and_kept_without_it() -> None:
    relaxed, bound = _retained("relaxed"), _retained("bound")
    if not relaxed["took"]:
        pytest.skip("this C library has no mallopt (not glibc)")
    assert bound["took"] is True
    assert relaxed["retained_mib"] > 200  # 64 x 4 MiB freed, held by the heap between the kept tensors
    assert bound["retained_mib"] < 16


def test_a_run_binds_the_allocator_from_its_first_binding_scale_and_relaxes_it_after(
    small_images: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, int]] = []
    scale = [-1]
    monkeypatch.setattr(engine, "bound_allocator", lambda: calls.append(("bound", scale[0])) or True)
    monkeypatch.setattr(engine, "relax_allocator", lambda: calls.append(("relax", scale[0])) or True)
    cfg = Config(size=128, start_size=64, steps=2, device="cpu", lbfgs_history=3, content_layers=("relu2_2",),
                 style_layers=("relu1_1", "relu2_1", "relu3_1"), max_memory=tight_budget(small_images))
    st = StyleTransfer(small_images[0], [small_images[1]], cfg, weights=tiny_vgg())
    plans = [st.memory_plan(s) for s in st.sizes]
    assert [p.tiled for p in plans if p is not None] == [False, False, True]
    for ev in st.run():
        scale[0] = ev.scale
    # The tiny network's scales are all near a budget that the runtime allowance dominates: bound before
    # the first step, relaxed once when the run ends.
    assert calls == [("bound", -1), ("relax", 2)]
    calls.clear()
    whole = StyleTransfer(small_images[0], [small_images[1]], cfg.replace(max_memory=None), weights=tiny_vgg())
    assert list(whole.run())[-1].done
    assert calls == []


def _plan(tiled: bool, peak_fraction: float) -> ScalePlan:
    est = MemoryEstimate(0, 0, 0, 0, int(peak_fraction * 1000))
    return ScalePlan((64, 64), 32 if tiled else None, 8, 1, est, est, 1000)


def test_a_tiled_scale_or_one_near_the_budget_binds_the_allocator(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(engine, "bound_allocator", lambda: calls.append("bound") or True)
    monkeypatch.setattr(engine, "relax_allocator", lambda: calls.append("relax") or True)
    st = SimpleNamespace(device=torch.device("cpu"), _allocator_bound=False)
    for plan in [None, _plan(False, 0.5), _plan(False, engine.BOUND_FRACTION), _plan(True, 0.5), _plan(True, 0.9),
                 _plan(False, 0.74), None]:
        StyleTransfer._bound_allocator(st, plan)  # type: ignore[arg-type]
    assert calls == ["bound", "relax"]  # bound at 0.75 whole, kept through the tiled ones, relaxed at 0.74
    calls.clear()
    st = SimpleNamespace(device=torch.device("cuda"), _allocator_bound=False)  # a GPU's memory is torch's
    StyleTransfer._bound_allocator(st, _plan(True, 0.9))  # type: ignore[arg-type]
    assert calls == []


def test_without_mallopt_both_calls_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_libc", lambda: None)
    assert allocator.bound_allocator() is False
    assert allocator.relax_allocator() is False
