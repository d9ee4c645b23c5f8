"""Result types of a load run, from one measurement window up to the run JSON.

Times inside are integer ns; the JSON (``to_dict``) speaks µs like DESIGN.md's result JSON:

    RunResult            {"schema": "saturate.run/1", "tool", "env", "config", "levels": [LevelResult]}
    LevelResult          one load level: mode, concurrency|request_rate, batch_size, stable, windows,
                         throughput, latency_us, requests, client, server, gpu, verdict
    WindowStats          what the runner measured in one window (raw latencies, counters, server delta)
    ServerDelta          difference of two Triton model-statistics snapshots
    LatencySummary       avg/std/min/max and percentiles of a set of latencies

``from_dict(x.to_dict())`` gives back an equal object (µs precision for latencies read from JSON).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from loadgen.summaries import (
    STANDARD_PERCENTILES,
    GpuSample,
    GpuSummary,
    I64Array,
    LatencySummary,
    ServerDelta,
    ServerSummary,
    WindowStats,
    WindowSummary,
    _ns,
    _us,
    empty_latencies,
)
from saturate.atomic import atomic_file

__all__ = [
    "SCHEMA",
    "STANDARD_PERCENTILES",
    "ClientStats",
    "GpuSample",
    "GpuSummary",
    "I64Array",
    "LatencySummary",
    "LevelResult",
    "Mode",
    "RequestCounts",
    "RunResult",
    "Saturation",
    "ServerDelta",
    "ServerSummary",
    "Stability",
    "Throughput",
    "Verdict",
    "WindowStats",
    "WindowSummary",
    "empty_latencies",
    "write_json_atomic",
]

SCHEMA = "saturate.run/1"
#: Per-level JSON blocks that other modules own (see LevelResult.extras).
EXTRA_KEYS: tuple[str, ...] = ("histogram", "repeats", "energy")
RUN_EXTRA_KEYS: tuple[str, ...] = ("slo",)

Mode = Literal["concurrency", "request_rate", "direct"]
Stability = Literal[
    "stable",  # PA's rule held on throughput and latency
    "throughput_only",  # async relaxation: only throughput was stable after max trials (PA treats as stable)
    "unstable",  # never stable within max trials
    "over_latency_threshold",  # stabilising latency reached --latency-threshold
    "empty_window",  # a window of the last 3 recorded no completed request: lengthen -p
    "interrupted",  # ended early (server died, Ctrl-C); holds what was measured
    "failed",  # the measuring tool (perf_analyzer) failed the level; its message is the verdict's reason
]
Saturation = Literal["client", "server_queue", "gpu", "none"]


# ---------------------------------------------------------------------------------------------- level


@dataclass(frozen=True)
class Throughput:
    infer_per_s: float
    requests_per_s: float | None = None
    send_per_s: float | None = None  # requests actually sent per second (request-rate mode: vs target)

    def to_dict(self) -> dict[str, Any]:
        return {
            "infer_per_s": self.infer_per_s,
            "requests_per_s": self.requests_per_s,
            "send_per_s": self.send_per_s,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Throughput:
        def opt(k: str) -> float | None:
            return None if d.get(k) is None else float(d[k])

        return cls(float(d["infer_per_s"]), opt("requests_per_s"), opt("send_per_s"))


@dataclass(frozen=True)
class RequestCounts:
    completed: int
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # failures per status code, e.g. UNAVAILABLE
    delayed: int = 0  # request-rate mode: sent more than 1 ms after the intended time
    dropped: int = 0  # request-rate mode: not sent because the outstanding cap was reached
    sent: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "completed": self.completed,
            "failed": self.failed,
            "errors": dict(self.errors),
            "delayed": self.delayed,
            "dropped": self.dropped,
            "sent": self.sent,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RequestCounts:
        return cls(
            completed=int(d["completed"]),
            failed=int(d.get("failed", 0)),
            errors={str(k): int(v) for k, v in (d.get("errors") or {}).items()},
            delayed=int(d.get("delayed", 0)),
            dropped=int(d.get("dropped", 0)),
            sent=None if d.get("sent") is None else int(d["sent"]),
        )


@dataclass(frozen=True)
class ClientStats:
    """Client-side averages per completed request (ns) and the client's CPU cost.

    ``request_ns`` is the client-side request time (send + response wait + recv); perf_analyzer's
    ``response wait`` = request - send - recv (in truncated µs). ``cpu_util`` is CPU seconds per
    wall second (1.0 = one core busy); None where unknown (e.g. read from a perf_analyzer CSV).
    """

    send_ns: int
    recv_ns: int
    request_ns: int | None = None
    cpu_ns_per_request: float | None = None
    cpu_util: float | None = None
    processes: int = 1
    loop_lag_ns: float | None = None  # mean event-loop wait of a ready completion (loadgen.looplag)

    @property
    def own_latency_ns(self) -> float | None:
        """The client's own share of a request's latency (loadgen.looplag): CPU per request + loop wait,
        at most the client-side request time."""
        if self.cpu_ns_per_request is None or self.loop_lag_ns is None:
            return None
        own = self.cpu_ns_per_request + self.loop_lag_ns
        return min(own, float(self.request_ns)) if self.request_ns else own

    @property
    def response_wait_us(self) -> int | None:
        if self.request_ns is None:
            return None
        return self.request_ns // 1000 - self.send_ns // 1000 - self.recv_ns // 1000

    def to_dict(self) -> dict[str, Any]:
        return {
            "send_us": _us(self.send_ns),
            "recv_us": _us(self.recv_ns),
            "request_us": _us(self.request_ns),
            "response_wait_us": self.response_wait_us,
            "cpu_us_per_request": None if self.cpu_ns_per_request is None else self.cpu_ns_per_request / 1000,
            "cpu_util": self.cpu_util,
            "processes": self.processes,
            "loop_lag_us": None if self.loop_lag_ns is None else self.loop_lag_ns / 1000,
            "own_latency_us": None if self.own_latency_ns is None else self.own_latency_ns / 1000,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClientStats:
        cpu = d.get("cpu_us_per_request")
        return cls(
            send_ns=int(d["send_us"]) * 1000,
            recv_ns=int(d["recv_us"]) * 1000,
            request_ns=_ns(d.get("request_us")),
            cpu_ns_per_request=None if cpu is None else float(cpu) * 1000,
            cpu_util=None if d.get("cpu_util") is None else float(d["cpu_util"]),
            processes=int(d.get("processes", 1)),
            loop_lag_ns=None if d.get("loop_lag_us") is None else float(d["loop_lag_us"]) * 1000,
        )


@dataclass(frozen=True)
class Verdict:
    """What limits this level and whether its numbers can be trusted; ``reasons`` say why in words."""

    saturated: Saturation = "none"
    valid: bool = True
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"saturated": self.saturated, "valid": self.valid, "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        return cls(
            saturated=d.get("saturated", "none"),
            valid=bool(d.get("valid", True)),
            reasons=[str(r) for r in d.get("reasons") or []],
        )


@dataclass(frozen=True)
class LevelResult:
    """One load level as reported: the merge of its last (up to) 3 windows plus every window's summary.

    ``stable`` is perf_analyzer's notion (True also for the async ``throughput_only`` relaxation);
    ``stability`` says which case it was. ``latency`` is the JSON's ``latency_us`` block; in
    request-rate mode it is measured from the intended send time and ``service_latency`` from the
    actual send. Fields a perf_analyzer CSV lacks are None when read from one.
    """

    mode: Mode
    concurrency: int | None
    request_rate: float | None
    batch_size: int | None
    stable: bool
    throughput: Throughput
    latency: LatencySummary
    client: ClientStats
    stability: Stability = "stable"
    percentile: int | None = None  # the --percentile the level stabilised on (None: average)
    windows: list[WindowSummary] = field(default_factory=list)
    requests: RequestCounts | None = None
    server: ServerSummary | None = None
    gpu: GpuSummary | None = None
    service_latency: LatencySummary | None = None
    verdict: Verdict = field(default_factory=Verdict)
    traffic: dict[str, Any] | None = None  # shapes sent / schedule followed (loadgen.shapes, .schedules)
    #: blocks owned by other modules, kept verbatim in the JSON under these keys (EXTRA_KEYS):
    #: ``histogram`` (loadgen.histogram), ``repeats`` (loadgen.repeats), ``energy`` (loadgen.energy)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def value(self) -> float:
        """The level's load value: concurrency, or the request rate."""
        if self.mode == "request_rate":
            return float(self.request_rate or 0.0)
        return float(self.concurrency or 0)

    @property
    def stabilizing_latency_ns(self) -> int:
        return self.latency.stabilizing_ns(self.percentile)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "concurrency": self.concurrency,
            "request_rate": self.request_rate,
            "batch_size": self.batch_size,
            "stable": self.stable,
            "stability": self.stability,
            "percentile": self.percentile,
            "windows": [w.to_dict() for w in self.windows],
            "throughput": self.throughput.to_dict(),
            "latency_us": self.latency.to_dict(),
            "service_latency_us": None if self.service_latency is None else self.service_latency.to_dict(),
            "requests": None if self.requests is None else self.requests.to_dict(),
            "client": self.client.to_dict(),
            "server": None if self.server is None else self.server.to_dict(),
            "gpu": None if self.gpu is None else self.gpu.to_dict(),
            "verdict": self.verdict.to_dict(),
            **({"traffic": self.traffic} if self.traffic is not None else {}),
            **{k: self.extras[k] for k in EXTRA_KEYS if k in self.extras},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LevelResult:
        svc = d.get("service_latency_us")
        return cls(
            mode=d["mode"],
            concurrency=None if d.get("concurrency") is None else int(d["concurrency"]),
            request_rate=None if d.get("request_rate") is None else float(d["request_rate"]),
            batch_size=None if d.get("batch_size") is None else int(d["batch_size"]),
            stable=bool(d["stable"]),
            stability=d.get("stability", "stable" if d["stable"] else "unstable"),
            percentile=None if d.get("percentile") is None else int(d["percentile"]),
            windows=[WindowSummary.from_dict(w) for w in d.get("windows") or []],
            throughput=Throughput.from_dict(d["throughput"]),
            latency=LatencySummary.from_dict(d["latency_us"]),
            service_latency=LatencySummary.from_dict(svc) if svc else None,
            requests=RequestCounts.from_dict(d["requests"]) if d.get("requests") else None,
            client=ClientStats.from_dict(d["client"]),
            server=ServerSummary.from_dict(d["server"]) if d.get("server") else None,
            gpu=GpuSummary.from_dict(d["gpu"]) if d.get("gpu") else None,
            verdict=Verdict.from_dict(d.get("verdict") or {}),
            traffic=d.get("traffic"),
            extras={k: d[k] for k in EXTRA_KEYS if d.get(k) is not None},
        )


# ------------------------------------------------------------------------------------------------ run


@dataclass
class RunResult:
    """The whole run: ``schema``, ``tool``, ``env``, ``config`` (every setting after defaults), ``levels``.

    Mutable on purpose: the runner appends each level and calls :meth:`write` after it.
    """

    tool: dict[str, Any] = field(default_factory=lambda: {"name": "saturate", "version": "unknown"})
    env: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    levels: list[LevelResult] = field(default_factory=list)
    schema: str = SCHEMA
    extras: dict[str, Any] = field(default_factory=dict)  # RUN_EXTRA_KEYS: ``slo`` (loadgen.gates)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "tool": dict(self.tool),
            "env": dict(self.env),
            "config": dict(self.config),
            "levels": [lv.to_dict() for lv in self.levels],
            **{k: self.extras[k] for k in RUN_EXTRA_KEYS if k in self.extras},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunResult:
        if d.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document (schema={d.get('schema')!r})")
        return cls(
            tool=dict(d.get("tool") or {}),
            env=dict(d.get("env") or {}),
            config=dict(d.get("config") or {}),
            levels=[LevelResult.from_dict(lv) for lv in d.get("levels") or []],
            extras={k: d[k] for k in RUN_EXTRA_KEYS if d.get(k) is not None},
        )

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the JSON atomically (temp file in the same directory, fsync, ``os.replace``)."""
        write_json_atomic(path, self.to_dict())

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> RunResult:
        return cls.from_dict(json.loads(Path(path).read_text()))


def write_json_atomic(path: str | os.PathLike[str], doc: Any) -> None:
    """Write ``doc`` as indented JSON so a reader never sees a half-written file."""
    with atomic_file(path) as f:
        json.dump(doc, f, indent=1, allow_nan=False)
        f.write("\n")
