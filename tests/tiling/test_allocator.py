"""impasto.tiling.allocator: with the bound, memory a tiled scale frees goes back to the system."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.tiling import allocator
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


def test_a_tiled_run_binds_the_allocator_for_its_tiled_scale_and_relaxes_it_after(
    small_images: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, int]] = []
    import impasto.engine as engine

    monkeypatch.setattr(engine, "bound_allocator", lambda: calls.append(("bound", scale[0])) or True)
    monkeypatch.setattr(engine, "relax_allocator", lambda: calls.append(("relax", scale[0])) or True)
    scale = [-1]
    cfg = Config(size=128, start_size=64, steps=2, device="cpu", lbfgs_history=3, content_layers=("relu2_2",),
                 style_layers=("relu1_1", "relu2_1", "relu3_1"), max_memory=tight_budget(small_images))
    st = StyleTransfer(small_images[0], [small_images[1]], cfg, weights=tiny_vgg())
    assert [st.memory_plan(s).tiled for s in st.sizes] == [False, False, True]  # type: ignore[union-attr]
    for ev in st.run():
        scale[0] = ev.scale
    # Bound as the last scale (2) starts, while the scale before is still the last one reported; relaxed
    # once when the run ends.
    assert calls == [("bound", 1), ("relax", 2)]
    calls.clear()
    whole = StyleTransfer(small_images[0], [small_images[1]], cfg.replace(max_memory=None), weights=tiny_vgg())
    assert list(whole.run())[-1].done
    assert calls == []


def test_without_mallopt_both_calls_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_libc", lambda: None)
    assert allocator.bound_allocator() is False
    assert allocator.relax_allocator() is False
