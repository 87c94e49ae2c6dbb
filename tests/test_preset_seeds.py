"""Each preset against its write-up's own text (``../shared/seeds``, or ``$IMPASTO_SEEDS``).

For every number or name a write-up states, the preset records the line that states it
(:class:`impasto.presets.Stated`); here that line is found in the seed file, the literal in the line, and
the value in the preset's configuration. Readings (where the write-up is silent) are listed apart and
must say "reading:". Skips cleanly where the seeds folder is absent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from impasto.cli import main
from impasto.presets import PRESETS, Stated, preset_config
from impasto_test_support import SHARED_SEEDS

SOURCED = [name for name, p in PRESETS.items() if p.seed]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _seed_text(name: str) -> str:
    path = SHARED_SEEDS / PRESETS[name].seed
    if not path.is_file():
        pytest.skip(f"write-up {path} is not present (set IMPASTO_SEEDS to the seeds folder)")
    return _norm(path.read_text(encoding="utf-8"))


def _number(literal: str) -> float | None:
    """The literal as a number, where it is one ("1×10^{-2}" too)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)×10\^\{(-?\d+)\}", literal)
    if m:
        return float(m.group(1)) * 10.0 ** int(m.group(2))
    try:
        return float(literal)
    except ValueError:
        return None


def _cases() -> list[tuple[str, Stated]]:
    return [(name, s) for name in SOURCED for s in PRESETS[name].stated]


@pytest.mark.parametrize(("name", "stated"), _cases(), ids=lambda v: v if isinstance(v, str) else v.field)
def test_stated_line_is_in_the_write_up_and_the_preset_uses_it(name: str, stated: Stated) -> None:
    text = _seed_text(name)
    assert _norm(stated.quote) in text, f"{name}: quoted line not in {PRESETS[name].seed}: {stated.quote}"
    assert stated.literal in stated.quote
    if stated.field.startswith("cli:"):
        got = PRESETS[name].cli_defaults.get(stated.field[4:])
    else:
        got = getattr(preset_config(name, allow_vgg19=True), stated.field)
    assert got == stated.value, f"{name}.{stated.field}: preset {got!r}, stated {stated.value!r}"
    num = _number(stated.literal)
    if num is not None and isinstance(stated.value, (int, float)) and not isinstance(stated.value, bool):
        # The write-up's number is the preset's, or its square where the weight sits inside an MSE.
        want = num**2 if stated.how.startswith("squared") else num
        assert float(stated.value) == pytest.approx(want, rel=1e-12), (name, stated.field)
    if isinstance(stated.value, tuple) and stated.field.endswith("layers"):
        pass  # layer names: the literal (a write-up's spelling) is in the line; the reading is in `how`.


@pytest.mark.parametrize("name", SOURCED)
def test_the_write_ups_key_numbers_are_all_claimed(name: str) -> None:
    """The numbers that set a write-up's behaviour are each claimed by a Stated line, not left as readings."""
    want = {
        "coursera": {"content_weight", "style_weight", "lr", "steps", "content_layers"},
        "pytorch-stylecnn": {"size", "content_weight", "style_weight", "steps", "content_layers", "style_layers"},
        "tf-tutorial": {"lr", "adam_eps", "steps", "content_layers"},
        "keras-white": {"content_weight", "style_loss", "style_layer_weights", "content_layers", "style_layers"},
    }[name]
    assert want <= {s.field for s in PRESETS[name].stated}


@pytest.mark.parametrize("name", list(PRESETS))
def test_notes_separate_stated_from_readings(name: str) -> None:
    p = PRESETS[name]
    assert all(r.startswith("reading: ") for r in p.readings)
    assert all(d.startswith("departure: ") for d in p.departures)
    stated_fields = {s.field for s in p.stated}
    for r in p.readings:
        assert "the write-up states" not in r
    notes = preset_config(name, allow_vgg19=True).notes
    assert [n for n in notes if n.startswith("the write-up states: ")] == [s.note() for s in p.stated]
    assert [n for n in notes if n.startswith("reading: ")] == list(p.readings)
    assert len(stated_fields) >= (0 if not p.seed else 5)


def test_numbers_not_in_the_write_ups_are_readings() -> None:
    """The issue's list of numbers absent from the write-ups: each appears in a reading, none is 'stated'."""
    absent = {
        "coursera": ["0.2", "average pooling", "0.6", "400"],
        "tf-tutorial": ["1e-2", "1e4", "30", "512", "clip"],
        "keras-white": ["Adam", "learning rate", "steps"],
        "pytorch-stylecnn": ["patiche.jpg", "mean/std"],
    }
    for name, words in absent.items():
        readings = " ".join(PRESETS[name].readings)
        for w in words:
            assert w in readings, (name, w)
    text_001 = _seed_text("pytorch-stylecnn")
    # The write-up shows no ImageNet normalisation, and the preset makes no claim of one.
    assert "Normalize" not in text_001 and "0.485" not in text_001
    assert not any("normalised by the ImageNet mean/std" in n for n in PRESETS["pytorch-stylecnn"].notes)


def test_readings_shown_by_show_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--preset", "keras-white", "--show-config"]) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert any(n.startswith("reading: optimiser Adam") for n in notes)
    assert any(n.startswith("the write-up states: «I found a ratio of 1×10^{-2}") for n in notes)


def test_seeds_folder_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import impasto_test_support as conftest

    monkeypatch.setenv("IMPASTO_SEEDS", str(tmp_path))
    assert conftest.shared_path("IMPASTO_SEEDS", "../shared/seeds") == tmp_path
    monkeypatch.delenv("IMPASTO_SEEDS")
    assert conftest.shared_path("IMPASTO_SEEDS", "../shared/seeds") == (conftest.REPO_ROOT.parent / "shared" / "seeds")


def test_straight_through_clamp_is_the_write_ups_clamped_clone() -> None:
    import torch

    from impasto.objective import straight_through_clamp

    p = torch.tensor([-0.5, 0.25, 1.5], requires_grad=True)
    # The write-up: pastiche = self.pastiche.clone(); pastiche.data.clamp_(0, 1); loss of the clone.
    ref = torch.tensor([-0.5, 0.25, 1.5], requires_grad=True)
    clone = ref.clone()
    clone.data.clamp_(0, 1)
    (clone * torch.tensor([1.0, 2.0, 3.0])).pow(2).sum().backward()
    y = straight_through_clamp(p, 0.0, 1.0)
    assert y.tolist() == [0.0, 0.25, 1.0]
    (y * torch.tensor([1.0, 2.0, 3.0])).pow(2).sum().backward()
    assert p.grad is not None and ref.grad is not None
    assert p.grad.tolist() == ref.grad.tolist() == [0.0, 2.0, 18.0]
    assert p.tolist() == [-0.5, 0.25, 1.5]  # the parameter itself is untouched


def test_pytorch_stylecnn_loss_sees_a_clamped_clone() -> None:
    cfg = preset_config("pytorch-stylecnn")
    assert cfg.clamp is False and cfg.clamp_before_eval is False
    assert cfg.clamp_in_loss is True
