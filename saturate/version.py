"""The version of saturate: the one place it is written (pyproject.toml reads it from here).

A constant rather than an `importlib.metadata` lookup: that import (email.*, zipfile) costs ~25 ms of
CPU at the start of every command, and `saturate load` counts its start-up in its CPU per request.
"""

from __future__ import annotations

__version__ = "0.1.0"


def saturate_version() -> str:
    """The version recorded in result files and shown by ``saturate --version``."""
    return __version__
