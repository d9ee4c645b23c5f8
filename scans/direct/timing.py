"""Statistics of a direct batch scan, computed from the raw per-call times (int ns).

Sync mode (calls back to back, one batch in flight), per batch size ``b`` with ``n`` timed calls ``t_i``:

- latency mean, sample std (``n - 1``), **SEM = std / sqrt(n)** (computed from ``n``, never assumed),
  median and p95 (perf_analyzer's nearest rank, ``floor(p/100·(n-1) + 0.5)``, no interpolation);
- **items/s = n·b / Σt_i** (total items over total time, *not* the mean of per-call ``b/t_i``, which
  over-weights fast calls) and its SEM by first-order error propagation of the mean time:
  ``T = b / t̄`` so ``SEM(T) = T · SEM(t) / t̄``;
- the DLI benchmark's figures: latency = median, average time of a pass = mean, batch FPS = b / median.

Async mode (K batches in flight): one wall-clock span covers all ``n`` calls, so the DLI figures are
average time = wall / n and FPS = n·b / wall; per-call latencies still give the median and percentiles.
The items/s SEM there propagates the spread of the per-call times through the ``K/t̄`` occupancy model
(``SEM(T) = T · SEM(t) / t̄``); it is a statistical error only, not the wall-clock jitter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loadgen.stats import percentile_index


@dataclass(frozen=True)
class TimingSummary:
    """Per-batch summary of ``n`` timed calls; times in ns (floats), throughput in items/s."""

    batch_size: int
    n: int
    mean_ns: float
    std_ns: float
    sem_ns: float
    median_ns: float
    p95_ns: float
    min_ns: float
    max_ns: float
    items_per_s: float
    items_per_s_sem: float
    batch_fps: float
    """DLI's BATCH FPS: batch / median latency."""
    percentiles_ns: dict[int, int]
    """p50/p90/p95/p99 by nearest rank (integer ns), as the run JSON's ``latency_us`` holds them."""
    wall_ns: int
    """Sync: Σt_i. Async: first send → last completion."""
    avg_time_ns: float
    """DLI's average time of a single pass: wall / n (= mean latency in sync mode)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON block (µs floats with 3 decimals; items/s as computed)."""

        def us(ns: float) -> float:
            return round(ns / 1000.0, 3)

        return {
            "trials": self.n,
            "mean_us": us(self.mean_ns),
            "std_us": us(self.std_ns),
            "sem_us": us(self.sem_ns),
            "median_us": us(self.median_ns),
            "p95_us": us(self.p95_ns),
            "min_us": us(self.min_ns),
            "max_us": us(self.max_ns),
            "items_per_s": self.items_per_s,
            "items_per_s_sem": self.items_per_s_sem,
            "batch_fps": self.batch_fps,
            "wall_us": us(self.wall_ns),
            "avg_time_us": us(self.avg_time_ns),
        }


def summarize_times(times_ns: Sequence[int], batch_size: int, wall_ns: int | None = None) -> TimingSummary:
    """Summary of per-call times; ``wall_ns`` given (async mode) sets items/s = n·b / wall instead of Σt."""
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    t = np.asarray(times_ns, dtype=np.float64)
    n = int(t.size)
    if n == 0:
        raise ValueError("no timed calls to summarize")
    if np.any(t <= 0):
        raise ValueError("call times must be positive")
    mean = float(t.mean())
    std = float(t.std(ddof=1)) if n > 1 else 0.0
    sem = std / math.sqrt(n)
    ordered = np.sort(t)
    median = float(np.median(t))
    p95 = float(ordered[percentile_index(95, n)])
    total = int(t.sum()) if wall_ns is None else int(wall_ns)
    if total <= 0:
        raise ValueError("wall time must be positive")
    items_per_s = n * batch_size * 1e9 / total
    items_sem = items_per_s * sem / mean
    return TimingSummary(
        batch_size=batch_size,
        n=n,
        mean_ns=mean,
        std_ns=std,
        sem_ns=sem,
        median_ns=median,
        p95_ns=p95,
        min_ns=float(ordered[0]),
        max_ns=float(ordered[-1]),
        items_per_s=items_per_s,
        items_per_s_sem=items_sem,
        batch_fps=batch_size * 1e9 / median,
        percentiles_ns={q: int(ordered[percentile_index(q, n)]) for q in (50, 90, 95, 99)},
        wall_ns=total,
        avg_time_ns=total / n,
    )
