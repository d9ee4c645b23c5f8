"""Statistics of a multi-process run: per process, pooled, and the three DLBS throughputs.

For process ``p`` with ``n_p`` measured iterations of ``b`` items (a direct call, or one request of
batch ``b``), per-iteration times ``t_p,i`` and its own measured window ``W_p`` (first send → last
completion, as DeepSparse's ``max(end) - min(start)``):

- **own** (per process, then summed): ``items_p / W_p``, ``own = Σ_p items_p / W_p``. Processes do not
  start and stop at exactly the same time, so the sum is optimistic (DLBS's "own throughput").
- **effective** (synchronised window): ``Σ_p items_p / S`` where ``S`` runs from the release of the
  start-of-measurement barrier to the release of the end barrier; every ``W_p`` lies inside ``S``, so
  ``own ≥ effective`` always (DLBS times from before its start barrier to after its end barrier).
- **adjusted** (trimmed batch times): drop the first and last ``k`` times of each process
  (``k = min(trim, (n_p - 1) // 2)``), ``T = mean_p(mean(trimmed_p))`` and
  ``adjusted = Σ_p c_p · b / T`` where ``c_p`` is the number in flight (DLBS's GPUs per process).

Latency statistics (ms) per process and over the pooled times of all processes: mean, median, sample
std, min, max and the 25/50/75/90/95/99/99.9th percentiles by nearest rank (perf_analyzer's index).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loadgen.stats import percentile_index

PERCENTILES: tuple[float, ...] = (25, 50, 75, 90, 95, 99, 99.9)


def latency_ms(times_ns: Sequence[int]) -> dict[str, float]:
    """mean/median/std/min/max and percentiles of ``times_ns``, in ms (keys like ``p99.9``)."""
    t = np.sort(np.asarray(times_ns, dtype=np.float64))
    n = int(t.size)
    if n == 0:
        raise ValueError("no times to summarize")
    out = {
        "count": float(n),
        "mean": float(t.mean()) / 1e6,
        "median": float(np.median(t)) / 1e6,
        "std": (float(t.std(ddof=1)) if n > 1 else 0.0) / 1e6,
        "min": float(t[0]) / 1e6,
        "max": float(t[-1]) / 1e6,
    }
    for q in PERCENTILES:
        out[f"p{q:g}"] = float(t[percentile_index(q, n)]) / 1e6
    return out


def trimmed(times_ns: Sequence[int], trim: int) -> tuple[list[int], int]:
    """``times_ns`` without its first and last ``k`` entries, ``k = min(trim, (n - 1) // 2)``."""
    n = len(times_ns)
    k = max(0, min(trim, (n - 1) // 2))
    return list(times_ns[k:n - k]), k


@dataclass(frozen=True)
class ProcessMeasure:
    """What one process measured (the inputs of the aggregate)."""

    rank: int
    times_ns: Sequence[int]
    completed: int
    items_per_iteration: int
    in_flight: int
    window_start_ns: int
    window_end_ns: int

    @property
    def items(self) -> int:
        return self.completed * self.items_per_iteration

    @property
    def window_ns(self) -> int:
        return self.window_end_ns - self.window_start_ns


def process_summary(m: ProcessMeasure, trim: int) -> dict[str, Any]:
    """One process's block of the JSON: items, window, items/s, latency (ms), trimmed mean."""
    kept, k = trimmed(m.times_ns, trim)
    return {
        "rank": m.rank,
        "iterations": m.completed,
        "items": m.items,
        "window_s": m.window_ns / 1e9,
        "items_per_s": m.items * 1e9 / m.window_ns if m.window_ns > 0 else 0.0,
        "latency_ms": latency_ms(m.times_ns),
        "trim": k,
        "trimmed_mean_ms": float(np.mean(kept)) / 1e6,
        "in_flight": m.in_flight,
    }


def aggregate(measures: Sequence[ProcessMeasure], sync_start_ns: int, sync_end_ns: int,
              trim: int) -> dict[str, Any]:
    """Own, effective and adjusted throughput plus pooled latency (see the module docstring)."""
    if not measures:
        raise ValueError("no processes to aggregate")
    sync_ns = sync_end_ns - sync_start_ns
    if sync_ns <= 0:
        raise ValueError("the synchronised window must be positive")
    own = sum(m.items * 1e9 / m.window_ns for m in measures if m.window_ns > 0)
    items = sum(m.items for m in measures)
    means = [float(np.mean(trimmed(m.times_ns, trim)[0])) for m in measures]
    adjusted_mean_ns = float(np.mean(means))
    adjusted = sum(m.in_flight * m.items_per_iteration for m in measures) * 1e9 / adjusted_mean_ns
    pooled = [t for m in measures for t in m.times_ns]
    return {
        "processes": len(measures),
        "items": items,
        "iterations": sum(m.completed for m in measures),
        "own_items_per_s": own,
        "effective_items_per_s": items * 1e9 / sync_ns,
        "adjusted_items_per_s": adjusted,
        "adjusted_mean_ms": adjusted_mean_ns / 1e6,
        "sync_window_s": sync_ns / 1e9,
        "latency_ms": latency_ms(pooled),
    }
