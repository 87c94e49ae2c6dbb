"""Resumable runs: the engine's state as a value, and checkpoint files."""

from __future__ import annotations

import gc
import json
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from impasto import __version__
from impasto.checkpoint import load_checkpoint, resume, save_checkpoint
from impasto.config import ADDED_FIELDS, Config
from impasto.engine import StyleTransfer
from impasto.errors import ImpastoError
from impasto.vgg import VGGWeights

BASE = Config(size=40, start_size=24, steps=4, content_layers=("relu2_1",), style_layers=("relu1_1", "relu2_1"))


def _finish(st: StyleTransfer) -> tuple[torch.Tensor, list[float]]:
    losses: list[float] = []
    image = None
    for ev in st.run():
        if ev.done:
            image = ev.image
        else:
            losses.append(ev.loss)
    assert image is not None
    return image, losses


@pytest.mark.parametrize(
    "changes, stop_at",
    [
        ({}, 3),  # inside the first scale
        ({}, 4),  # the last step of a scale: the next scale starts after the resume
        ({}, 6),  # inside the second scale
        ({"ema": 0.8, "tol": 1e-9, "tol_window": 2}, 5),
        ({"optimizer": "adam"}, 6),  # Adam's moments carried across the scale change
        ({"lbfgs_line_search": True}, 2),  # torch.optim.LBFGS state
    ],
)
def test_stopped_and_resumed_run_is_bit_identical(
    small_images: tuple[Path, Path], tiny_weights: Callable[..., VGGWeights], changes: dict[str, object],
    stop_at: int,
) -> None:
    content, style = small_images
    cfg = BASE.replace(**changes)
    whole, whole_losses = _finish(StyleTransfer(content, [style], cfg, weights=tiny_weights()))
    first = StyleTransfer(content, [style], cfg, weights=tiny_weights())
    seen: list[float] = []
    state = None
    for ev in first.run():
        seen.append(ev.loss)
        if ev.step == stop_at:
            state = first.state_dict()
            break
    assert state is not None
    second = StyleTransfer(content, [style], cfg, weights=tiny_weights())
    second.load_state_dict(state)
    image, rest = _finish(second)
    assert seen + rest == whole_losses
    assert torch.equal(image, whole)


def test_resumed_run_lets_the_saved_state_go_once_restored(
    small_images: tuple[Path, Path], tiny_weights: Callable[..., VGGWeights],
) -> None:
    """The saved pixels and L-BFGS history are copied into the run when it resumes; the state itself
    must not stay alive beside them (outside the memory model) until the run ends."""
    content, style = small_images
    first = StyleTransfer(content, [style], BASE, weights=tiny_weights())
    state = None
    for ev in first.run():
        if ev.step == 3:  # inside the first scale, with two L-BFGS pairs stored
            state = first.state_dict()
            break
    assert state is not None
    history = state["optimizer"]["_ys"]
    assert len(history) == 2
    pixels = weakref.ref(state["pixels"])
    saved = [weakref.ref(t) for t in history]
    second = StyleTransfer(content, [style], BASE, weights=tiny_weights())
    second.load_state_dict(state)
    del state, history
    run = second.run()
    ev = next(run)  # the resumed scale's next step: the state has been restored
    assert ev.step == 4
    gc.collect()
    assert [r() for r in saved] == [None, None]
    assert pixels() is second.pixels  # on the CPU the saved pixels are the run's own, not a copy
    run.close()


def test_fields_added_since_saved_states_count_in_the_digest_only_when_set(
    small_images: tuple[Path, Path], tiny_weights: Callable[..., VGGWeights],
) -> None:
    """A state saved before ``style_max_zoom`` existed (its configuration lacks it: the default) resumes;
    one saved with it set is another configuration."""
    assert "style_max_zoom" in ADDED_FIELDS
    assert "style_max_zoom" not in json.loads(BASE.state_json())
    assert json.loads(BASE.replace(style_max_zoom=2.0).state_json())["style_max_zoom"] == 2.0
    content, style = small_images
    zoomed = StyleTransfer(content, [style], BASE.replace(style_max_zoom=2.0), weights=tiny_weights())
    state = None
    for ev in zoomed.run():
        if ev.step == 2:
            state = zoomed.state_dict()
            break
    assert state is not None
    plain = StyleTransfer(content, [style], BASE, weights=tiny_weights())
    with pytest.raises(ImpastoError, match="another configuration"):
        plain.load_state_dict(state)


def _checkpoint_at(step: int, images: tuple[Path, Path], weights: VGGWeights, ckpt: Path,
                   extra: dict[str, str] | None = None) -> Path:
    """A BASE run on ``images`` stopped after ``step`` steps, its checkpoint written to ``ckpt``."""
    content, style = images
    st = StyleTransfer(content, [style], BASE, weights=weights)
    for ev in st.run():
        if ev.step == step:
            save_checkpoint(ckpt, st, content=content, styles=[style], extra=extra)
            break
    return ckpt


def test_checkpoint_file_round_trip_and_refusals(
    small_images: tuple[Path, Path], tiny_weights: Callable[..., VGGWeights], tmp_path: Path
) -> None:
    content, style = small_images
    ckpt = _checkpoint_at(5, small_images, tiny_weights(), tmp_path / "run.ckpt", {"output": "x.png"})
    loaded = load_checkpoint(ckpt)
    assert loaded.step == 5 and loaded.extra == {"output": "x.png"} and loaded.config == BASE
    resumed, _ = resume(ckpt, weights=tiny_weights())
    image, rest = _finish(resumed)
    whole, whole_losses = _finish(StyleTransfer(content, [style], BASE, weights=tiny_weights()))
    assert torch.equal(image, whole) and rest == whole_losses[5:]

    # Another configuration, other inputs, a damaged file, another version: refused in one line.
    other = StyleTransfer(content, [style], BASE.replace(style_weight=7.0), weights=tiny_weights())
    with pytest.raises(ImpastoError, match="other input images or another configuration"):
        other.load_state_dict(loaded.state)
    style.write_bytes(content.read_bytes())
    with pytest.raises(ImpastoError, match="changed since checkpoint"):
        resume(ckpt, weights=tiny_weights())
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(ImpastoError, match="is damaged .its checksum does not match"):
        load_checkpoint(bad)
    state = dict(loaded.state, version="0.0.1")
    with pytest.raises(ImpastoError, match=f"saved by impasto 0.0.1, this is {__version__}"):
        StyleTransfer(content, [content], BASE, weights=tiny_weights()).load_state_dict(state)


def test_the_streamed_file_keeps_its_layout_and_a_buffered_one_still_loads(
    small_images: tuple[Path, Path], tiny_weights: Callable[..., VGGWeights], tmp_path: Path
) -> None:
    import hashlib
    import io

    from impasto.checkpoint import CHECKPOINT_FORMAT, MAGIC

    content, style = small_images
    ckpt = _checkpoint_at(3, small_images, tiny_weights(), tmp_path / "run.ckpt")
    data = ckpt.read_bytes()
    head = len(MAGIC)
    assert data.startswith(MAGIC) and data[head + 64 : head + 65] == b"\n"
    assert data[head : head + 64] == hashlib.sha256(data[head + 65 :]).hexdigest().encode("ascii")
    # A checkpoint serialised whole in memory first (how impasto wrote them before they were streamed,
    # e.g. a print resumed across sessions) reads the same.
    loaded = load_checkpoint(ckpt)
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": __version__, "config": loaded.config.to_dict(),
                "content": loaded.content, "styles": list(loaded.styles), "sha256": list(loaded.sha256),
                "state": loaded.state, "extra": {}}, buf)
    old = tmp_path / "buffered.ckpt"
    old.write_bytes(MAGIC + hashlib.sha256(buf.getvalue()).hexdigest().encode("ascii") + b"\n" + buf.getvalue())
    again = load_checkpoint(old)
    assert again.step == 3 and torch.equal(again.state["pixels"], loaded.state["pixels"])
