"""Flag values every scan command parses the same way: batch sizes (``--batch-sizes a,b,c`` or
``--batch-range LO:HI``) and concurrencies (``--concurrency 1,2,4`` or a perf_analyzer range ``1:8:1``).

Owned here so that ``scan direct``, ``scan server`` and ``demo`` read one grammar; bad values are a
one-line :class:`~saturate.errors.ConfigError` (exit 2).
"""

from __future__ import annotations

from collections.abc import Sequence

from loadgen.config import parse_range
from saturate.errors import ConfigError


def parse_concurrency(text: str) -> tuple[int, ...]:
    """``1,2,4,8`` or a perf_analyzer range ``1:8[:step]``; ConfigError when empty or below 1."""
    if ":" in text:
        return tuple(int(v) for v in parse_range(text, "--concurrency", integer=True).values())
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ConfigError("the concurrency list is empty; give e.g. --concurrency 1,2,4,8")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"--concurrency {text!r}: expected integers like 1,2,4 or a range 1:8") from None
    if min(values) < 1:
        raise ConfigError(f"--concurrency {text!r}: every value must be at least 1")
    return values


def parse_batch_sizes(text: str) -> list[int]:
    """``"1,2,4"`` → [1, 2, 4]; raises ValueError on an empty list or a size below 1."""
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise ValueError("the batch list is empty; give e.g. --batch-sizes 1,2,4")
    sizes: list[int] = []
    for p in parts:
        if not p.lstrip("-").isdigit():
            raise ValueError(f"batch size {p!r} is not an integer; give e.g. --batch-sizes 1,2,4")
        value = int(p)
        if value < 1:
            raise ValueError(f"batch size {value} must be at least 1")
        sizes.append(value)
    return sizes


def powers_of_two(spec: str) -> list[int]:
    """``"1:2048"`` → [1, 2, 4, …, 2048]: the powers of two in [lo, hi] (lo rounded up to one)."""
    lo_s, sep, hi_s = spec.partition(":")
    if not sep or not lo_s.strip().isdigit() or not hi_s.strip().isdigit():
        raise ValueError(f"batch range {spec!r} is not LO:HI; give e.g. --batch-range 1:2048")
    lo, hi = int(lo_s), int(hi_s)
    if lo < 1 or hi < lo:
        raise ValueError(f"batch range {spec!r} needs 1 <= LO <= HI")
    out: list[int] = []
    b = 1
    while b <= hi:
        if b >= lo:
            out.append(b)
        b *= 2
    if not out:
        raise ValueError(f"batch range {spec!r} holds no power of two")
    return out


def batch_sizes_from(batch_range: str | None, batch_sizes: str | None, default: Sequence[int]) -> list[int]:
    """The batch sizes of ``--batch-range LO:HI`` or ``--batch-sizes a,b,c`` (else ``default``);
    a bad value is a one-line :class:`~saturate.errors.ConfigError`."""
    try:
        if batch_range is not None:
            return powers_of_two(batch_range)
        if batch_sizes is not None:
            return parse_batch_sizes(batch_sizes)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return list(default)
