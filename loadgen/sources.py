"""Where a level's load comes from: this process (`InProcessSource`) or K worker processes
(`loadgen.multiproc.MultiProcessSource`). The runner talks only to the `LoadSource` protocol."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Protocol

from loadgen.clients.base import Client, Payload
from loadgen.config import LoadConfig
from loadgen.drivers import ClosedLoop, OpenLoop, Recorder
from loadgen.native_loop import NativeClosedLoop, NativeOpenLoop, NativeSyncClosedLoop
from loadgen.result import WindowStats
from loadgen.threaded import ThreadedClosedLoop, level_driver

DRAIN_S = 5.0


class LoadSource(Protocol):
    """Starts/stops load for a level and cuts windows at given edges (perf_counter ns)."""

    async def start_level(self, value: float) -> None: ...

    def pending(self) -> int: ...

    async def reset(self, edge_ns: int) -> None: ...

    async def cut(self, edge_ns: int) -> WindowStats: ...

    async def stop_level(self) -> None: ...

    async def warmup(self, value: float, requests: int, timeout_s: float) -> int: ...

    async def close(self) -> None: ...


def horizon_s(cfg: LoadConfig) -> float:
    """How long an open-loop schedule must run before it repeats (perf_analyzer: trials x window)."""
    window_s = cfg.measurement_interval_ms / 1000
    return max(10.0, cfg.max_trials * window_s * 1.5 + 5.0)


def share(value: float, index: int, count: int, integer: bool) -> float:
    """Worker `index`'s part of a concurrency (integer split, remainder first) or rate (even split)."""
    if not integer:
        return value / count
    base, extra = divmod(int(value), count)
    return float(base + (1 if index < extra else 0))


#: Any of the loops a level can run on (each has start, stop and its recorder).
AnyDriver = ClosedLoop | ThreadedClosedLoop | NativeClosedLoop | OpenLoop


def make_driver(cfg: LoadConfig, client: Client, payloads: Sequence[Payload], recorder: Recorder,
                value: float, batching: bool, index: int = 0, count: int = 1) -> AnyDriver:
    """The driver for one process: its share of the concurrency, or of the rate with its own phase/seed;
    `batching`: the model batches dynamically (loadgen.threaded level_driver)."""
    if cfg.mode == "concurrency":
        concurrency = int(share(value, index, count, True))
        # drawn shapes: workers walk disjoint runs of the draw sequence, so each draw is sent once
        stride = max(1, len(payloads) // max(1, concurrency)) if cfg.shape_dist is not None else 1
        loops: dict[str, type[ClosedLoop | ThreadedClosedLoop | NativeClosedLoop]] = {
            "native": NativeClosedLoop, "native-sync": NativeSyncClosedLoop, "threads": ThreadedClosedLoop,
            "asyncio": ClosedLoop}
        loop = loops[level_driver(cfg, client, concurrency, batching)]
        return loop(client, payloads, recorder, concurrency, offset=index * 7919, stride=stride)
    open_loop = NativeOpenLoop if level_driver(cfg, client, 0, batching) == "native" else OpenLoop
    if cfg.schedule is not None:
        sched = cfg.schedule
        return open_loop(client, payloads, recorder, sched.mean_rate, max_outstanding=cfg.max_outstanding,
                         offsets=sched.offsets(), period_ns=sched.period_ns)
    rate = share(value, index, count, False)
    phase = round(index * 1e9 / value) if cfg.request_distribution == "constant" else 0
    return open_loop(client, payloads, recorder, rate, cfg.request_distribution,
                     seed=cfg.seed * 1000 + index, max_outstanding=max(0, cfg.max_outstanding // count),
                     horizon_s=horizon_s(cfg), phase_ns=phase)


class InProcessSource:
    """All load from this process's event loop."""

    def __init__(self, cfg: LoadConfig, client: Client, payloads: Sequence[Payload], batching: bool) -> None:
        self.cfg = cfg
        self.batching = batching
        self.client = client
        self.payloads = list(payloads)
        self.recorder = Recorder(client, cfg.mode == "request_rate")
        self.driver: AnyDriver | None = None

    async def start_level(self, value: float) -> None:
        self.recorder = Recorder(self.client, self.cfg.mode == "request_rate")
        self.driver = make_driver(self.cfg, self.client, self.payloads, self.recorder, value, self.batching)
        self.driver.start()

    def pending(self) -> int:
        return self.recorder.pending()

    async def reset(self, edge_ns: int) -> None:
        self.recorder.reset(edge_ns)

    async def cut(self, edge_ns: int) -> WindowStats:
        return self.recorder.cut(edge_ns)

    async def stop_level(self) -> None:
        if self.driver is not None:
            await self.driver.stop(DRAIN_S)
            self.driver = None

    async def warmup(self, value: float, requests: int, timeout_s: float) -> int:
        """Send `requests` requests at this level (concurrency capped at `requests`), then discard them."""
        if self.cfg.mode == "concurrency":
            value = min(value, float(requests))
        await self.start_level(value)
        deadline = time.monotonic() + timeout_s
        rec = self.recorder
        while rec.total_completed + rec.total_failed < requests and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await self.stop_level()
        return rec.total_completed

    async def close(self) -> None:
        await self.stop_level()
