"""The level loop: pre-flight checks, warm-up, windows until stable or `-r`, server-stat snapshots
at window edges, outputs after every level, and a server lost mid-level.

`LoadSession` is the library entry point (scans drive one level at a time through it); `run` is the
whole `saturate load` sweep. The measurement rules live in `loadgen.windows`/`loadgen.level`, the
result types in `loadgen.result`, the files rewritten after every level in `loadgen.run_outputs`
(JSON, CSV via `loadgen.csvfmt`, latency .npz), the console text in `loadgen.console`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from loadgen import autoproc, console
from loadgen import gates as gate_mod
from loadgen.clients import make_client
from loadgen.clients.base import Client, Payload
from loadgen.config import LoadConfig
from loadgen.histogram import level_block
from loadgen.multiproc import MultiProcessSource
from loadgen.repeats import Trials, more_rounds
from loadgen.result import LevelResult, WindowStats, WindowSummary
from loadgen.run_outputs import RunWriter
from loadgen.serverstats import model_delta
from loadgen.signals import stop_on_signals
from loadgen.sources import InProcessSource, LoadSource, share
from loadgen.threaded import SYNC_DRIVERS, level_driver
from loadgen.traffic import Traffic
from loadgen.windows import Stabilizer
from saturate.errors import ServerError

if TYPE_CHECKING:  # imported where --collect-metrics asks for it: aiohttp is ~0.2 s of start-up CPU
    from loadgen.metrics import MetricsPoller

#: 0 every level valid; 1 a level failed (server lost, failed requests) or the sweep stopped on an
#: unstable level; 2 is kept for usage errors (saturate.errors).
EXIT_OK, EXIT_LOST, EXIT_UNSTABLE = 0, 1, 1
#: Client CPU at or above this fraction of a core per process means the client, not the server, limits.
COUNT_WINDOW_MIN_S = 1.0
COUNT_WINDOW_MAX_S = 120.0
LOST = "server stopped answering mid-level; the level holds what was measured before"
_LOST_CODES = frozenset({"UNAVAILABLE", "CANCELLED", "DEADLINE_EXCEEDED"})


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class WindowProgress:
    """What `on_window` receives after each measurement window."""

    value: float
    index: int  # 1-based
    max_trials: int
    summary: WindowSummary
    stable: bool
    line: str  # the progress line `saturate load` prints on stderr


class LoadSession:
    """One connection to one model at one batch size; measures one level at a time.

    ``async with LoadSession(cfg) as s: level = await s.measure(4)``. Entering runs the pre-flight
    (model metadata/config vs the inputs, one test request, statistics with the token) and raises
    :class:`~saturate.errors.UsageError` subclasses with one line when something does not fit.
    """

    def __init__(self, cfg: LoadConfig, on_window: Callable[[WindowProgress], None] | None = None) -> None:
        self.cfg = cfg
        self.on_window = on_window
        self.stats_available = False
        self.rule = cfg.stability_rule()
        self._client: Client | None = None
        self._source: LoadSource | None = None
        self._poller: MetricsPoller | None = None
        self._warned: set[str] = set()
        self.merged_windows: list[WindowStats] = []  # the windows the last level's result merges
        self.traffic = Traffic(cfg)  # drawn shapes / recorded schedules (loadgen.traffic)
        self.stop_reason: str | None = None  # set by request_stop: the level in progress ends flagged
        self._stop = asyncio.Event()
        self.processes = cfg.processes  # client processes now (`--processes auto` raises it)
        self._payloads: list[Payload] = []
        self._batching = False  # the model batches dynamically (its ModelInfo; loadgen.threaded level_driver)

    def request_stop(self, reason: str) -> None:
        """End the level in progress at once, flagged with ``reason`` and kept (SIGINT/SIGTERM)."""
        self.stop_reason = reason
        self._stop.set()

    async def __aenter__(self) -> LoadSession:
        cfg = self.cfg
        self._client = make_client(cfg.protocol, cfg.url, cfg.access_token, cfg.request_timeout_s,
                                   cfg.client_sender)
        try:
            await self._client.open()
            prepared = await _prepare(cfg, self._client, self.traffic)
            self.stats_available, self._payloads, self._batching = prepared
            await self._open_source()
            if cfg.collect_metrics:
                from loadgen.metrics import MetricsPoller

                self._poller = MetricsPoller(cfg.resolved_metrics_url, cfg.metrics_interval_ms)
                await self._poller.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def _open_source(self) -> None:
        assert self._client is not None
        if self.processes > 1:
            mps = MultiProcessSource(self.cfg, self.processes)
            self._source = mps
            await mps.open()
        else:
            self._source = InProcessSource(self.cfg, self.traffic.client(self._client), self._payloads,
                                           self._batching)

    async def use_processes(self, count: int) -> None:
        """Measure the next levels with `count` client processes (`--processes auto`)."""
        if self._source is not None:
            await self._source.close()
            self._source = None
        self.processes = count
        await self._open_source()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._poller is not None:
            await self._poller.stop()
            self._poller = None
        if self._source is not None:
            await self._source.close()
            self._source = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    @property
    def client(self) -> Client:
        assert self._client is not None, "use LoadSession in `async with`"
        return self._client

    @property
    def source(self) -> LoadSource:
        assert self._source is not None, "use LoadSession in `async with`"
        return self._source

    async def warmup(self, value: float | None = None) -> int:
        """Send `--warmup-request-count` requests and discard them; returns how many completed."""
        if not self.cfg.warmup_request_count:
            return 0
        first = next(iter(self.cfg.levels())) if value is None else value
        return await self.source.warmup(first, self.cfg.warmup_request_count, 60.0)

    async def _snapshot(self) -> Any:
        if not self.stats_available or self._client is None:
            return None
        return await self._client.statistics(self.cfg.model, self.cfg.model_version)

    def _delta(self, prev: Any, cur: Any, w: WindowStats) -> None:
        if prev is None or cur is None:
            return
        d = model_delta(prev, cur, self.cfg.model, self.cfg.model_version)
        if d is None:
            return
        w.server = d.delta
        for msg in d.warnings:
            if msg not in self._warned:
                self._warned.add(msg)
                _err(f"WARNING: {msg}")

    async def measure(self, value: float) -> LevelResult:
        """One level: windows until stable, over the latency limit, `-r` windows, or the server is lost."""
        cfg, source = self.cfg, self.source
        st = Stabilizer(self.rule, mode=cfg.mode, value=value, batch_size=cfg.batch_size,
                        processes=self.processes)
        self.traffic.reset()
        await source.start_level(value)
        interrupted: str | None = None
        try:
            edge = time.perf_counter_ns()
            await source.reset(edge)
            try:
                prev = await self._snapshot()
            except ServerError:
                prev, interrupted = None, LOST
            if self._poller:
                self._poller.take()
            while not interrupted and not st.done():
                await self._wait_window(edge)
                edge = time.perf_counter_ns()
                w = await source.cut(edge)
                try:
                    cur = await self._snapshot()
                except ServerError:
                    cur, interrupted = None, LOST
                self._delta(prev, cur, w)
                prev = cur
                if self._poller:
                    w.gpu_samples = self._poller.take()
                summary = st.add(w)
                if w.completed == 0 and w.failed and set(w.errors) <= _LOST_CODES:
                    interrupted = LOST
                interrupted = interrupted or self.stop_reason
                self._progress(value, len(st.windows), summary, st.stable() and not interrupted)
                if interrupted or w.completed == 0:
                    break
        finally:
            await source.stop_level()
        if interrupted:
            # keep the windows measured before the server went away
            while st.windows and st.windows[-1].completed == 0:
                st.windows.pop()
                st.summaries.pop()
        self.merged_windows = self.rule.merged(st.windows)
        level = self.traffic.annotate(st.result(interrupted), self.merged_windows)
        hist = level_block([w.latencies_ns for w in self.merged_windows])
        driver = self.driver(value)
        assert self._client is not None
        sender = None if driver == "asyncio" else self._client.sender  # the event loop uses grpc.aio/aiohttp
        client = dataclasses.replace(level.client, driver=driver, sender=sender)
        return dataclasses.replace(level, client=client, extras={**level.extras, "histogram": hist})

    def driver(self, value: float) -> str:
        """The loop a level at `value` runs on (each process its share; loadgen.threaded level_driver)."""
        cfg = self.cfg
        per_process = int(share(value, 0, self.processes, True)) if cfg.mode == "concurrency" else 0
        assert self._client is not None
        return level_driver(cfg, self._client, per_process, self._batching)

    async def _wait_window(self, start_ns: int) -> None:
        cfg = self.cfg
        if cfg.measurement_mode == "time_windows":
            left = start_ns + cfg.measurement_interval_ms * 1_000_000 - time.perf_counter_ns()
            with contextlib.suppress(asyncio.TimeoutError):  # a stop request cuts the window short
                await asyncio.wait_for(self._stop.wait(), max(0.0, left / 1e9))
            return
        t0 = time.monotonic()
        while time.monotonic() - t0 < COUNT_WINDOW_MAX_S and not self._stop.is_set():
            await asyncio.sleep(0.05)
            if time.monotonic() - t0 >= COUNT_WINDOW_MIN_S and (
                self.source.pending() >= cfg.measurement_request_count
            ):
                return

    def _progress(self, value: float, index: int, summary: WindowSummary, stable: bool) -> None:
        cfg = self.cfg
        what = f"concurrency {int(value)}" if cfg.mode == "concurrency" else f"rate {value:g}/s"
        line = console.progress_line(summary, index, level=what, max_trials=cfg.max_trials,
                                     percentile=cfg.percentile, stable=stable)
        if self.on_window is not None:
            self.on_window(WindowProgress(value, index, cfg.max_trials, summary, stable, line))


async def _prepare(cfg: LoadConfig, client: Client, traffic: Traffic) -> tuple[bool, list[Payload], bool]:
    """Pre-flight: model metadata/config, inputs, one test request, statistics (and the token).
    Whether statistics are there, the payloads, whether the model batches dynamically."""
    info = await client.model_info(cfg.model, cfg.model_version)
    payloads = traffic.payloads(info, client)
    await client.infer_checked(payloads[0])
    stats = await client.has_statistics()
    if stats:
        await client.statistics(cfg.model, cfg.model_version)
    return stats, payloads, info.dynamic_batching


# ------------------------------------------------------------------------------------------- sweep


async def run(cfg: LoadConfig) -> int:
    """Run every level of the sweep as `saturate load` does; returns the exit code.

    SIGINT/SIGTERM during the sweep end the level in progress, flagged ``interrupted`` and written
    with what it measured, and return 128 + the signal.
    """
    from loadgen.live import LiveView

    with LiveView(cfg.quiet) as view:
        return await _run(cfg, view)


async def _run(cfg: LoadConfig, view: Callable[[WindowProgress], None]) -> int:
    async with LoadSession(cfg, on_window=view) as session:
        with stop_on_signals(session) as stopped:
            if cfg.start_at is not None:
                wait = cfg.start_at - time.time()
                if wait > 0:
                    _err(f"saturate load: waiting {wait:.1f} s for the agreed start time")
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(session._stop.wait(), wait)
            if stopped():
                return 128 + stopped()
            if cfg.schedule is not None and cfg.schedule.kind == "ramp":
                from loadgen.schedules import run_ramp

                code = await run_ramp(session)
            else:
                writer = RunWriter(cfg, session.stats_available)
                code = _check_slo(cfg, writer, await _sweep(cfg, session, writer))
            return 128 + stopped() if stopped() else code


def _check_slo(cfg: LoadConfig, writer: RunWriter, code: int) -> int:
    """``--slo``: each failed gate one line, the verdict in the JSON, exit 1 when one failed."""
    if not cfg.slo:
        return code
    gates = gate_mod.parse_all(cfg.slo)
    what = cfg.mode.replace("_", " ")
    failures = gate_mod.check_slo(gates, [(f"{what} {lv.value:g}", gate_mod.level_metrics(lv))
                                          for lv in writer.result.levels])
    writer.result.extras["slo"] = gate_mod.verdict(gates, failures)
    if cfg.json_file:
        writer.result.write(cfg.json_file)
    for f in failures:
        _err(f"saturate: {f.line()}")
    if not failures:
        _err(f"saturate: all {len(gates)} SLO gates passed on {len(writer.result.levels)} levels")
    return code if code or not failures else EXIT_LOST


async def _sweep(cfg: LoadConfig, session: LoadSession, writer: RunWriter) -> int:
    limit = cfg.level_range.end if cfg.level_range.end != cfg.level_range.start else 1
    synchronous = session.driver(cfg.level_range.start) in SYNC_DRIVERS
    print(console.settings_banner(
        batch_size=cfg.batch_size, mode=cfg.mode, limit=limit, latency_threshold_ms=cfg.latency_threshold_ms,
        percentile=cfg.percentile, count_windows=cfg.measurement_mode == "count_windows",
        interval_ms=cfg.measurement_interval_ms, request_count=cfg.measurement_request_count,
        distribution=cfg.request_distribution, warmup_requests=cfg.warmup_request_count,
        processes=cfg.processes, synchronous=synchronous), flush=True)
    await session.warmup()
    cores = autoproc.usable_cores()
    if cfg.processes_auto:
        _err(autoproc.start_message(cores))
    code = EXIT_OK
    trials = Trials()
    for i, value in enumerate(cfg.levels()):
        print(console.level_header(cfg.mode, value), flush=True)
        level = await session.measure(value)
        while cfg.processes_auto:
            more = autoproc.more_processes(level, session.processes, cores)
            if more is None:
                break
            _err(autoproc.step_message(level, session.processes, more))
            await session.use_processes(more)
            level = await session.measure(value)
        writer.add(trials.add(value, level) if cfg.repeats > 1 else level, session.merged_windows)
        print(console.level_report(level, protocol=cfg.protocol, collect_metrics=cfg.collect_metrics),
              flush=True)
        if session.stop_reason:
            _err(f"saturate load: {session.stop_reason}; {len(writer.result.levels)} levels written, "
                 "the last one flagged")
            return EXIT_LOST
        if level.stability == "interrupted":
            what = cfg.mode.replace("_", " ")
            _err(f"saturate: error: the server at {cfg.url} stopped answering during {what} {value:g}; "
                 "that level is flagged and outputs hold what was measured")
            _err(_failed_line(writer.result.levels))
            return EXIT_LOST
        if level.requests is not None and level.requests.failed:
            code = EXIT_LOST
        if level.stability == "over_latency_threshold":
            break
        if not level.stable:
            if i == 0 and not cfg.continue_on_unstable:
                code = EXIT_UNSTABLE
            if not cfg.continue_on_unstable:
                break
    if cfg.repeats > 1 and not await more_rounds(cfg, session, writer, trials):
        return EXIT_LOST
    if len(writer.result.levels) > 1:
        print(console.summary_table(writer.result.levels, cfg.percentile), flush=True)
    if code != EXIT_OK:
        _err(_failed_line(writer.result.levels))
    return code


def _failed_line(levels: list[LevelResult]) -> str:
    """The last line of a run that did not end well: how many levels failed or were flagged."""
    bad = sum(1 for lv in levels if lv.stability == "interrupted" or not lv.stable
              or (lv.requests is not None and lv.requests.failed > 0))
    return f"saturate load: {bad} of {len(levels)} levels failed or flagged (exit 1)"
