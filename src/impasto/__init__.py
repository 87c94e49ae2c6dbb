"""impasto: neural style transfer after Gatys, Ecker and Bethge.

The public API: :class:`Config`, :func:`stylize`, :func:`stylize_iter`, :class:`Progress`,
:class:`StyleTransfer`, :class:`ImpastoError`, and for checkpoints :mod:`impasto.checkpoint`. The
package reads top-down: ``io`` -> ``vgg`` -> ``losses`` -> ``objective`` -> ``optim`` -> ``engine`` ->
front-ends (``cli``, ``studio``, ``batch``, ``video``, ``viz``, ``bench``); see README, "How the code is
laid out".
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from impasto.errors import ImpastoError  # noqa: E402

if TYPE_CHECKING:
    from impasto.config import Config
    from impasto.engine import Progress, StyleTransfer, stylize, stylize_iter

_LAZY = {"Config": "impasto.config", "Progress": "impasto.engine", "StyleTransfer": "impasto.engine",
         "stylize": "impasto.engine", "stylize_iter": "impasto.engine"}


def __getattr__(name: str) -> Any:
    """The engine's names, imported on first use: ``import impasto`` (or a light submodule such as the
    studio's HTTP client) does not load torch (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'impasto' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

__all__ = ["Config", "ImpastoError", "Progress", "StyleTransfer", "__version__", "stylize", "stylize_iter"]
