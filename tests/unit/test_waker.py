"""loadgen/waker.py: the open-loop driver's wake-up never comes before the send time, on the timerfd
(Linux) and on the asyncio.sleep fallback, under asyncio and uvloop. How late it comes is measured in
benchmarks/open_loop_lag.py, not asserted here."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest
import uvloop

from loadgen.waker import SleepWaker, TimerfdWaker, Waker, make_waker


async def _wake_times(waker: Waker, gaps_ns: list[int]) -> list[tuple[int, int]]:
    out = []
    for gap in gaps_ns:
        target = time.perf_counter_ns() + gap
        await waker.until(target)
        out.append((target, time.perf_counter_ns()))
    waker.close()
    return out


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop])
@pytest.mark.parametrize("kind", ["auto", "sleep"])
def test_never_wakes_before_the_target(loop_factory: object, kind: str) -> None:
    async def go() -> tuple[Waker, list[tuple[int, int]]]:
        waker = make_waker() if kind == "auto" else SleepWaker()
        return waker, await _wake_times(waker, [0, -1000, 50_000, 300_000, 1_200_000, 2_500_000])

    loop = loop_factory()  # type: ignore[operator]
    try:
        waker, times = loop.run_until_complete(go())
    finally:
        loop.close()
    if kind == "auto" and sys.platform.startswith("linux"):
        assert isinstance(waker, TimerfdWaker)
    assert all(woke >= target for target, woke in times)


def test_cancelled_wait_leaves_the_waker_usable() -> None:
    async def go() -> bool:
        waker = make_waker()
        task = asyncio.create_task(waker.until(time.perf_counter_ns() + 10_000_000_000))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        target = time.perf_counter_ns() + 1_000_000
        await waker.until(target)
        waker.close()
        return time.perf_counter_ns() >= target

    assert asyncio.run(go())
