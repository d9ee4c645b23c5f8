"""The level loop: pre-flight checks, warm-up, windows until stable or `-r`, server-stat snapshots
at window edges, client CPU per request, outputs after every level, and a server lost mid-level.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from loadgen import levelstats as ls
from loadgen import perfcsv
from loadgen.clients import make_client
from loadgen.clients.base import Client, Payload
from loadgen.config import LoadConfig
from loadgen.drivers import WindowPart
from loadgen.inputs import build_requests
from loadgen.metrics import MetricsPoller, aggregate
from loadgen.multiproc import MultiProcessSource
from loadgen.sources import InProcessSource, LoadSource
from saturate.errors import ServerError

EXIT_OK, EXIT_LOST, EXIT_UNSTABLE = 0, 1, 2
#: Client CPU above this fraction of a core per process means the client, not the server, limits.
CLIENT_BOUND_UTIL = 0.8
COUNT_WINDOW_MIN_S = 1.0
COUNT_WINDOW_MAX_S = 120.0


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Run:
    """One `saturate load` run: owns the control client, the load source and the outputs."""

    def __init__(
        self, cfg: LoadConfig, client: Client, source: LoadSource, stats: bool, poller: MetricsPoller | None
    ) -> None:
        self.cfg = cfg
        self.client = client
        self.source = source
        self.stats = stats
        self.poller = poller
        self.levels: list[dict[str, Any]] = []

    async def snapshot(self) -> dict[str, Any] | None:
        return await self.client.statistics(self.cfg.model, self.cfg.model_version) if self.stats else None

    async def measure(self, value: float) -> tuple[dict[str, Any], str]:
        """One level; returns its dict and "stable" | "unstable" | "lost" | "empty"."""
        cfg = self.cfg
        await self.source.start_level(value)
        edge = time.perf_counter_ns()
        await self.source.reset(edge)
        prev = await self.snapshot()
        if self.poller:
            self.poller.take()
        parts: list[WindowPart] = []
        windows: list[dict[str, Any]] = []
        gpus: list[Any] = []
        status = "unstable"
        for trial in range(cfg.max_trials):
            await self._wait_window(edge)
            edge = time.perf_counter_ns()
            part = await self.source.cut(edge)
            try:
                cur = await self.snapshot()
            except ServerError:
                cur, status = None, "lost"
            win = ls.window_record(
                part, ls.server_delta(prev, cur, cfg.model_version), cfg.batch_size, cfg.percentile
            )
            prev = cur
            parts.append(part)
            windows.append(win)
            if self.poller:
                gpus.append(self.poller.take())
            self._progress(value, trial, win, part)
            if part.completed == 0 and part.failed and set(part.errors) <= {"UNAVAILABLE", "CANCELLED"}:
                status = "lost"
            if status == "lost":
                break
            if part.completed == 0:
                status = "empty"
                break
            if ls.is_stable(windows, cfg.stability_percentage, cfg.percentile):
                status = "stable"
                break
            if ls.over_latency_threshold(windows, cfg.latency_threshold_ms, cfg.percentile):
                break
        await self.source.stop_level()
        relaxed = False
        if (
            status == "unstable"
            and cfg.async_relaxation
            and ls.is_stable(windows, cfg.stability_percentage, cfg.percentile, throughput_only=True)
        ):
            status, relaxed = "stable", True
            _err("Warning: Request latency is not stabilizing. Please try lowering the request rate.")
        use = [p for p in parts if p.completed][-3:] if status == "lost" else parts[-3:]
        used_windows = [w for w in windows if w["completed"]][-3:] if status == "lost" else windows[-3:]
        gpu = None
        if self.poller and gpus:
            g = aggregate([])
            for src in gpus[-len(use) :] or gpus:
                for key in ("util", "power_w", "mem_used_bytes", "mem_total_bytes"):
                    getattr(g, key).update(getattr(src, key))
            gpu = g.to_dict()
        level = ls.level_dict(
            cfg.mode,
            value,
            cfg.batch_size,
            use,
            used_windows,
            status == "stable",
            cfg.percentile,
            cfg.processes,
            gpu,
        )
        level["windows"] = [{k: v for k, v in w.items() if k != "server"} for w in windows]
        level["verdict"] = self._verdict(level, status, relaxed)
        return level, status

    async def _wait_window(self, start_ns: int) -> None:
        cfg = self.cfg
        if cfg.measurement_mode == "time_windows":
            await asyncio.sleep(
                max(0.0, (start_ns + cfg.measurement_interval_ms * 1_000_000 - time.perf_counter_ns()) / 1e9)
            )
            return
        t0 = time.monotonic()
        while time.monotonic() - t0 < COUNT_WINDOW_MAX_S:
            await asyncio.sleep(0.05)
            if (
                time.monotonic() - t0 >= COUNT_WINDOW_MIN_S
                and self.source.pending() >= cfg.measurement_request_count
            ):
                return

    def _progress(self, value: float, trial: int, win: dict[str, Any], part: WindowPart) -> None:
        lat = win["latency_us"]
        what = f"concurrency {int(value)}" if self.cfg.mode == "concurrency" else f"rate {value:g}/s"
        fails = f", {part.failed} failed {part.errors}" if part.failed else ""
        _err(
            f"  [{what}] window {trial + 1}/{self.cfg.max_trials}: {win['infer_per_s']:.2f} infer/s, "
            f"avg {lat.get('avg', 0)} us, p99 {lat.get('p99', 0)} us{fails}"
        )

    def _verdict(self, level: dict[str, Any], status: str, relaxed: bool) -> dict[str, Any]:
        reasons: list[str] = []
        saturated = "none"
        util = level["client"]["cpu_util"] / max(1, self.cfg.processes)
        if util >= CLIENT_BOUND_UTIL:
            saturated = "client"
            reasons.append(
                f"client CPU at {util:.0%} of a core per process: the client, not the server, "
                "may be the bottleneck; add --processes"
            )
        elif level["server"] and level["server"]["queue_us"] > level["server"]["compute_infer_us"]:
            saturated = "server_queue"
        gpu = level.get("gpu") or {}
        if saturated == "none" and any(v >= 0.9 for v in (gpu.get("util") or {}).values()):
            saturated = "gpu"
        req = level["requests"]
        if req["failed"]:
            reasons.append(f"{req['failed']} failed requests {req['errors']}")
        if status == "lost":
            reasons.append("server stopped answering mid-level; the level holds what was measured before")
        elif status == "empty":
            reasons.append("no request completed within a window; use a larger -p/--measurement-interval")
        elif status != "stable":
            reasons.append(f"not stable within {self.cfg.max_trials} windows")
        if relaxed:
            reasons.append("throughput-only stability (async relaxation): latency did not stabilize")
        done = req["completed"]
        if done and req["delayed"] / done > 0.01:
            reasons.append(f"{req['delayed'] / done:.1%} of requests were sent late (> 1 ms)")
        if req["dropped"]:
            reasons.append(f"{req['dropped']} requests dropped at --max-outstanding")
        valid = status == "stable" and not req["failed"] and not relaxed
        return {"saturated": saturated, "valid": valid, "reasons": reasons}

    def report(self, level: dict[str, Any]) -> None:
        c, lat, s = level["client"], level["latency_us"], level["server"]
        key = "Concurrency" if level["mode"] == "concurrency" else "Request Rate"
        out = [
            f"{key}: {level['concurrency'] or level['request_rate']}",
            "  Client:",
            f"    Request count: {level['requests']['completed']}",
            f"    Throughput: {level['throughput']['infer_per_s']:.2f} infer/sec",
        ]
        if lat:
            if not self.cfg.percentile:
                out.append(f"    Avg latency: {lat['avg']} usec (standard deviation {lat['std']} usec)")
            out += [f"    {k} latency: {v} usec" for k, v in lat.items() if k.startswith("p")]
        out.append(
            f"    Client CPU: {c['cpu_us_per_request']:.0f} usec/request ({c['cpu_util']:.0%} of a core)"
        )
        r = level["requests"]
        if r["failed"] or r["delayed"] or r["dropped"]:
            out.append(
                f"    Failed: {r['failed']} {r['errors']}  Delayed: {r['delayed']}  Dropped: {r['dropped']}"
            )
        if s:
            out += [
                "  Server:",
                f"    Inference count: {s['inferences']}",
                f"    Execution count: {s['executions']}",
                f"    Successful request count: {s['success_count']}",
                f"    Avg request latency: {s['success_us']} usec (queue {s['queue_us']} usec + "
                f"compute input "
                f"{s['compute_input_us']} usec + compute infer {s['compute_infer_us']} usec + compute output "
                f"{s['compute_output_us']} usec)",
            ]
        for reason in level["verdict"]["reasons"]:
            out.append(f"  [WARNING] {reason}")
        print("\n".join(out), flush=True)

    def write(self) -> None:
        cfg = self.cfg
        if cfg.json_file:
            doc = {
                "schema": "saturate.run/1",
                "tool": {"name": "saturate", "version": _version()},
                "env": _env(),
                "config": cfg.to_dict(),
                "levels": self.levels,
            }
            _atomic_write(cfg.json_file, json.dumps(doc, indent=1, default=_json_default))
        if cfg.csv_file:
            rows = [lv for lv in self.levels if lv["requests"]["completed"]]
            _atomic_write(
                cfg.csv_file,
                perfcsv.csv_text(
                    rows, cfg.mode, cfg.percentile, cfg.verbose_csv, cfg.collect_metrics, self.stats
                ),
            )


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(type(o).__name__)


def _atomic_write(path: str, text: str) -> None:
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, p)


def _version() -> str:
    from saturate.version import saturate_version

    return saturate_version()


def _env() -> dict[str, Any]:
    from importlib import metadata

    out: dict[str, Any] = {
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "gpus": [],
    }
    for name in ("tritonclient", "grpcio", "aiohttp"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


async def _prepare(cfg: LoadConfig, client: Client) -> tuple[bool, list[Payload]]:
    """Pre-flight: model metadata/config, inputs, one test request, statistics (and the token)."""
    info = await client.model_info(cfg.model, cfg.model_version)
    requests = build_requests(info, dict(cfg.shapes), cfg.batch_size, cfg.input_data, cfg.seed)
    payloads = [client.prepare(cfg.model, cfg.model_version, r) for r in requests]
    await client.infer_checked(payloads[0])
    stats = await client.has_statistics()
    if stats:
        await client.statistics(cfg.model, cfg.model_version)
    return stats, payloads


async def run(cfg: LoadConfig) -> int:
    """Run every level of the sweep; returns the exit code."""
    client = make_client(cfg.protocol, cfg.url, cfg.access_token)
    await client.open()
    source: LoadSource | None = None
    poller: MetricsPoller | None = None
    try:
        stats, payloads = await _prepare(cfg, client)
        if cfg.processes > 1:
            mps = MultiProcessSource(cfg)
            source = mps
            await mps.open()
        else:
            source = InProcessSource(cfg, client, payloads)
        if cfg.collect_metrics:
            poller = MetricsPoller(cfg.resolved_metrics_url, cfg.metrics_interval_ms)
            await poller.start()
        run_ = Run(cfg, client, source, stats, poller)
        return await _sweep(cfg, run_)
    finally:
        if poller:
            await poller.stop()
        if source is not None:
            await source.close()
        await client.close()


async def _sweep(cfg: LoadConfig, run_: Run) -> int:
    what = "concurrency" if cfg.mode == "concurrency" else "request rate"
    _err(
        f"*** saturate load: {cfg.model} at {cfg.url} ({cfg.protocol}), batch {cfg.batch_size}, "
        f"windows of {cfg.measurement_interval_ms} ms, {cfg.processes} process(es) ***"
    )
    if cfg.warmup_request_count:
        first = next(iter(cfg.levels()))
        await run_.source.warmup(first, cfg.warmup_request_count, 60.0)
    code = EXIT_OK
    for i, value in enumerate(cfg.levels()):
        _err(f"Request {what}: {value:g}")
        level, status = await run_.measure(value)
        run_.levels.append(level)
        run_.write()
        run_.report(level)
        if status == "lost":
            _err(
                f"saturate: error: the server at {cfg.url} stopped answering during {what} {value:g}; "
                "that level is flagged and outputs hold what was measured"
            )
            return EXIT_LOST
        if status != "stable":
            _err(
                f"Failed to obtain stable measurement within {cfg.max_trials} measurement windows for "
                f"{what} {value:g}. Please try to increase the --measurement-interval."
            )
            if i == 0 and not cfg.continue_on_unstable:
                code = EXIT_UNSTABLE
            if not cfg.continue_on_unstable:
                break
        lat = ls.stabilizing_latency(level, cfg.percentile) if level["latency_us"] else 0
        if cfg.latency_threshold_ms and lat >= cfg.latency_threshold_ms * 1000:
            _err(f"Measured latency went over the set limit of {cfg.latency_threshold_ms} msec.")
            break
    return code
