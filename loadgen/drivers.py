"""Load drivers: a closed loop (N coroutines keep N requests in flight) and an open loop (a seeded
constant or Poisson schedule fixed before the level), both feeding a `Recorder` that the runner
cuts into windows by completion time.

Open loop latency runs from the **intended** send time (no coordinated omission); the service
time (from the actual send) is kept beside it. A send more than 1 ms late is `delayed` (as
perf_analyzer counts it); a send that would exceed `max_outstanding` is `dropped` (as k6 does).
"""

from __future__ import annotations

import asyncio
import bisect
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from loadgen.clients.base import Client, Payload
from loadgen.looplag import LoopLagProbe
from loadgen.result import WindowStats
from loadgen.waker import Waker, make_waker

DELAY_TOLERANCE_NS = 1_000_000
#: Back-off after a connection-level failure, so a dead server does not spin the client.
FAILURE_BACKOFF_S = 0.01
BACKOFF_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"})


class Recorder:
    """Per-request records in completion order; `cut(edge)` hands over those that ended by `edge`.

    `lock` guards the records against a driver that records from other threads
    (:class:`loadgen.threaded.ThreadedClosedLoop`); `cut` and `reset` always take it. A driver whose
    completions wait elsewhere before they are recorded (the C loops, loadgen.native_loop) sets
    `flush`: called under the lock before every cut and reset, so each window gets exactly the
    requests that completed in it.
    """

    def __init__(self, client: Client, open_loop: bool) -> None:
        self.client = client
        self.open_loop = open_loop
        self.total_completed = 0
        self.total_failed = 0
        self._end: list[int] = []
        self._lat: list[int] = []
        self._svc: list[int] = []
        self._delayed_end: list[int] = []
        self._fail_end: list[int] = []
        self._fail_code: list[str] = []
        self._dropped_at: list[int] = []
        self.sent = 0  # requests sent so far (the drivers count them)
        self._sent_mark = 0
        self._window_start = time.perf_counter_ns()
        self._cpu = time.process_time_ns()
        self._send = client.send_ns
        self._recv = client.recv_ns
        self.probe = LoopLagProbe()  # the drivers start/stop it with the load
        self.lock = threading.Lock()
        self.flush: Callable[[], object] | None = None

    def ok(self, end_ns: int, latency_ns: int) -> None:
        self._end.append(end_ns)
        self._lat.append(latency_ns)
        self.total_completed += 1

    def ok_open(self, end_ns: int, latency_ns: int, service_ns: int, delayed: bool) -> None:
        self._end.append(end_ns)
        self._lat.append(latency_ns)
        self._svc.append(service_ns)
        if delayed:
            self._delayed_end.append(end_ns)
        self.total_completed += 1

    def fail(self, end_ns: int, code: str) -> None:
        self._fail_end.append(end_ns)
        self._fail_code.append(code)
        self.total_failed += 1

    def drop(self, scheduled_ns: int) -> None:
        self._dropped_at.append(scheduled_ns)

    def pending(self) -> int:
        """Requests completed since the last cut."""
        return len(self._end)

    def reset(self, start_ns: int | None = None) -> None:
        """Forget everything recorded so far; the next window starts at `start_ns` (default now)."""
        with self.lock:
            if self.flush is not None:
                self.flush()
            self._reset(start_ns)

    def _reset(self, start_ns: int | None) -> None:
        self._end, self._lat, self._svc, self._delayed_end = [], [], [], []
        self._fail_end, self._fail_code, self._dropped_at = [], [], []
        self._window_start = time.perf_counter_ns() if start_ns is None else start_ns
        self._sent_mark = self.sent
        self._cpu = time.process_time_ns()
        self._send, self._recv = self.client.send_ns, self.client.recv_ns
        self.probe.take()

    def cut(self, edge_ns: int) -> WindowStats:
        """Close the window [previous edge, edge_ns]: requests that ended by `edge_ns` go in it."""
        with self.lock:
            if self.flush is not None:
                self.flush()
            return self._cut(edge_ns)

    def _cut(self, edge_ns: int) -> WindowStats:
        n = bisect.bisect_right(self._end, edge_ns)
        lat = np.asarray(self._lat[:n], dtype=np.int64)
        svc = np.asarray(self._svc[:n], dtype=np.int64) if self.open_loop else None
        del self._end[:n], self._lat[:n]
        if self.open_loop:
            del self._svc[:n]
        nd = bisect.bisect_right(self._delayed_end, edge_ns)
        del self._delayed_end[:nd]
        nf = bisect.bisect_right(self._fail_end, edge_ns)
        errors: dict[str, int] = {}
        for code in self._fail_code[:nf]:
            errors[code] = errors.get(code, 0) + 1
        del self._fail_end[:nf], self._fail_code[:nf]
        ndrop = sum(1 for t in self._dropped_at if t <= edge_ns)
        self._dropped_at = [t for t in self._dropped_at if t > edge_ns]
        cpu, send, recv = time.process_time_ns(), self.client.send_ns, self.client.recv_ns
        lag_ns, lag_n = self.probe.take()
        part = WindowStats(
            start_ns=self._window_start, end_ns=edge_ns, latencies_ns=lat, service_ns=svc, failed=nf,
            errors=errors, delayed=nd, dropped=ndrop, send_ns_total=send - self._send,
            recv_ns_total=recv - self._recv, cpu_ns=cpu - self._cpu, sent=self.sent - self._sent_mark,
            loop_lag_ns_total=lag_ns, loop_lag_samples=lag_n)
        self._sent_mark = self.sent
        self._window_start, self._cpu, self._send, self._recv = edge_ns, cpu, send, recv
        return part


W = TypeVar("W")


class LoopState(Generic[W]):
    """What a closed loop's N workers (W: asyncio tasks or threads) share: client, payloads, recorder."""

    def __init__(self, client: Client, payloads: Sequence[Payload], recorder: Recorder, concurrency: int,
                 offset: int = 0, stride: int = 1) -> None:
        self.client = client
        self.payloads = list(payloads)
        self.recorder = recorder
        self.concurrency = concurrency
        self.offset = offset
        self.stride = stride  # workers start this far apart in `payloads` (drawn shapes: disjoint runs)
        self._stop = False
        self._workers: list[W] = []


class ClosedLoop(LoopState["asyncio.Task[None]"]):
    """N coroutines, each sending its next request as soon as the previous one answers."""

    def start(self) -> None:
        self._stop = False
        self._workers = [asyncio.create_task(self._worker(self.offset + i * self.stride))
                       for i in range(self.concurrency)]
        self.recorder.probe.start()

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop sending; wait up to `drain_s` for in-flight requests, then cancel the rest."""
        self._stop = True
        self.recorder.probe.stop()
        await _finish(self._workers, drain_s)

    async def _worker(self, index: int) -> None:
        payloads, n = self.payloads, len(self.payloads)
        infer, rec, clock = self.client.infer, self.recorder, time.perf_counter_ns
        i = index
        while not self._stop:
            rec.sent += 1
            t0 = clock()
            code = await infer(payloads[i % n])
            t1 = clock()
            if code is None:
                rec.ok(t1, t1 - t0)
            else:
                rec.fail(t1, code)
                if code in BACKOFF_CODES:
                    await asyncio.sleep(FAILURE_BACKOFF_S)
            i += 1


def schedule_offsets(rate: float, distribution: str, seed: int, horizon_s: float) -> np.ndarray[Any, Any]:
    """Send-time offsets (ns from the level start) for `horizon_s` seconds, fixed before the level."""
    n = max(1, int(np.ceil(rate * horizon_s)))
    if distribution == "poisson":
        gaps = np.random.default_rng(seed).exponential(1e9 / rate, size=n)
        out: np.ndarray[Any, Any] = np.cumsum(gaps).astype(np.int64) - np.int64(gaps[0])
        return out
    return (np.arange(n, dtype=np.float64) * (1e9 / rate)).astype(np.int64)


class OpenLoop:
    """Sends on a pre-computed schedule regardless of answers (open loop); see module doc."""

    def __init__(self, client: Client, payloads: Sequence[Payload], recorder: Recorder, rate: float,
                 distribution: str = "constant", seed: int = 0, max_outstanding: int = 0,
                 horizon_s: float = 60.0, phase_ns: int = 0, offsets: np.ndarray[Any, Any] | None = None,
                 period_ns: int | None = None) -> None:
        self.client = client
        self.payloads = list(payloads)
        self.recorder = recorder
        if offsets is None:  # else a recorded/ramped schedule (loadgen.schedules)
            offsets = schedule_offsets(rate, distribution, seed, horizon_s)
        self.offsets = offsets + np.int64(phase_ns)
        self.period_ns = round(len(self.offsets) * 1e9 / rate) if period_ns is None else period_ns
        self.max_outstanding = max_outstanding
        self.outstanding = 0
        self.sent = 0
        self._stop = False
        self._dispatcher: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    def start(self, start_ns: int | None = None) -> None:
        self._stop = False
        t0 = time.perf_counter_ns() if start_ns is None else start_ns
        self._dispatcher = asyncio.create_task(self._dispatch(t0))
        self.recorder.probe.start()

    async def stop(self, drain_s: float = 5.0) -> None:
        self._stop = True
        self.recorder.probe.stop()
        if self._dispatcher is not None:
            await _finish([self._dispatcher], 0)
        await _finish(list(self._inflight), drain_s)

    async def _dispatch(self, t0: int) -> None:
        waker = make_waker()  # a timerfd on Linux: sends on time to tens of µs (loadgen/waker.py)
        try:
            await self._send_loop(t0, self.offsets.tolist(), waker)
        finally:
            waker.close()

    async def _send_loop(self, t0: int, offsets: list[int], waker: Waker) -> None:
        n, payloads, npay = len(offsets), self.payloads, len(self.payloads)
        clock, cap, rec = time.perf_counter_ns, self.max_outstanding, self.recorder
        i = 0
        while not self._stop:
            target = t0 + offsets[i % n] + (i // n) * self.period_ns
            now = clock()
            if target > now:
                await waker.until(target)
                continue
            if cap and self.outstanding >= cap:
                rec.drop(target)
            else:
                late = now - target > DELAY_TOLERANCE_NS
                task = asyncio.create_task(self._fire(payloads[i % npay], target, late))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            i += 1

    async def _fire(self, payload: Payload, target: int, delayed: bool) -> None:
        self.outstanding += 1
        self.sent += 1
        self.recorder.sent += 1
        clock = time.perf_counter_ns
        t_send = clock()
        try:
            code = await self.client.infer(payload)
        finally:
            self.outstanding -= 1
        t_end = clock()
        if code is None:
            self.recorder.ok_open(t_end, t_end - target, t_end - t_send, delayed)
        else:
            self.recorder.fail(t_end, code)


async def _finish(tasks: list[asyncio.Task[None]], wait_s: float) -> None:
    if not tasks:
        return
    if wait_s > 0:
        _, pending = await asyncio.wait(tasks, timeout=wait_s)
    else:
        pending = {t for t in tasks if not t.done()}
    for t in pending:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
