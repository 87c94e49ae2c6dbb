"""impasto: neural style transfer after Gatys, Ecker and Bethge."""

from __future__ import annotations

__version__ = "0.1.0"
