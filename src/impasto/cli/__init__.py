"""Command-line front-end: ``impasto CONTENT STYLE [STYLE...] -o OUT [options]`` and its subcommands.

:func:`main` is the console script's entry (``impasto.cli:main``). It imports nothing heavy itself: the
commands (and torch behind them) are imported inside it, where a Ctrl-C during the imports, a closed
pipe or a full disk on standard output end the program with one line and a plain exit status instead of
a traceback.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing's: importing typing takes tens of ms of the Ctrl-C window
if TYPE_CHECKING:
    from collections.abc import Sequence

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE
"""What a shell reports for a tool that a closed pipe ended (``impasto presets -v | head``)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 failed jobs, 2 bad input, 130 interrupted)."""
    try:
        from impasto.cli.run import main as run_main

        code = run_main(argv)
        _flush(sys.stdout)
        return code
    except KeyboardInterrupt:
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the message
        _say("impasto: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        silence_stdout()
        return EXIT_BROKEN_PIPE
    except _StdoutError as e:
        silence_stdout()
        _say(f"impasto: error: cannot write to standard output: {e}")
        return EXIT_USAGE


class _StdoutError(Exception):
    pass


def _flush(stream: object) -> None:
    """Flush standard output now, where its failure can be reported (at exit it would be a traceback)."""
    flush = getattr(stream, "flush", None)
    if flush is None:
        return
    try:
        flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        raise _StdoutError(e.strerror or str(e)) from None


def silence_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's own flush at exit cannot fail a second time."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (captured in tests): nothing to silence
        pass


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


__all__ = ["main", "silence_stdout"]
