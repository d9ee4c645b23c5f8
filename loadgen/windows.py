"""Measurement windows and perf_analyzer's stability rule (shared/reference/perf_analyzer.md §1).

- A request belongs to the window in which it **completes**: ``start <= end_ns <= end`` (a request
  ending exactly on an edge counts in the earlier window); one ending before the level's first window
  is dropped, one ending after the current edge waits for the next window
  (:class:`loadgen.drivers.Recorder`).
- Stable when at least 3 windows exist and over the last 3 every throughput is > 0 and
  ``max/min <= 1 + s/100`` for throughput **and** for the stabilising latency (average, or
  p``--percentile``). An empty window counts as throughput 0 and infinite latency.
- At most ``max_trials`` windows. Early stop when ``--latency-threshold`` is set and any of the last 3
  windows has a stabilising latency >= the limit.
- Async relaxation (PA ``--async``; our clients are always asynchronous): after max trials, a level
  whose throughput alone is stable counts as stable, flagged ``stability="throughput_only"``.
- The reported numbers merge the last 3 windows (:func:`loadgen.level.build_level`).

``StabilityRule`` is defined in :mod:`loadgen.level` and re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from loadgen.level import LevelContext, StabilityRule, build_level
from loadgen.result import LevelResult, Mode, WindowStats, WindowSummary
from loadgen.stats import summarize

__all__ = [
    "LevelContext",
    "StabilityRule",
    "Stabilizer",
    "combine_processes",
    "is_stable",
    "over_threshold",
    "trial_values",
    "window_summary",
]

def combine_processes(parts: Sequence[WindowStats]) -> WindowStats:
    """One window from K processes' parts of it (same edges): latencies concatenated, counters summed.

    The window spans the earliest start to the latest end; the server delta and GPU samples are the
    first part's that has them (the parent takes them once per window).
    """
    if not parts:
        raise ValueError("no window parts to combine")
    svc = [p.service_ns for p in parts]
    errors: dict[str, int] = {}
    for p in parts:
        for k, v in p.errors.items():
            errors[k] = errors.get(k, 0) + v
    return WindowStats(
        start_ns=min(p.start_ns for p in parts),
        end_ns=max(p.end_ns for p in parts),
        latencies_ns=np.concatenate([p.latencies_ns for p in parts]).astype(np.int64, copy=False),
        service_ns=None if any(s is None for s in svc) else np.concatenate([s for s in svc if s is not None]),
        failed=sum(p.failed for p in parts),
        errors=errors,
        send_ns_total=sum(p.send_ns_total for p in parts),
        recv_ns_total=sum(p.recv_ns_total for p in parts),
        request_ns_total=sum(p.request_ns_total for p in parts),
        sent=sum(p.sent for p in parts),
        delayed=sum(p.delayed for p in parts),
        dropped=sum(p.dropped for p in parts),
        cpu_ns=sum(p.cpu_ns for p in parts),
        loop_lag_ns_total=sum(p.loop_lag_ns_total for p in parts),
        loop_lag_samples=sum(p.loop_lag_samples for p in parts),
        server=next((p.server for p in parts if p.server is not None), None),
        gpu_samples=next((p.gpu_samples for p in parts if p.gpu_samples), []),
    )


# ---------------------------------------------------------------------------------------- rule


def window_summary(w: WindowStats, batch_size: int, percentile: int | None = None) -> WindowSummary:
    return WindowSummary(
        start_ns=w.start_ns,
        end_ns=w.end_ns,
        completed=w.completed,
        failed=w.failed,
        infer_per_s=w.infer_per_s(batch_size),
        latency=summarize(w.latencies_ns, percentile),
        errors=dict(w.errors),
        delayed=w.delayed,
        dropped=w.dropped,
    )


def trial_values(s: WindowSummary, percentile: int | None) -> tuple[float, float]:
    """(throughput, stabilising latency ns) of a window; an empty window is (0, inf) like PA's error pass."""
    if s.latency is None or s.completed == 0:
        return 0.0, math.inf
    return s.infer_per_s, float(s.latency.stabilizing_ns(percentile))


def _ratio_ok(values: Sequence[float], limit: float) -> bool:
    lo, hi = min(values), max(values)
    if lo <= 0 or math.isinf(hi):
        return False
    return hi / lo <= limit


def is_stable(summaries: Sequence[WindowSummary], rule: StabilityRule, *, check_latency: bool = True) -> bool:
    """perf_analyzer's ``DetermineStability`` over the last ``rule.stability_window`` windows."""
    n = rule.stability_window
    if len(summaries) < n:
        return False
    vals = [trial_values(s, rule.percentile) for s in summaries[-n:]]
    thr = [v[0] for v in vals]
    if any(t == 0 for t in thr):
        return False
    limit = 1 + rule.stability_pct / 100
    if not _ratio_ok(thr, limit):
        return False
    return not check_latency or _ratio_ok([v[1] for v in vals], limit)


def over_threshold(summaries: Sequence[WindowSummary], rule: StabilityRule) -> bool:
    """PA's early exit: a limit is set, >= 3 windows, and one of the last 3 is at or over it."""
    n = rule.stability_window
    if not rule.latency_threshold_ms or len(summaries) < n:
        return False
    limit_ns = rule.latency_threshold_ms * 1e6
    return any(trial_values(s, rule.percentile)[1] >= limit_ns for s in summaries[-n:])


@dataclass
class Stabilizer:
    """Feed it one window at a time; ask :meth:`stable`, :meth:`done` and finally :meth:`result`.

    >>> st = Stabilizer(StabilityRule(), mode="concurrency", value=4, batch_size=1)
    >>> while not st.done(): st.add(measure_one_window())        # doctest: +SKIP
    >>> level = st.result()                                        # doctest: +SKIP
    """

    rule: StabilityRule
    mode: Mode
    value: float
    batch_size: int = 1
    processes: int = 1
    windows: list[WindowStats] = field(default_factory=list)
    summaries: list[WindowSummary] = field(default_factory=list)

    def add(self, w: WindowStats) -> WindowSummary:
        """Record a finished window and return its summary (for the progress line)."""
        s = window_summary(w, self.batch_size, self.rule.percentile)
        self.windows.append(w)
        self.summaries.append(s)
        return s

    def stable(self) -> bool:
        return is_stable(self.summaries, self.rule)

    def throughput_stable(self) -> bool:
        return is_stable(self.summaries, self.rule, check_latency=False)

    def over_threshold(self) -> bool:
        return over_threshold(self.summaries, self.rule)

    def done(self) -> bool:
        """True once stable, over the latency limit, or after ``max_trials`` windows."""
        return self.stable() or self.over_threshold() or len(self.windows) >= self.rule.max_trials

    def result(self, interrupted: str | None = None) -> LevelResult:
        """The level: merge of the last 3 windows (fewer if fewer exist), flagged as it ended.

        ``interrupted`` (e.g. "server stopped responding: ...") ends the level early with what was
        measured; it is then marked ``stability="interrupted"`` and invalid.
        """
        return build_level(
            self.windows,
            self.summaries,
            LevelContext(
                self.rule, self.mode, self.value, self.batch_size, self.processes
            ),
            stable=self.stable(),
            throughput_stable=self.throughput_stable(),
            over_threshold=self.over_threshold(),
            interrupted=interrupted,
        )
