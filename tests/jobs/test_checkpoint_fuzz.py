"""A corpus of hostile checkpoints: every field of a real checkpoint replaced by hostile values, and
the file truncated or its bytes flipped at many places. Each case is resumed through the job layer;
the only outcomes allowed are one ImpastoError line, or a run that goes on to a finite image."""

from __future__ import annotations

import copy
import hashlib
import io
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from impasto.checkpoint import MAGIC
from impasto.config import Config
from impasto.errors import ImpastoError
from impasto.jobs import JobRun, JobSpec
from impasto.vgg.weights import VGGWeights

CFG = Config(size=32, start_size=24, steps=3, device="cpu")
HOSTILE: list[Any] = [None, "x", -1, 2**62, 1e308, float("nan"), [], {}, [0] * 5, torch.zeros(2, 2),
                      torch.full((3,), float("inf")), True]


def _leaves(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(obj, list) and obj and len(obj) <= 8:
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, i))
    else:
        yield path


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def _sign(body: bytes) -> bytes:
    return MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, JobSpec, dict[str, Any], Callable[[], VGGWeights]]:
    from impasto.io import save_image
    from impasto_test_support import tiny_vgg

    folder = tmp_path_factory.mktemp("fuzz")
    content, style = folder / "content.png", folder / "style.png"
    g = torch.Generator().manual_seed(0)
    save_image(torch.rand(3, 24, 32, generator=g), content)
    save_image(torch.rand(3, 32, 32, generator=g), style)
    spec = JobSpec.create(content, [style], CFG, key="fuzz")
    ckpt = folder / "base.ckpt"
    run = JobRun(spec, checkpoint=ckpt, resume="never", weights=tiny_vgg())
    for ev in run:
        if ev.kind == "step" and ev.step == 4:  # the second scale, with an L-BFGS history
            run.save_checkpoint()
            break
    data = ckpt.read_bytes()
    payload = torch.load(io.BytesIO(data[len(MAGIC) + 65:]), weights_only=True)
    return folder, spec, payload, tiny_vgg


def _outcome(path: Path, spec: JobSpec, weights: VGGWeights) -> str:
    try:
        run = JobRun(spec, checkpoint=path, resume="required", weights=weights)
        last = None
        for ev in run:
            last = ev
    except ImpastoError as e:
        assert "\n" not in str(e) and str(e)
        return "refused"
    assert last is not None and last.kind == "done" and last.image is not None
    assert bool(torch.isfinite(last.image).all())
    return "ran"


def _field_cases() -> list[tuple[int, int]]:
    return [(i, j) for i in range(60) for j in range(len(HOSTILE))]


@pytest.mark.parametrize("leaf, value", _field_cases())
def test_every_field_replaced_by_a_hostile_value(leaf: int, value: int, base: Any, tmp_path: Path) -> None:
    folder, spec, payload, weights = base
    leaves = [p for p in _leaves(payload) if p]
    if leaf >= len(leaves):
        pytest.skip(f"this checkpoint has {len(leaves)} fields")
    crafted = copy.deepcopy(payload)
    _set(crafted, leaves[leaf], copy.deepcopy(HOSTILE[value]))
    buf = io.BytesIO()
    torch.save(crafted, buf)
    path = tmp_path / "c.ckpt"
    path.write_bytes(_sign(buf.getvalue()))
    _outcome(path, spec, weights())


@pytest.mark.parametrize("cut", [0, 1, 10, 21, 22, 86, 87, 200, 1000, -1000, -22, -1])
def test_truncated(cut: int, base: Any, tmp_path: Path) -> None:
    folder, spec, _, weights = base
    data = (folder / "base.ckpt").read_bytes()
    path = tmp_path / "t.ckpt"
    path.write_bytes(data[:cut])
    assert _outcome(path, spec, weights()) == "refused"


@pytest.mark.parametrize("where", [i / 40 for i in range(40)])
def test_flipped_byte(where: float, base: Any, tmp_path: Path) -> None:
    folder, spec, _, weights = base
    data = bytearray((folder / "base.ckpt").read_bytes())
    i = min(len(data) - 1, int(math.floor(where * len(data))))
    data[i] ^= 0x01
    path = tmp_path / "f.ckpt"
    path.write_bytes(bytes(data))
    assert _outcome(path, spec, weights()) == "refused"


def test_the_untouched_checkpoint_runs(base: Any) -> None:
    folder, spec, _, weights = base
    assert _outcome(folder / "base.ckpt", spec, weights()) == "ran"
