"""The drift-free schedule with the real clock: counts, grid, missed ticks not bunched."""

from __future__ import annotations

import itertools
import threading
import time

from monitors.sampler import run_schedule

MS = 1_000_000


def test_duration_gives_exact_tick_count_on_grid() -> None:
    stamps: list[int] = []

    def tick(k: int) -> int:
        stamps.append(time.perf_counter_ns())
        return 1

    st = run_schedule(tick, 50 * MS, threading.Event(), duration_ns=500 * MS)
    assert st.ticks == 10 and st.rows == 10
    # drift-free: the last tick is ~450 ms after the first, not 450 ms + accumulated work
    assert abs((stamps[-1] - stamps[0]) - 450 * MS) < 30 * MS


def test_late_ticks_are_counted_not_bunched() -> None:
    stamps: list[tuple[int, int]] = []

    def tick(k: int) -> int:
        stamps.append((k, time.perf_counter_ns()))
        if k == 2:
            time.sleep(0.23)  # blocks ~4.6 intervals
        return 1

    st = run_schedule(tick, 50 * MS, threading.Event(), duration_ns=800 * MS)
    assert st.missed >= 3
    assert st.ticks + st.missed <= 16
    ks = [k for k, _ in stamps]
    assert ks == sorted(set(ks))  # each grid index at most once
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(stamps)]
    assert min(gaps) > 15 * MS  # no burst of catch-up samples after the stall
    t0 = stamps[0][1]
    for k, t in stamps[4:]:  # back on the grid: sample k near t0 + k*interval
        assert abs(t - (t0 + k * 50 * MS)) < 15 * MS


def test_stop_event_ends_promptly() -> None:
    stop = threading.Event()
    threading.Timer(0.15, stop.set).start()
    t0 = time.monotonic()
    st = run_schedule(lambda k: 1, 50 * MS, stop)
    assert time.monotonic() - t0 < 0.5
    assert 2 <= st.ticks <= 5
