"""Colour spaces for the judges: CIELAB lives with the other colour transforms in
:mod:`impasto.losses.color` (the tone-placed palette start uses it too)."""

from __future__ import annotations

from impasto.losses.color import srgb_to_lab

__all__ = ["srgb_to_lab"]
