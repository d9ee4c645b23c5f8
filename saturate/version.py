"""The installed version of saturate."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def saturate_version() -> str:
    """Version of the installed distribution, or ``0+unknown`` when run from a bare tree."""
    try:
        return version("saturate")
    except PackageNotFoundError:
        return "0+unknown"
