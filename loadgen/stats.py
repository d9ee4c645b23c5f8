"""Latency statistics exactly as perf_analyzer computes them (``SummarizeLatency``, ``GetMeanAndStdDev``).

- Percentiles: latencies sorted ascending, index ``floor(p/100 * (n-1) + 0.5)`` (computed in double
  precision like PA's ``size_t index = (p / 100.0) * (n - 1) + 0.5``), no interpolation. Always
  p50, p90, p95, p99, plus ``--percentile`` when given.
- Average: integer mean in ns (sum // n).
- Std: sample standard deviation (n - 1) of the integer deviations from that integer mean, in ns,
  truncated; None for a single latency (PA prints UINT64_MAX there). Computed exactly in integers
  (no overflow, unlike PA's uint64 sum of squares).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from loadgen.result import STANDARD_PERCENTILES, I64Array, LatencySummary

_SPLIT = 20  # bits; see _sum_squares


def percentile_index(p: float, n: int) -> int:
    """perf_analyzer's nearest-rank index into ``n`` sorted values: ``floor(p/100*(n-1) + 0.5)``."""
    if n <= 0:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is outside 0..100")
    return int((p / 100.0) * (n - 1) + 0.5)


def percentile_set(extra: int | None = None) -> tuple[int, ...]:
    """The percentiles perf_analyzer reports, sorted: 50, 90, 95, 99 and ``extra`` (--percentile)."""
    ps = set(STANDARD_PERCENTILES)
    if extra is not None:
        if not 1 <= extra <= 99:
            raise ValueError(f"--percentile must be between 1 and 99, got {extra}")
        ps.add(int(extra))
    return tuple(sorted(ps))


def as_sorted(latencies_ns: I64Array | Sequence[int]) -> I64Array:
    """A sorted int64 copy of the latencies."""
    return np.sort(np.asarray(latencies_ns, dtype=np.int64), kind="stable")


def merge_sorted(arrays: Iterable[I64Array]) -> I64Array:
    """Concatenate latency arrays (e.g. the last 3 windows, or K processes) and sort."""
    parts = [np.asarray(a, dtype=np.int64) for a in arrays]
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return as_sorted(np.concatenate(parts))


def _sum_squares(d: I64Array) -> int:
    """Exact Σ d² as a Python int for int64 ``d`` with |d| < 2**40 (~18 min in ns), vectorised.

    d = hi·2^20 + lo with 0 ≤ lo < 2^20, so d² = hi²·2^40 + 2·hi·lo·2^20 + lo²; each term is < 2^40
    and chunks of 2^22 values keep every int64 partial sum below 2^63.
    """
    total = 0
    chunk = 1 << 22
    for i in range(0, d.size, chunk):
        part = d[i : i + chunk]
        hi = part >> _SPLIT
        lo = part & ((1 << _SPLIT) - 1)
        total += (
            (int(np.sum(hi * hi)) << (2 * _SPLIT))
            + (int(np.sum(hi * lo)) << (_SPLIT + 1))
            + int(np.sum(lo * lo))
        )
    return total


def mean_std_ns(latencies_ns: I64Array) -> tuple[int, int | None]:
    """(integer mean, truncated sample std or None for one value) in ns, as perf_analyzer computes them."""
    lat = np.asarray(latencies_ns, dtype=np.int64)
    n = int(lat.size)
    if n == 0:
        raise ValueError("mean of no latencies")
    avg = int(np.sum(lat)) // n
    if n == 1:
        return avg, None
    d = lat - np.int64(avg)
    if d.size and int(np.max(np.abs(d))) >= 1 << 40:  # beyond the vectorised exact range: plain ints
        sq = sum(int(x) * int(x) for x in d.tolist())
    else:
        sq = _sum_squares(d)
    return avg, math.isqrt(sq // (n - 1))


def summarize(
    latencies_ns: I64Array | Sequence[int], extra_percentile: int | None = None, *, presorted: bool = False
) -> LatencySummary | None:
    """avg, std, min, max, count and the percentiles of ``latencies_ns``; None when there are none."""
    s = np.asarray(latencies_ns, dtype=np.int64) if presorted else as_sorted(latencies_ns)
    n = int(s.size)
    if n == 0:
        return None
    avg, std = mean_std_ns(s)
    return LatencySummary(
        percentiles_ns={p: int(s[percentile_index(p, n)]) for p in percentile_set(extra_percentile)},
        avg_ns=avg,
        std_ns=std,
        min_ns=int(s[0]),
        max_ns=int(s[-1]),
        count=n,
    )
