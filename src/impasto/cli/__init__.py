"""Command-line front-end: ``impasto CONTENT STYLE [STYLE...] -o OUT [options]`` and its subcommands."""

from impasto.cli.run import main

__all__ = ["main"]
