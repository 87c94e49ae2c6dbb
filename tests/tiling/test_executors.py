"""Tiles as units of work: two CPU worker processes and a local Ray cluster give the in-process loss,
gradient and picture to float tolerance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.objective import LossForms, LossWeights
from impasto.tiling import TiledObjective
from impasto.tiling.executors import LocalExecutor, ProcessExecutor, chunks
from impasto.tiling.memory import estimate_tiled
from impasto.vgg import VGGFeatures
from impasto_test_support import tiny_vgg

LAYERS = (("relu2_2",), ("relu1_1", "relu2_1", "relu3_1"))


def _objective() -> tuple[TiledObjective, torch.Tensor]:
    model = VGGFeatures(tiny_vgg(), list(LAYERS[0]) + list(LAYERS[1])).use_channels_last(True)
    g = torch.Generator().manual_seed(3)
    content = torch.rand(1, 3, 72, 96, generator=g)
    styles = [torch.rand(1, 3, 40, 56, generator=g)]
    x = torch.rand(1, 3, 72, 96, generator=g) * 255
    wts = LossWeights(5.0, 55.0, 1e-3, (1.0,), (0.5, 1.5, 2.5))
    obj = TiledObjective.build(model, content, styles, [1.0], content_layers=LAYERS[0], style_layers=LAYERS[1],
                               forms=LossForms(), weights=wts, pixel_scale=255.0, tile=32)
    return obj, x


def _loss_grad(obj: TiledObjective, x: torch.Tensor, executor: Any, evaluation: int = 1) -> tuple[Any, torch.Tensor]:
    obj.executor, obj.evaluations = executor, evaluation  # evaluation 1: the grid has moved
    x = x.detach().clone().requires_grad_(True)
    terms = obj(x)
    terms.total.backward()
    assert x.grad is not None and len(obj.last_tiles) > 2
    return terms, x.grad


def _assert_same(obj: TiledObjective, x: torch.Tensor, executor: Any, rtol: float = 1e-5) -> None:
    t0, g0 = _loss_grad(obj, x, None)
    t1, g1 = _loss_grad(obj, x, executor)
    assert float(t1.total.detach()) == pytest.approx(float(t0.total.detach()), rel=rtol)
    for k in t0.per:
        assert float(t1.per[k]) == pytest.approx(float(t0.per[k]), rel=rtol, abs=rtol * float(t0.total.detach())), k
    assert float((g1 - g0).abs().max() / g0.abs().max()) < rtol


def test_chunks_are_contiguous_and_cover_every_tile() -> None:
    assert chunks(5, 2) == [range(0, 2), range(2, 5)]
    assert chunks(1, 3) == [range(0, 1)]
    assert [i for r in chunks(12, 5) for i in r] == list(range(12))


def test_the_local_executor_is_the_in_process_loop() -> None:
    obj, x = _objective()
    t0, g0 = _loss_grad(obj, x, None)
    t1, g1 = _loss_grad(obj, x, LocalExecutor(obj.model))
    assert float(t1.total.detach()) == pytest.approx(float(t0.total.detach()), rel=1e-6)
    assert torch.allclose(g0, g1, rtol=1e-6)


@pytest.fixture(scope="module")
def two_processes() -> Iterator[ProcessExecutor]:
    obj, _ = _objective()
    ex = ProcessExecutor(obj.model, ["cpu", "cpu"], threads=1)
    try:
        yield ex
    finally:
        ex.close()


def test_two_worker_processes_give_the_in_process_loss_and_gradient(two_processes: ProcessExecutor) -> None:
    assert len(set(two_processes.pids)) == 2
    obj, x = _objective()
    _assert_same(obj, x, two_processes)


def test_a_failing_worker_is_one_line(two_processes: ProcessExecutor) -> None:
    from impasto.errors import ImpastoError

    obj, x = _objective()
    with pytest.raises(ImpastoError, match="a tile worker failed"):
        two_processes.statistics(x[:, :, :8, :8], obj.schedule.tiles(0), obj.spec, False)  # crops out of range
    _assert_same(obj, x, two_processes)  # the workers are still there


CFG = Config(size=128, start_size=None, steps=4, device="cpu", lbfgs_history=3, content_layers=("relu2_2",),
             style_layers=("relu1_1", "relu2_1", "relu3_1"), init="noise", seed=5)


def _tight_budget(images: tuple[Path, Path]) -> str:
    """A budget that holds the 96x128 test picture only in tiles of 32-48 px."""
    st = StyleTransfer(images[0], [images[1]], CFG, weights=tiny_vgg())
    est = estimate_tiled(st.model, st.content_layers, st.style_layers, 96, 128, 3, 32, 12).total
    return f"{est + st.process_overhead()}B"


def _run(images: tuple[Path, Path], cfg: Config, executor: Any = None) -> tuple[StyleTransfer, list[Any]]:
    st = StyleTransfer(images[0], [images[1]], cfg.replace(max_memory=_tight_budget(images)), weights=tiny_vgg(),
                       tile_executor=executor)
    return st, list(st.run())


def _assert_same_run(images: tuple[Path, Path], devices: tuple[str, ...], executor: Any = None) -> None:
    """A short tiled run with its tiles on ``devices`` (or the ``executor`` given) against one in-process."""
    _, one = _run(images, CFG)
    st, many = _run(images, CFG.replace(devices=devices), executor)
    assert st._executor is None  # one the run started is closed when it ends
    assert all(e.tiles > 2 for e in many[:-1])
    for a, b in zip(one[:-1], many[:-1]):
        assert b.loss == pytest.approx(a.loss, rel=1e-5)
    assert float((one[-1].image - many[-1].image).abs().max()) < 1e-4


def test_a_short_tiled_run_on_two_cpu_worker_processes_paints_the_same_picture(
        small_images: tuple[Path, Path]) -> None:
    _assert_same_run(small_images, ("cpu", "cpu"))


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    from impasto.tiling.executors import ray_runtime_env

    ray.init(num_cpus=2, object_store_memory=100 * 2**20, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR", runtime_env=ray_runtime_env())
    try:
        yield ray
    finally:
        ray.shutdown()


def test_ray_workers_give_the_in_process_loss_gradient_and_picture(local_ray: Any,
                                                                   small_images: tuple[Path, Path]) -> None:
    from impasto.tiling.executors import RayExecutor

    obj, x = _objective()
    ex = RayExecutor(obj.model, 2)
    try:
        assert len(set(ex.pids)) == 2
        _assert_same(obj, x, ex)
        _assert_same_run(small_images, ("ray", "ray"), ex)  # the same actors (starting more takes seconds)
    finally:
        ex.close()
