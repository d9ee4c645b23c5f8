"""The ``Source`` protocol: one small class per tool behind it."""

from __future__ import annotations

from typing import Protocol

from monitors.schema import Reading


class Source(Protocol):
    """A thing that can be sampled. ``open`` raises ToolMissingError when the tool is absent."""

    name: str

    def open(self) -> None:
        """Find the tool and its devices; raise ``ToolMissingError`` (one line) when unusable."""

    def sample(self) -> list[Reading]:
        """The latest values, one Reading per device. Must be cheap: it runs on every tick."""

    def close(self) -> None:
        """Release the tool (stop subprocesses, shut libraries down). Safe to call twice."""


def parse_number(text: object) -> float | None:
    """A number from tool output: '45', '45 %', '631.95 W', '(1269Mhz)', '[N/A]' -> None."""
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        return float(text)
    if not isinstance(text, str):
        return None
    s = text.strip().strip("()")
    for unit in (" %", "%", " MiB", " MB", " W", " MHz", "Mhz", "MHz", " C", " GT/s"):
        if s.endswith(unit):
            s = s[: -len(unit)].strip()
            break
    try:
        return float(s)
    except ValueError:
        return None
