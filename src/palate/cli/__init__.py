"""The ``palate`` command-line interface (Typer + Rich); see :mod:`palate.cli.main`."""

from palate.cli.main import app, main

__all__ = ["app", "main"]
