"""The threaded closed loop (loadgen.threaded) on an in-memory transport: a blocking sender whose
answers take a fixed time, so counts, latencies, failures and the window cut can be checked exactly.
The same driver runs against real PyTriton servers in tests/integration/test_load_server.py."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from loadgen.clients.base import Payload
from loadgen.drivers import Recorder
from loadgen.threaded import AUTO_MAX_THREADS, ThreadedClosedLoop, driver_name


class _Sender:
    def __init__(self, owner: _MemoryClient) -> None:
        self.owner = owner

    def infer(self, payload: Payload) -> str | None:
        with self.owner.lock:
            self.owner.inflight += 1
            self.owner.peak = max(self.owner.peak, self.owner.inflight)
            self.owner.seen.append(payload[0])
        time.sleep(self.owner.service_s)
        with self.owner.lock:
            self.owner.inflight -= 1
        return self.owner.code

    def close(self) -> None:
        with self.owner.lock:
            self.owner.closed += 1


class _MemoryClient:
    """Just what the driver and recorder use of a Client: `blocking()` and the send/recv counters."""

    def __init__(self, service_s: float, code: str | None = None) -> None:
        self.service_s, self.code = service_s, code
        self.send_ns = self.recv_ns = 0
        self.lock = threading.Lock()
        self.inflight = self.peak = self.closed = 0
        self.seen: list[bytes] = []

    def blocking(self) -> _Sender:
        return _Sender(self)


def _run(client: _MemoryClient, concurrency: int, seconds: float,
         payloads: list[Payload] | None = None) -> tuple[Recorder, list[int]]:
    async def go() -> tuple[Recorder, list[int]]:
        rec = Recorder(client, open_loop=False)  # type: ignore[arg-type]
        loop = ThreadedClosedLoop(client, payloads or [(b"p", 0)], rec, concurrency)  # type: ignore[arg-type]
        rec.reset()
        loop.start()
        edges = []
        for _ in range(3):
            await asyncio.sleep(seconds / 3)
            edges.append(time.perf_counter_ns())
        parts = [rec.cut(e) for e in edges]
        await loop.stop(drain_s=2.0)
        return rec, [p.completed for p in parts]

    return asyncio.run(go())


def test_keeps_n_in_flight_and_records_every_completion_once() -> None:
    client = _MemoryClient(service_s=0.005)
    rec, per_window = _run(client, concurrency=3, seconds=0.6)
    assert client.peak == 3 and client.inflight == 0 and client.closed == 3
    # every request sent was answered and recorded (in a window, or after the last cut)
    assert rec.sent == rec.total_completed == len(client.seen)
    assert sum(per_window) + rec.pending() == rec.total_completed
    # 3 threads, 5 ms each: about 600 per second; a loaded CI core only lowers it
    assert 20 < rec.total_completed <= 3 * 0.6 / 0.005 * 1.1


def test_window_latencies_are_each_requests_blocking_span() -> None:
    client = _MemoryClient(service_s=0.004)

    async def go() -> np.ndarray:
        rec = Recorder(client, open_loop=False)  # type: ignore[arg-type]
        loop = ThreadedClosedLoop(client, [(b"p", 0)], rec, 2)  # type: ignore[arg-type]
        loop.start()
        await asyncio.sleep(0.3)
        part = rec.cut(time.perf_counter_ns())
        await loop.stop()
        return part.latencies_ns

    lat = asyncio.run(go())
    assert lat.size > 10 and lat.min() >= 4_000_000  # never shorter than the answer took


def test_failures_are_counted_with_their_code_and_backed_off() -> None:
    client = _MemoryClient(service_s=0.0, code="UNAVAILABLE")
    rec, _ = _run(client, concurrency=2, seconds=0.3)
    assert rec.total_completed == 0 and rec.total_failed > 0
    # 10 ms back-off after a connection failure: two threads cannot fail more than ~60 times in 0.3 s
    assert rec.total_failed <= 2 * (0.3 / 0.01 + 2)


def test_walks_the_payloads_from_its_offset() -> None:
    client = _MemoryClient(service_s=0.001)
    payloads: list[Payload] = [(bytes([i]), 0) for i in range(5)]
    _run(client, concurrency=1, seconds=0.15, payloads=payloads)
    assert client.seen[:7] == [bytes([i % 5]) for i in range(7)]


@pytest.mark.parametrize(("driver", "mode", "concurrency", "native", "expected"), [
    ("auto", "concurrency", 1, True, "native"),  # the C loop wherever it can run
    ("auto", "concurrency", 64, True, "native"),
    ("auto", "concurrency", 1, False, "threads"),
    ("auto", "concurrency", AUTO_MAX_THREADS, False, "threads"),
    ("auto", "concurrency", AUTO_MAX_THREADS + 1, False, "asyncio"),
    ("threads", "concurrency", 64, True, "threads"),
    ("asyncio", "concurrency", 1, True, "asyncio"),
    ("native", "concurrency", 16, True, "native"),
    ("auto", "request_rate", 0, True, "native"),  # the C open loop
    ("auto", "request_rate", 0, False, "asyncio"),
    ("threads", "request_rate", 0, True, "asyncio"),  # open loops run on the event loop or in C
    ("threads", "request_rate", 0, False, "asyncio"),
])
def test_which_driver_a_level_gets(driver: str, mode: str, concurrency: int, native: bool,
                                   expected: str) -> None:
    assert driver_name(driver, mode, concurrency, native) == expected


@pytest.mark.parametrize(("driver", "mode", "native", "expected"), [
    ("auto", "concurrency", True, "native-sync"),  # a dynamic batcher: perf_analyzer's sync arrivals
    ("auto", "concurrency", False, "threads"),  # the C loops cannot run
    ("native", "concurrency", True, "native"),  # asked for: the one-queue loop even so
    ("native-sync", "concurrency", True, "native-sync"),
    ("auto", "request_rate", True, "native"),  # an open loop's sends do not depend on the answers
    ("native-sync", "request_rate", True, "native"),
])
def test_a_batching_model_gets_the_sync_loop(driver: str, mode: str, native: bool, expected: str) -> None:
    assert driver_name(driver, mode, 4, native, batching=True) == expected
    if driver == "auto" and mode == "concurrency" and native:
        assert driver_name(driver, mode, 4, native, batching=False) == "native"
