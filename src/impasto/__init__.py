"""impasto: neural style transfer after Gatys, Ecker and Bethge.

The public API: :class:`Config`, :func:`stylize`, :func:`stylize_iter`, :class:`Progress`,
:class:`StyleTransfer`, :class:`ImpastoError`, and for checkpoints :mod:`impasto.checkpoint`. The
package reads top-down: ``io`` -> ``vgg`` -> ``losses`` -> ``objective`` -> ``optim`` -> ``engine`` ->
``jobs`` -> front-ends (``cli``, ``studio``, ``batch``, ``video``); see README, "How the code is laid
out".

The names are imported on first use (PEP 562), so ``import impasto`` -- or a small part of it, such as
the studio's HTTP client -- does not load torch.
"""

from __future__ import annotations

# No imports at module level: a Ctrl-C right after launch must reach impasto.cli.main's handler, and
# every module imported here would widen the window before it (mypy reads TYPE_CHECKING as True).
TYPE_CHECKING = False
__version__ = "0.1.0"

_LAZY = {
    "Config": "impasto.config", "ImpastoError": "impasto.errors", "Progress": "impasto.engine",
    "StyleTransfer": "impasto.engine", "stylize": "impasto.engine", "stylize_iter": "impasto.engine",
}

if TYPE_CHECKING:
    from impasto.config import Config
    from impasto.engine import Progress, StyleTransfer, stylize, stylize_iter
    from impasto.errors import ImpastoError


def __getattr__(name: str) -> object:
    import importlib

    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'impasto' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["Config", "ImpastoError", "Progress", "StyleTransfer", "__version__", "stylize", "stylize_iter"]
