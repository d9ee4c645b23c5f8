"""The drift-free schedule: sample k is due at start + k*interval; late ticks are skipped and counted.

A tick that runs late by a whole interval or more does not cause a burst of catch-up samples: the
ticks that passed are counted in ``missed`` and sampling resumes on the grid.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class ScheduleStats:
    """What a run did: ticks sampled, ticks missed, rows written, seconds from first to last tick."""

    ticks: int = 0
    missed: int = 0
    rows: int = 0
    first_ns: int = 0
    last_ns: int = 0

    @property
    def span_s(self) -> float:
        return (self.last_ns - self.first_ns) / 1e9

    @property
    def rate_hz(self) -> float:
        """Achieved tick rate over the run (ticks-1 intervals between first and last)."""
        return (self.ticks - 1) / self.span_s if self.ticks > 1 and self.span_s > 0 else 0.0


def run_schedule(tick: Callable[[int], int], interval_ns: int, stop: threading.Event,
                 duration_ns: int | None = None, stats: ScheduleStats | None = None,
                 clock: Callable[[], int] = time.perf_counter_ns) -> ScheduleStats:
    """Call ``tick(k)`` (returns rows written) at start + k*interval until ``stop`` or ``duration``.

    Sample k is taken only if k*interval < duration, so ``--duration 5 --interval 0.1`` gives 50.
    """
    st = stats if stats is not None else ScheduleStats()
    t0 = clock()
    k = 0
    while not stop.is_set():
        due = t0 + k * interval_ns
        if duration_ns is not None and k * interval_ns >= duration_ns:
            break
        now = clock()
        if now < due and stop.wait((due - now) / 1e9):
            break
        late = clock() - due
        if late >= interval_ns:
            skip = late // interval_ns
            st.missed += skip
            k += skip
            if duration_ns is not None and k * interval_ns >= duration_ns:
                break
        st.rows += tick(k)
        st.ticks += 1
        now = clock()
        if st.ticks == 1:
            st.first_ns = now
        st.last_ns = now
        k += 1
    return st
