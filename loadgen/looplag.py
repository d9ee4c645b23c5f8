"""The client's own share of a latency, measured per window.

A completion is recorded only when the event loop gets to it: every request's latency includes
the time its ready callback waited behind others in the loop, and the client's own work for it.
`LoopLagProbe` measures the first directly: every `PERIOD_S` it schedules a callback
(`loop.call_soon`) and notes how long the callback waited before it ran, which is what a
completion ready at that instant waits. The level then reports

    client.own_latency_us = client CPU per request (all the client's work for one request)
                            + mean event-loop wait,

an estimate (upper-bounded by the latency itself) of how much of each reported latency is the
client's, not the server's or the network's; both parts are kept beside it in the run JSON.
The probe costs one callback every 20 ms (50 samples in a 1 s window; every 5 ms cost ~0.9% of a core in
wake-ups, a quarter of a 20 req/s open loop's client CPU). Under the threaded driver
(loadgen/threaded.py) the loop only hosts the probe and the window clock, so the wait it measures is
how long a thread ready to run waits for the GIL: the same quantity, the client's share of a latency.
"""

from __future__ import annotations

import asyncio
import time

PERIOD_S = 0.02


class LoopLagProbe:
    """Samples the event loop's ready-queue wait; `take()` hands over (sum ns, samples) since last."""

    def __init__(self) -> None:
        self._sum = 0
        self._n = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start sampling on the running loop (idempotent)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._handle = self._loop.call_later(PERIOD_S, self._arm)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._loop, self._handle = None, None

    def _arm(self) -> None:
        if self._loop is not None:
            self._loop.call_soon(self._hit, time.perf_counter_ns())

    def _hit(self, armed_ns: int) -> None:
        self._sum += time.perf_counter_ns() - armed_ns
        self._n += 1
        if self._loop is not None:
            self._handle = self._loop.call_later(PERIOD_S, self._arm)

    def take(self) -> tuple[int, int]:
        out = (self._sum, self._n)
        self._sum = self._n = 0
        return out
