"""The one exception type a user sees.

Everything that is the user's fault (a missing file, a bad layer name, an unwritable folder) raises
:class:`ImpastoError` with a message that fits on one line; the CLI prints it and exits with status 2.
"""

from __future__ import annotations


class ImpastoError(Exception):
    """A user-facing error: ``str(err)`` is one line that says what is wrong and how to fix it."""
