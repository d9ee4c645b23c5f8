"""`--processes K`: K spawned worker processes share the concurrency or rate.

The parent owns the windows. It starts every worker's load at one agreed instant (a
``perf_counter_ns`` value, i.e. CLOCK_MONOTONIC, shared by all processes on Linux), and at each
window edge tells every worker to cut its records at that edge. Workers send their exact
per-window latency arrays back; the parent concatenates them and decides stability on the merged
window. For count windows, each worker publishes its completed count in shared memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import queue
import time
from multiprocessing.sharedctypes import SynchronizedArray
from typing import Any

from loadgen import eventloop
from loadgen.clients import make_client
from loadgen.config import LoadConfig
from loadgen.drivers import OpenLoop, Recorder
from loadgen.inputs import build_requests
from loadgen.result import WindowStats
from loadgen.signals import die_with_parent
from loadgen.sources import DRAIN_S, AnyDriver, make_driver
from loadgen.windows import combine_processes
from saturate import errors as errs

START_LEAD_NS = 200_000_000
REPLY_TIMEOUT_S = 60.0


def _error_reply(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, errs.UsageError):
        return type(exc).__name__, str(exc)
    return "RuntimeError", f"{type(exc).__name__}: {exc}"


def worker_main(index: int, count: int, cfg: LoadConfig, cmds: Any, out: Any, counters: Any,
                parent_pid: int) -> None:
    """Entry point of one worker process (spawned); it ends with its parent, even a SIGKILLed one."""
    die_with_parent(parent_pid)
    try:
        eventloop.run(_worker(index, count, cfg, cmds, out, counters), cfg.event_loop)
    except BaseException as exc:  # reported to the parent, which raises it there
        out.put(("error", index, _error_reply(exc)))


async def _worker(index: int, count: int, cfg: LoadConfig, cmds: Any, out: Any, counters: Any) -> None:
    client = make_client(cfg.protocol, cfg.url, cfg.access_token, cfg.request_timeout_s, cfg.client_sender)
    await client.open()
    info = await client.model_info(cfg.model, cfg.model_version)
    requests = build_requests(info, dict(cfg.shapes), cfg.batch_size, cfg.input_data, cfg.seed)
    payloads = [client.prepare(cfg.model, cfg.model_version, r) for r in requests]
    loop = asyncio.get_running_loop()
    recorder = Recorder(client, cfg.mode == "request_rate")
    driver: AnyDriver | None = None

    async def publish() -> None:
        while True:
            counters[index] = recorder.pending()
            await asyncio.sleep(0.02)

    publisher = asyncio.create_task(publish())
    out.put(("ready", index, None))
    try:
        while True:
            cmd = await loop.run_in_executor(None, cmds.get)
            kind = cmd[0]
            if kind == "level":
                recorder = Recorder(client, cfg.mode == "request_rate")
                driver = make_driver(cfg, client, payloads, recorder, cmd[1], info.dynamic_batching, index,
                                     count)
                await asyncio.sleep(max(0.0, (cmd[2] - time.perf_counter_ns()) / 1e9))
                if isinstance(driver, OpenLoop):
                    driver.start(cmd[2])
                else:
                    driver.start()
                out.put(("started", index, None))
            elif kind == "reset":
                recorder.reset(cmd[1])
                out.put(("reset", index, None))
            elif kind == "cut":
                out.put(("part", index, recorder.cut(cmd[1])))
            elif kind == "stop":
                if driver is not None:
                    await driver.stop(DRAIN_S)
                    driver = None
                out.put(("stopped", index, recorder.total_completed))
            elif kind == "quit":
                break
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
        await client.close()


class MultiProcessSource:
    """The `LoadSource` for K > 1 processes (see module doc)."""

    def __init__(self, cfg: LoadConfig, count: int | None = None) -> None:
        self.cfg = cfg
        self.count = cfg.processes if count is None else count
        ctx = mp.get_context("spawn")
        self._cmds = [ctx.Queue() for _ in range(self.count)]
        self._out = ctx.Queue()
        self._counters: SynchronizedArray[Any] = ctx.Array("q", self.count)
        self._procs = [ctx.Process(target=worker_main, name=f"saturate-load-{i}", daemon=True,
                                   args=(i, self.count, cfg, self._cmds[i], self._out, self._counters,
                                         os.getpid()))
                       for i in range(self.count)]

    async def open(self) -> None:
        for p in self._procs:
            p.start()
        await self._collect("ready")

    def _send(self, *cmd: Any) -> None:
        for q in self._cmds:
            q.put(cmd)

    async def _collect(self, kind: str) -> list[Any]:
        """One `kind` reply from every worker, in worker order; a worker's error is raised here."""
        replies: dict[int, Any] = {}
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while len(replies) < self.count:
            left = deadline - time.monotonic()
            if left <= 0 or any(not p.is_alive() and p.exitcode not in (None, 0) for p in self._procs):
                raise RuntimeError(f"a load worker process did not answer {kind!r} in time")
            try:
                tag, index, value = await loop.run_in_executor(None, self._out.get, True, min(left, 1.0))
            except queue.Empty:
                continue
            if tag == "error":
                name, message = value
                cls = getattr(errs, name, None)
                if isinstance(cls, type) and issubclass(cls, errs.UsageError):
                    raise cls(message)
                raise RuntimeError(f"load worker {index} failed: {message}")
            if tag == kind:
                replies[index] = value
        return [replies[i] for i in range(self.count)]

    async def start_level(self, value: float) -> None:
        self._send("level", value, time.perf_counter_ns() + START_LEAD_NS)
        await self._collect("started")

    def pending(self) -> int:
        return int(sum(self._counters[:]))

    async def reset(self, edge_ns: int) -> None:
        self._send("reset", edge_ns)
        await self._collect("reset")

    async def cut(self, edge_ns: int) -> WindowStats:
        self._send("cut", edge_ns)
        return combine_processes(await self._collect("part"))

    async def stop_level(self) -> None:
        self._send("stop")
        await self._collect("stopped")

    async def warmup(self, value: float, requests: int, timeout_s: float) -> int:
        if self.cfg.mode == "concurrency":
            value = max(float(self.count), min(value, float(requests)))
        await self.start_level(value)
        deadline = time.monotonic() + timeout_s
        while self.pending() < requests and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        done = self.pending()
        await self.stop_level()
        return done

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._send("quit")
        for p in self._procs:
            if p.pid is None:
                continue
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
