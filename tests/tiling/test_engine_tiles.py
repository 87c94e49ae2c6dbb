"""The engine's opt-in tiled scales: Config.max_memory, the same picture as a whole-image run, resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.errors import ImpastoError
from impasto.tiling import TiledObjective, memory
from impasto.tiling.memory import estimate_tiled
from impasto_test_support import tiny_vgg

# Shallow layers (halo 12 px, tiles aligned to 4 px), so a 96x128 picture really is cut into tiles.
CFG = Config(size=128, start_size=None, steps=3, device="cpu", lbfgs_history=3, content_layers=("relu2_2",),
             style_layers=("relu1_1", "relu2_1", "relu3_1"))


def _run(images: tuple[Path, Path], cfg: Config, steps: int | None = None, state: dict[str, Any] | None = None,
         ) -> tuple[StyleTransfer, list[Any]]:
    st = StyleTransfer(images[0], [images[1]], cfg, weights=tiny_vgg())
    if state is not None:
        st.load_state_dict(state)
    events = []
    for ev in st.run():
        events.append(ev)
        if steps is not None and not ev.done and ev.step == steps:
            break
    return st, events


def _budget(cfg: Config, images: tuple[Path, Path], tile: int = 32) -> str:
    """The budget whose plan is tiles of ``tile`` px with 3 pairs' worth of bytes (the process's overhead,
    runtime allowance and input images, included)."""
    st = StyleTransfer(images[0], [images[1]], cfg, weights=tiny_vgg())
    est = estimate_tiled(st.model, st.content_layers, st.style_layers, 96, 128, 3, tile, 12).total
    return f"{est + st.process_overhead()}B"


def test_no_budget_and_a_budget_that_fits_take_the_old_path(small_images: tuple[Path, Path]) -> None:
    st, a = _run(small_images, CFG.replace(max_memory=None))
    assert st.memory_plan((96, 128)) is None
    for budget in ("1TiB", "auto"):  # auto, the default: the machine's available memory, here plenty
        st2, b = _run(small_images, CFG.replace(max_memory=budget))
        plan = st2.memory_plan((96, 128))
        assert plan is not None and not plan.tiled and plan.pairs == 3
        assert torch.equal(a[-1].image, b[-1].image)
        assert [e.loss for e in a] == [e.loss for e in b]
    assert Config().max_memory == "auto"


def test_auto_budget_is_the_available_memory_less_a_margin_and_is_kept_for_a_resume(
    small_images: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert memory.auto_budget("cpu", 10 * 2**30) == 9 * 2**30  # 10 %
    assert memory.auto_budget("cpu", 2**30) == 2**29  # at least 512 MiB
    assert memory.available_memory("cpu") > 0
    # A machine with little memory left: auto tiles the scale the budget cannot hold whole.
    tight = int(_budget(CFG, small_images)[:-1])
    monkeypatch.setattr(memory, "available_memory", lambda device="cpu": tight + 2**29)
    cfg = CFG.replace(steps=2)
    st, events = _run(small_images, cfg, steps=1)
    plan = st.memory_plan((96, 128))
    assert plan is not None and plan.tiled and plan.budget == tight and plan.peak <= tight
    state = st.state_dict()
    assert state["memory_budget"] == tight
    # Resumed where memory is plentiful again: the saved budget, not today's, plans the scale.
    monkeypatch.setattr(memory, "available_memory", lambda device="cpu": 2**40)
    st2 = StyleTransfer(small_images[0], [small_images[1]], cfg, weights=tiny_vgg())
    st2.load_state_dict(state)
    plan2 = st2.memory_plan((96, 128))
    assert plan2 is not None and plan2.tiled and plan2.budget == tight


# Max pooling's gradient is not defined at ties, and the flat synthetic photo's palette start has many
# near-ties: there the whole image's own gradient changes by half its size between memory layouts
# (channels-last or not), so the comparison uses average pooling, or noise with max pooling.
@pytest.mark.parametrize("changes", [{"pooling": "avg"}, {"init": "noise"}])
def test_a_scale_over_the_budget_runs_in_tiles_and_paints_the_same_picture(
    small_images: tuple[Path, Path], changes: dict[str, Any],
) -> None:
    cfg = CFG.replace(steps=5, **changes)
    budget = _budget(cfg, small_images)
    seen: list[type] = []
    st = StyleTransfer(small_images[0], [small_images[1]], cfg.replace(max_memory=budget), weights=tiny_vgg())
    build = st.tiled_objective

    def spy(size: tuple[int, int], tile: int) -> TiledObjective:
        obj = build(size, tile)
        seen.append(type(obj))
        return obj

    st.tiled_objective = spy  # type: ignore[method-assign]
    tiled = list(st.run())
    plan = st.memory_plan((96, 128))
    assert plan is not None and plan.tiled and plan.tile == 48 and plan.pairs == 2  # history capped in bytes
    assert seen == [TiledObjective]
    assert plan.peak <= int(budget[:-1]) < plan.whole.total + plan.overhead
    _, whole = _run(small_images, cfg.replace(lbfgs_history=plan.pairs))
    # 96x128 in 48 px tiles: 6 when the grid is aligned, up to 12 when its borders moved
    assert all(6 <= e.tiles <= 12 for e in tiled[:-1]) and all(e.tiles == 0 for e in whole)
    for t, w in zip(tiled[:-1], whole[:-1]):
        assert t.loss == pytest.approx(w.loss, rel=1e-5)
        assert t.terms == pytest.approx(w.terms, rel=1e-4, abs=1e-5 * w.loss)
    assert float((tiled[-1].image - whole[-1].image).abs().max()) < 1e-4


def test_a_tiled_run_resumes_bit_identically(small_images: tuple[Path, Path]) -> None:
    cfg = CFG.replace(max_memory=_budget(CFG, small_images), steps=4)
    _, straight = _run(small_images, cfg)
    st, _ = _run(small_images, cfg, steps=2)
    state = st.state_dict()
    assert state["tile_evaluations"] == 2
    _, rest = _run(small_images, cfg, state=state)
    assert torch.equal(rest[-1].image, straight[-1].image)


@pytest.mark.parametrize("changes, setting", [({"style_kind": "hist"}, "style_kind 'hist'"),
                                              ({"normalize_gradients": True}, "normalize_gradients")])
def test_settings_that_cannot_be_tiled_are_refused_before_the_first_step(
    small_images: tuple[Path, Path], changes: dict[str, Any], setting: str,
) -> None:
    cfg = CFG.replace(**changes)
    with pytest.raises(ImpastoError, match=setting):
        _run(small_images, cfg.replace(max_memory=_budget(CFG, small_images)))
    _run(small_images, cfg.replace(max_memory="1GiB", steps=1))  # a budget that fits: no tiles, no refusal


def test_max_memory_is_validated_in_one_line() -> None:
    with pytest.raises(ImpastoError, match="^max_memory must be a size with a unit"):
        Config(max_memory="12")
    assert Config(max_memory="1.5GiB").max_memory == "1.5GiB"


def test_a_memory_share_divides_the_cpu_auto_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    assert memory.auto_budget("cpu", 20 * 2**30, share=2) == 9 * 2**30  # 10 GiB each, less 10 %
    assert memory.auto_budget("cuda:0", 20 * 2**30, share=2) == 18 * 2**30  # a GPU is one worker's
    monkeypatch.setattr(memory, "_memory_share", 1)
    monkeypatch.setattr(memory, "available_memory", lambda device="cpu": 40 * 2**30)
    assert memory.resolve_budget("auto") == 36 * 2**30
    memory.set_memory_share(4)
    assert memory.memory_share() == 4 and memory.resolve_budget("auto") == 9 * 2**30
    assert memory.resolve_budget("3GiB") == 3 * 2**30  # a size given is never divided
    with pytest.raises(ImpastoError, match="memory share is 1 to 4096"):
        memory.set_memory_share(0)
