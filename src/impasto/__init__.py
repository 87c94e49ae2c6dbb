"""impasto: neural style transfer after Gatys, Ecker and Bethge.

The public API: :class:`Config`, :func:`stylize`, :func:`stylize_iter`, :class:`Progress`,
:class:`StyleTransfer`, :class:`ImpastoError`, and for checkpoints :mod:`impasto.checkpoint`. The
package reads top-down: ``io`` -> ``vgg`` -> ``losses`` -> ``objective`` -> ``optim`` -> ``engine`` ->
front-ends (``cli``, ``studio``, ``batch``, ``video``, ``viz``, ``bench``); see README, "How the code is
laid out".
"""

from __future__ import annotations

__version__ = "0.1.0"

from impasto.config import Config  # noqa: E402
from impasto.engine import Progress, StyleTransfer, stylize, stylize_iter  # noqa: E402
from impasto.errors import ImpastoError  # noqa: E402

__all__ = ["Config", "ImpastoError", "Progress", "StyleTransfer", "__version__", "stylize", "stylize_iter"]
