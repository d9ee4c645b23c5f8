"""``saturate scan server``: a concurrency x batch grid against a Triton server, one level at a time.

Batch by batch, concurrency by concurrency, each level goes through a :class:`~scans.engines.LevelEngine`
(the loadgen library in-process by default) while the monitor samples beside it with the level's name
(``c4_b16``) as its phase. After every level the verdict (:mod:`scans.verdict`) joins the level with
what the monitor saw, and the result directory (:mod:`scans.server.scanio`) is rewritten. ``--serve`` starts
the server itself (:mod:`scans.server.serverproc`) and always stops it. ``--resume`` skips the levels that
OUT's JSON already holds (levels that failed are measured again). SIGINT/SIGTERM end the scan between
two windows: the level in progress is dropped, the levels done stay, and the exit code is 130/143.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from loadgen import energy
from loadgen import gates as gate_mod
from loadgen.clients import make_client
from loadgen.config import LoadConfig, Range
from loadgen.config import identity as load_identity
from loadgen.inputs import resolve_shapes
from loadgen.level import unmeasured_level
from loadgen.repeats import Trials, order
from loadgen.result import (
    LevelResult,
    RequestCounts,
    RunResult,
)
from loadgen.signals import cancel_on_signals
from loadgen.verdict import decide
from monitors.config import MonitorConfig
from monitors.monitor import Monitor
from saturate.environment import environment
from saturate.errors import ConfigError, ServerError, UsageError
from saturate.version import saturate_version
from scans.analysis import level_name
from scans.engines import ENGINES, LevelEngine, make_engine
from scans.report.headline import terminal_lines as headline_lines
from scans.server import scanio
from scans.server.progress import ScanProgress
from scans.server.serverproc import ServeConfig, ServedServer

FAILED_PREFIX = "level failed: "
#: LoadConfig fields that do not change what a level measures (left out of the resume check).
@dataclass(frozen=True)
class ScanConfig:
    """Every setting of a server scan (the run JSON's ``config`` block is :meth:`to_dict`)."""

    out: Path
    load: LoadConfig  # model, url, protocol, token and the measurement rule; batch/concurrency per level
    concurrencies: tuple[int, ...]
    batch_sizes: tuple[int, ...]
    engine: str = "saturate"
    engine_options: tuple[tuple[str, str], ...] = ()  # engine-specific settings (see engines.make_engine)
    latency_budget_ms: float | None = None
    resume: bool = False
    monitor: bool = True
    monitor_interval_s: float = 0.25
    monitor_sources: tuple[str, ...] = ("auto",)
    serve: ServeConfig | None = None

    def __post_init__(self) -> None:
        if not self.concurrencies or not self.batch_sizes:
            raise ConfigError("the grid is empty; give e.g. --concurrency 1,2,4 --batch-sizes 1,16")
        if min(self.concurrencies) < 1 or min(self.batch_sizes) < 1:
            raise ConfigError("concurrency and batch sizes must be at least 1; e.g. --concurrency 1,2,4")
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}; choose one of: {', '.join(ENGINES)}")
        if self.latency_budget_ms is not None and not self.latency_budget_ms > 0:
            raise ConfigError("--latency-budget-ms must be > 0")
        if self.serve is not None and max(self.batch_sizes) > self.serve.max_batch:
            raise ConfigError(f"batch {max(self.batch_sizes)} is above --max-batch {self.serve.max_batch}; "
                              "raise --max-batch or lower --batch-sizes")

    def grid(self) -> list[tuple[int, int]]:
        """(batch, concurrency) in scan order, duplicates removed."""
        return [(b, c) for b in dict.fromkeys(self.batch_sizes) for c in dict.fromkeys(self.concurrencies)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": "scan server",
            "model": self.load.model,
            "url": self.load.url,
            "protocol": self.load.protocol,
            "engine": self.engine,
            "engine_options": dict(self.engine_options),
            "concurrency": list(self.concurrencies),
            "batch_sizes": list(self.batch_sizes),
            "grid": [level_name(c, b) for b, c in self.grid()],
            "latency_budget_ms": self.latency_budget_ms,
            "monitor": {"enabled": self.monitor, "interval_s": self.monitor_interval_s,
                        "sources": list(self.monitor_sources)},
            "serve": None if self.serve is None else self.serve.to_dict(),
            "load": self.load.to_dict(),
        }


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a ``config`` block that must match for ``--resume``."""
    load = load_identity(config.get("load") or {})  # loadgen/config.py: ROLES
    serve = dict(config.get("serve") or {})
    serve.pop("ready_timeout_s", None)
    keep = ("model", "protocol", "engine", "concurrency", "batch_sizes")
    return {**{k: config.get(k) for k in keep}, "engine_options": config.get("engine_options") or {},
            "load": load, "serve": serve or None}


def failed_level(batch: int, concurrency: int, why: str) -> LevelResult:
    """A level that could not be measured: no throughput, flagged, the reason in its verdict."""
    return unmeasured_level("concurrency", concurrency, batch, "interrupted", FAILED_PREFIX + why,
                            RequestCounts(completed=0))


def is_failed(level: LevelResult) -> bool:
    return level.stability in ("interrupted", "failed")


async def check_max_batch(cfg: LoadConfig, batches: tuple[int, ...]) -> None:
    """One metadata call: every batch size must fit the model's max batch (else a ConfigError), and
    every ``--shape`` the model's fixed dims (else a ModelError) for either engine: perf_analyzer
    applies ``--shape`` to variable dims only and would measure the model's own shape unsaid."""
    client = make_client(cfg.protocol, cfg.url, cfg.access_token)
    try:
        await client.open()
        info = await client.model_info(cfg.model, cfg.model_version)
        if await client.has_statistics():  # a wrong or missing token: one line now, not N failed levels
            await client.statistics(cfg.model, cfg.model_version)
    finally:
        await client.close()
    resolve_shapes(info, dict(cfg.shapes), allow_variable=True)
    top = max(batches)
    if info.max_batch_size == 0 and top > 1:
        raise ConfigError(f"batch {top}: model {cfg.model!r} does not batch (max_batch_size 0); "
                          "use --batch-sizes 1")
    if info.max_batch_size and top > info.max_batch_size:
        raise ConfigError(f"batch {top} is above the max batch {info.max_batch_size} of model "
                          f"{cfg.model!r}; use --batch-sizes up to {info.max_batch_size} "
                          "(or serve with a larger --max-batch)")


#: What checks the server before the first level: (the load settings, the batch sizes) → None or an error.
Preflight = Callable[[LoadConfig, tuple[int, ...]], Coroutine[Any, Any, None]]


class ServerScan:
    """One scan run; :meth:`run` returns the exit code."""

    def __init__(self, cfg: ScanConfig, engine: LevelEngine | None = None,
                 preflight: Preflight = check_max_batch) -> None:
        """``engine`` measures the levels (default: ``cfg.engine`` made at start); ``preflight`` checks the
        server before any level (default :func:`check_max_batch`, one metadata call)."""
        self.cfg = cfg
        self.out = cfg.out
        self.engine = engine
        self.preflight = preflight
        self.run_result = RunResult(tool={"name": "saturate", "version": saturate_version(),
                                          "command": "scan server"}, env=environment(), config=cfg.to_dict())
        self.verdicts: dict[str, dict[str, Any]] = {}
        self.server: ServedServer | None = None
        self.monitor: Monitor | None = None
        self.tail: scanio.MonitorTail | None = None
        self.progress: ScanProgress | None = None
        self.signal_code = 0
        self.trials = Trials()  # --repeats: every trial of each level, by level name

    # -- set-up ----------------------------------------------------------------------------------
    def _resume_state(self) -> None:
        prev = scanio.read_previous(self.out)
        if prev is None:
            return
        config, levels, verdicts = prev
        if not self.cfg.resume:
            raise ConfigError(f"{self.out / scanio.JSON_NAME} exists; pass --resume to go on with it "
                              "or choose another --out")
        if identity(config) != identity(self.cfg.to_dict()):
            raise ConfigError(f"{self.out / scanio.JSON_NAME} was written with other settings; "
                              "--resume needs the same grid and measurement flags (or choose another --out)")
        grid = {level_name(c, b) for b, c in self.cfg.grid()}
        kept = [lv for lv in levels if not is_failed(lv) and scanio.name_of(lv) in grid
                and int((lv.extras.get("repeats") or {}).get("n", 1)) >= self.cfg.load.repeats]
        self.run_result.levels = list({scanio.name_of(lv): lv for lv in kept}.values())
        self.verdicts = {k: v for k, v in verdicts.items() if k in {scanio.name_of(lv) for lv in kept}}

    def _load_config(self) -> LoadConfig:
        load = self.cfg.load
        if self.server is not None:
            url = self.server.grpc_url if load.protocol == "grpc" else self.server.http_url
            load = dataclasses.replace(load, url=url, access_token=self.server.token,
                                       metrics_url=self.server.metrics_url)
        return load

    def _start_monitor(self, log: TextIO) -> None:
        if not self.cfg.monitor:
            return
        target = self.out / scanio.MONITOR_NAME
        if target.exists() and self.run_result.levels:
            target.replace(self.out / f".{scanio.MONITOR_NAME}.prev")
        pids = () if self.server is None or self.server.pid is None else (self.server.pid,)
        mcfg = MonitorConfig(out=str(target), interval_s=self.cfg.monitor_interval_s,
                             sources=self.cfg.monitor_sources, pids=pids)
        self.monitor = Monitor(mcfg, log=log)
        self.tail = scanio.MonitorTail(target)
        self.monitor.start()

    def _stop_monitor(self) -> None:
        if self.monitor is None:
            return
        try:
            self.monitor.stop()
        finally:
            self.monitor = None
            scanio.append_monitor(self.out / f".{scanio.MONITOR_NAME}.prev", self.out / scanio.MONITOR_NAME)

    # -- the grid --------------------------------------------------------------------------------
    def _write(self) -> None:
        order = {level_name(c, b): i for i, (b, c) in enumerate(self.cfg.grid())}
        self.run_result.levels.sort(key=lambda lv: order.get(scanio.name_of(lv), len(order)))
        scanio.write_outputs(self.out, self.run_result, self.verdicts, self.cfg.latency_budget_ms,
                             self.cfg.load.percentile)

    async def _level(self, engine: LevelEngine, load: LoadConfig, batch: int, conc: int) -> None:
        name = level_name(conc, batch)
        failed: str | None = None
        cfg = dataclasses.replace(load, batch_size=batch, concurrency_range=Range(conc, conc, 1))
        if self.monitor is not None:
            self.monitor.phase(name)
        try:
            level = await engine.measure(cfg, conc)
        except ServerError as exc:
            failed = str(exc)
        except UsageError:
            raise
        except Exception as exc:  # a failed level is recorded and the scan goes on
            failed = f"{type(exc).__name__}: {exc}"
            assert self.progress is not None
            self.progress.log_line(traceback.format_exc())
            await engine.close()
        finally:
            if self.monitor is not None:
                self.monitor.phase("")
        if failed is not None:
            level = failed_level(batch, conc, failed)
        elif level.stability == "failed":  # the engine's tool failed it: its own message, kept as is
            failed = "; ".join(level.verdict.reasons) or "the engine failed this level"
        usage, power = self.tail.level(name) if self.monitor and self.tail else (None, None)
        verdict = decide(level, usage)
        level = dataclasses.replace(level, verdict=verdict.verdict())
        self.verdicts[name] = verdict.to_dict()
        if self.cfg.load.repeats > 1 and failed is None:
            level = self.trials.add(name, level)
        self.run_result.levels = [lv for lv in self.run_result.levels if scanio.name_of(lv) != name]
        level = dataclasses.replace(level, extras={**level.extras, "energy": energy.for_level(level, power)})
        self.run_result.levels.append(level)
        self._write()
        assert self.progress is not None
        self.progress.end_level(name, level, verdict.saturated, failed)

    async def _grid(self, engine: LevelEngine, load: LoadConfig) -> None:
        done = {scanio.name_of(lv) for lv in self.run_result.levels}
        grid = self.cfg.grid()
        assert self.progress is not None
        self.progress.skip(len(done))
        for _, (batch, conc) in order(grid, self.cfg.load.repeats):
            if level_name(conc, batch) in done:
                continue
            self.progress.start_level(level_name(conc, batch), grid.index((batch, conc)) + 1)
            await self._level(engine, load, batch, conc)

    async def _main(self, log: TextIO) -> None:
        load = self._load_config()
        if self.server is not None:
            await self.preflight(load, self.cfg.batch_sizes)
        self._start_monitor(log)
        engine = self.engine if self.engine is not None else make_engine(
            self.cfg.engine, self.out, self._on_window, self._echo, dict(self.cfg.engine_options))
        try:
            await self._grid(engine, load)
        finally:
            await engine.close()

    def _on_window(self, p: Any) -> None:
        if self.progress is not None:
            self.progress.window(p)

    def _echo(self, line: str) -> None:
        if self.progress is not None:
            self.progress.log_line(line)

    async def _run_async(self, log: TextIO) -> None:
        try:
            await cancel_on_signals(self._main(log), self._note_signal, self._sync_signal)
        except asyncio.CancelledError:
            if not self.signal_code:
                raise

    def _note_signal(self, signum: int) -> None:
        self.signal_code = 128 + signum

    def _sync_signal(self, signum: int, _frame: object) -> None:
        """Outside the event loop (server start, clean-up): note the signal, unwind as Ctrl-C does."""
        if not self.signal_code:
            self.signal_code = 128 + signum
            raise KeyboardInterrupt

    def run(self) -> int:
        """Run the grid; returns 0, 1 when a level failed, or 128+signal when SIGINT/SIGTERM ended it."""
        self._resume_state()
        if self.cfg.serve is None:
            asyncio.run(self.preflight(self.cfg.load, self.cfg.batch_sizes))  # before anything is written
        self.out.mkdir(parents=True, exist_ok=True)
        todo = [bc for bc in self.cfg.grid()
                if level_name(bc[1], bc[0]) not in {scanio.name_of(lv) for lv in self.run_result.levels}]
        previous = {sig: signal.signal(sig, self._sync_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._run(todo)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _run(self, todo: list[tuple[int, int]]) -> int:
        with open(self.out / scanio.LOG_NAME, "a") as log:
            self.progress = ScanProgress(len(self.cfg.grid()), log)
            self.progress.note(f"scan server: {len(todo)} of {len(self.cfg.grid())} levels to measure; "
                               f"results in {self.out}")
            try:
                if self.cfg.serve is not None and todo:
                    self.progress.note(f"scan server: starting {self.cfg.serve.model} "
                                       f"({self.cfg.serve.backend}/{self.cfg.serve.device})")
                    self.server = ServedServer(self.cfg.serve, self.out / "server.log").start()
                if todo:
                    with self.progress:
                        asyncio.run(self._run_async(log))
                self._write()
            except KeyboardInterrupt:
                self.signal_code = self.signal_code or 128 + signal.SIGINT
            finally:
                self._stop_monitor()
                if self.server is not None:
                    code = self.server.stop()
                    self.progress.note(f"scan server: server stopped (exit {code})")
            if self.signal_code:
                self.progress.note(f"scan server: interrupted; {len(self.run_result.levels)} levels kept in "
                                   f"{self.out / scanio.JSON_NAME}; rerun with --resume to go on")
                return self.signal_code
            levels = self.run_result.levels
            failed = sum(1 for lv in levels if is_failed(lv))
            none_valid = bool(levels) and not failed and not any(lv.verdict.valid for lv in levels)
            where = self.out / scanio.JSON_NAME
            self.progress.note(f"scan server: {len(levels)} levels in {where}"
                               + (f", {failed} failed (exit 1)" if failed else ""))
            if none_valid:  # like `saturate load`, a run with no trustworthy number does not exit 0
                self.progress.note("scan server: no level is valid (each unstable or flagged, see its "
                                   "reasons): lengthen -p or raise -s/-r, then --resume (exit 1)")
            for line in headline_lines(where):
                self.progress.note(f"scan server: {line}")
            return max(1 if failed or none_valid else 0, self._check_slo())

    def _check_slo(self) -> int:
        """``--slo``: each failed gate one line, the verdict in scan.json; 1 when one failed."""
        if not self.cfg.load.slo:
            return 0
        gates = gate_mod.parse_all(self.cfg.load.slo)
        failures = gate_mod.check_slo(gates, [(scanio.name_of(lv), gate_mod.level_metrics(lv))
                                              for lv in self.run_result.levels])
        self.run_result.extras["slo"] = gate_mod.verdict(gates, failures)
        self._write()
        assert self.progress is not None
        for f in failures:
            self.progress.note(f"scan server: {f.line()}")
        return 1 if failures else 0
