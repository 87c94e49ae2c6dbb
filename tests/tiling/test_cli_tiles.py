"""The command line's side of print size: the --print-every line reports tiles."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from impasto import cli, engine
from impasto.config import Config
from impasto.engine import StyleTransfer
from impasto.vgg import VGGWeights
from impasto_test_support import tight_budget, tiny_vgg

LAYERS = ["--content-layers", "relu2_2", "--style-layers", "relu1_1,relu2_1,relu3_1"]
ARGS = ["--size", "128", "--start-size", "none", "--device", "cpu", "-q", "--lbfgs-history", "3", *LAYERS]


@pytest.fixture(autouse=True)
def _tiny_network(monkeypatch: pytest.MonkeyPatch, tiny_weights: Callable[..., VGGWeights]) -> None:
    monkeypatch.setattr(engine, "load_weights", lambda path=None, fmt="auto": tiny_weights())


def test_print_every_line_shows_the_tiles_of_a_tiled_step(small_images: tuple[Path, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    content, style = small_images
    base = [str(content), str(style), *ARGS, "--steps", "2", "--print-every", "1"]
    assert cli.main([*base, "-o", str(tmp_path / "t.png"), "--max-memory", tight_budget(small_images)]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("step")]
    assert len(lines) == 2 and all(" tiles=" in x for x in lines), lines
    assert cli.main([*base, "-o", str(tmp_path / "w.png")]) == 0  # auto: fits whole, no tiles in the line
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("step")]
    assert len(lines) == 2 and not any("tiles=" in x for x in lines)


def test_show_cost_prints_memory_whole_and_tiled_and_time_without_running(
        small_images: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content, style = small_images
    base = [str(content), str(style), *ARGS, "--steps", "7", "--show-cost"]
    assert cli.main([*base, "--max-memory", tight_budget(small_images)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["scale", "steps", "whole", "as", "run", "tiles", "pairs", "s/step"]
    row = re.fullmatch(r"\s*128x96\s+7\s+\S+ [KMG]iB\s+\S+ [KMG]iB\s+(\d+)\s+(\d+)\s+\S+", out[1])
    assert row is not None and int(row.group(1)) >= 6 and row.group(2) == "2", out[1]
    assert out[-1].startswith("peak memory")
    assert "s per step per megapixel, measured on this machine just now" in out[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.png", "style.png"]  # nothing ran or written
    assert cli.main(base) == 0  # auto: fits whole
    assert " whole " in capsys.readouterr().out.splitlines()[1]


def test_the_cost_of_print_size_is_modelled_per_scale(small_images: tuple[Path, Path]) -> None:
    """The cost function front-ends call: tiled scales cost the crops' area times 4/3 per step."""
    from impasto.tiling.cost import TILED_STEP_FACTOR

    cfg = Config(size=128, start_size=64, steps=3, device="cpu", lbfgs_history=3, content_layers=("relu2_2",),
                 style_layers=("relu1_1", "relu2_1", "relu3_1"), max_memory=tight_budget(small_images))
    cost = StyleTransfer(small_images[0], [small_images[1]], cfg, weights=tiny_vgg()).cost(seconds_per_mpixel=10.0)
    first, last = cost.scales[0], cost.scales[-1]
    assert first.tiles == 0 and first.seconds_per_step == pytest.approx(10.0 * first.size[0] * first.size[1] / 1e6)
    assert last.tiles > 0 and last.seconds_per_step > TILED_STEP_FACTOR * 10.0 * 96 * 128 / 1e6  # halos
    assert cost.peak is not None and cost.whole_peak is not None and cost.peak <= cost.budget < cost.whole_peak
    assert cost.seconds == pytest.approx(sum(s.steps * s.seconds_per_step for s in cost.scales))


def test_the_cost_from_a_config_and_sizes_alone_is_the_engines(small_images: tuple[Path, Path]) -> None:
    """config_cost (what the studio and batch price jobs with: the network's structure, no weights, the
    images' sizes) gives the engine's own figures, scale by scale, whole and tiled."""
    from impasto.io import load_image
    from impasto.tiling.cost import config_cost, network_of
    from impasto.vgg import structure_of

    weights = tiny_vgg()
    for budget in (tight_budget(small_images), "64GiB"):
        cfg = Config(size=128, start_size=64, steps=3, device="cpu", lbfgs_history=3, content_layers=("relu2_2",),
                     style_layers=("relu1_1", "relu2_1", "relu3_1"), max_memory=budget)
        st = StyleTransfer(small_images[0], [small_images[1]], cfg, weights=weights)
        hw = [tuple(load_image(p).rgb.shape[-2:]) for p in small_images]
        mine = config_cost(cfg, hw[0], hw[1:], budget=st.memory_budget(), device="cpu", weights=weights)
        assert mine == st.cost()
        assert mine.to_dict() == st.cost().to_dict() and mine.lines() == st.cost().lines()
        assert any(s.tiles for s in mine.scales) == (budget != "64GiB")
    # The structure holds no values: every parameter is on the meta device, with the real shapes.
    net = network_of(Config(), None)
    assert all(p.is_meta for p in net.parameters()) and net.arch == "vgg19"
    # The default network ends at relu4_2 (content; the deepest style layer is relu4_1): ten convolutions.
    assert [int(c.out_channels) for c in net.convs] == [64, 64, 128, 128, 256, 256, 256, 256, 512, 512]
    assert [tuple(w.shape) for w, _ in structure_of(weights).convs] == [tuple(w.shape) for w, _ in weights.convs]


def test_the_step_rate_is_measured_with_the_runs_own_objective() -> None:
    """measure_rate times a few steps of the configured objective on random weights of the network's shapes:
    a positive rate, cached per process, that prices L-BFGS's inner iterations and line search as
    evaluations and does not depend on the weights' values or on settings that do not change the work."""
    from impasto.engine import measure_rate, random_weights

    cfg = Config(device="cpu", lbfgs_history=3, content_layers=("relu2_2",), style_layers=("relu1_1", "relu2_1"))
    net = tiny_vgg()
    rate = measure_rate(cfg, net, side=48)
    assert 0.0 < rate < 1e4
    assert measure_rate(cfg.replace(style_weight=1.0, size=4096, steps=999), tiny_vgg(seed=3), side=48) == rate
    assert measure_rate(cfg.replace(lbfgs_max_iter=20), net, side=48) == pytest.approx(20 * rate)
    assert measure_rate(cfg.replace(lbfgs_max_iter=4, lbfgs_line_search=True), net, side=48) == pytest.approx(5 * rate)
    adam = measure_rate(cfg.replace(optimizer="adam", lbfgs_max_iter=20), net, side=48)
    assert adam > 0.0 and adam != pytest.approx(20 * rate)
    # The random network has the real one's shapes and keeps activations in a normal float range.
    rand = random_weights(net)
    assert [tuple(w.shape) for w, _ in rand.convs] == [tuple(w.shape) for w, _ in net.convs]
    assert all(w.abs().sum() > 0 and not w.is_meta for w, _ in rand.convs)
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(rand.convs, random_weights(net).convs, strict=True))
