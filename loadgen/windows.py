"""A level's measurement windows: their summaries, K processes' parts combined, and the accumulator.

A request belongs to the window in which it **completes**: ``start <= end_ns <= end`` (a request ending
exactly on an edge counts in the earlier window); one ending before the level's first window is
dropped, one ending after the current edge waits for the next window (:class:`loadgen.drivers.Recorder`).
:class:`Stabilizer` collects a level's windows and asks :mod:`loadgen.stability` (the rule) when it is
done; :func:`loadgen.level.build_level` merges them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from loadgen.level import build_level
from loadgen.result import LevelResult, Mode, WindowStats, WindowSummary
from loadgen.stability import LevelContext, StabilityRule, done, is_stable, over_threshold
from loadgen.stats import summarize


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
        return done(self.summaries, self.rule)

    def result(self, interrupted: str | None = None) -> LevelResult:
        """The level: merge of the last 3 windows (fewer if fewer exist), flagged as it ended.

        ``interrupted`` (e.g. "server stopped responding: ...") ends the level early with what was
        measured; it is then marked ``stability="interrupted"`` and invalid.
        """
        ctx = LevelContext(self.rule, self.mode, self.value, self.batch_size, self.processes)
        return build_level(self.windows, self.summaries, ctx, interrupted)
