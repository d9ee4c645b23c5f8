"""Result types of a load run, from one measurement window up to the run JSON.

Times inside are integer ns; the JSON (``to_dict``) speaks µs (schema ``saturate.run/1``):

    RunResult            {"schema": "saturate.run/1", "tool", "env", "config", "levels": [LevelResult]}
    LevelResult          one load level: mode, concurrency|request_rate, batch_size, stable, windows,
                         throughput, latency_us, requests, client, server, gpu, verdict
    WindowStats          what the runner measured in one window (raw latencies, counters, server delta)
    ServerDelta          difference of two Triton model-statistics snapshots
    LatencySummary       avg/std/min/max and percentiles of a set of latencies

``from_dict(x.to_dict())`` gives back an equal object (µs precision for latencies read from JSON); the
fields' JSON forms are declared once, on the fields, and written and read by :mod:`loadgen.codec`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from loadgen.codec import JsonRecord, decode, encode, ns_as_us
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
class Throughput(JsonRecord):
    infer_per_s: float
    requests_per_s: float | None = None
    send_per_s: float | None = None  # requests actually sent per second (request-rate mode: vs target)



@dataclass(frozen=True)
class RequestCounts(JsonRecord):
    completed: int
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # failures per status code, e.g. UNAVAILABLE
    delayed: int = 0  # request-rate mode: sent more than 1 ms after the intended time
    dropped: int = 0  # request-rate mode: not sent because the outstanding cap was reached
    sent: int | None = None



@dataclass(frozen=True)
class ClientStats(JsonRecord):
    """Client-side averages per completed request (ns) and the client's CPU cost.

    ``request_ns`` is the client-side request time (send + response wait + recv); perf_analyzer's
    ``response wait`` = request - send - recv (in truncated µs). ``cpu_util`` is CPU seconds per
    wall second (1.0 = one core busy); None where unknown (e.g. read from a perf_analyzer CSV).
    """

    send_ns: int = ns_as_us()
    recv_ns: int = ns_as_us()
    request_ns: int | None = ns_as_us(default=None)
    cpu_ns_per_request: float | None = ns_as_us(default=None, key="cpu_us_per_request", as_float=True)
    cpu_util: float | None = None
    processes: int = 1
    #: mean event-loop wait of a ready completion (loadgen.looplag)
    loop_lag_ns: float | None = ns_as_us(default=None, as_float=True)
    #: which loop sent the level: "native", "native-sync", "threads" or "asyncio" (loadgen.threaded);
    #: None if unknown
    driver: str | None = None
    #: the threaded driver's sender: "native" (C core) or "python" (loadgen.clients.native_grpc);
    #: None when the level ran on the event loop or is unknown
    sender: str | None = None

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
        d = encode(self)
        at = list(d).index("request_us") + 1  # derived values beside what they derive from
        items = list(d.items())
        own = self.own_latency_ns
        return {**dict(items[:at]), "response_wait_us": self.response_wait_us, **dict(items[at:]),
                "own_latency_us": None if own is None else own / 1000}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClientStats:
        return decode(cls, d)


@dataclass(frozen=True)
class Verdict(JsonRecord):
    """What limits this level and whether its numbers can be trusted; ``reasons`` say why in words."""

    saturated: Saturation = "none"
    valid: bool = True
    reasons: list[str] = field(default_factory=list)



@dataclass(frozen=True)
class LevelResult(JsonRecord):
    """One load level as reported: the merge of its last (up to) 3 windows plus every window's summary.

    ``stable`` is perf_analyzer's notion (True also for the async ``throughput_only`` relaxation);
    ``stability`` says which case it was. ``latency`` is the JSON's ``latency_us`` block; in
    request-rate mode it is measured from the intended send time and ``service_latency`` from the
    actual send. Fields a perf_analyzer CSV lacks are None when read from one.
    """

    JSON_ORDER: ClassVar[tuple[str, ...]] = (
        "mode", "concurrency", "request_rate", "batch_size", "stable", "stability", "percentile", "windows",
        "throughput", "latency", "service_latency", "requests", "client", "server", "gpu", "verdict",
        "traffic")

    mode: Mode
    concurrency: int | None
    request_rate: float | None
    batch_size: int | None
    stable: bool
    throughput: Throughput
    latency: LatencySummary = field(metadata={"json": "latency_us"})
    client: ClientStats = field()
    stability: Stability = "stable"
    percentile: int | None = None  # the --percentile the level stabilised on (None: average)
    windows: list[WindowSummary] = field(default_factory=list)
    requests: RequestCounts | None = None
    server: ServerSummary | None = None
    gpu: GpuSummary | None = None
    service_latency: LatencySummary | None = field(default=None, metadata={"json": "service_latency_us"})
    verdict: Verdict = field(default_factory=Verdict)
    traffic: dict[str, Any] | None = None  # shapes sent / schedule followed (loadgen.shapes, .schedules)
    #: blocks owned by other modules, kept verbatim in the JSON under these keys (EXTRA_KEYS):
    #: ``histogram`` (loadgen.histogram), ``repeats`` (loadgen.repeats), ``energy`` (loadgen.energy)
    extras: dict[str, Any] = field(default_factory=dict, metadata={"skip": True})

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
        d = encode(self)
        if d["traffic"] is None:
            del d["traffic"]
        return {**d, **{k: self.extras[k] for k in EXTRA_KEYS if k in self.extras}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LevelResult:
        stability = d.get("stability") or ("stable" if d["stable"] else "unstable")
        return decode(cls, d, stability=stability,
                      extras={k: d[k] for k in EXTRA_KEYS if d.get(k) is not None})


# ------------------------------------------------------------------------------------------------ run


@dataclass
class RunResult(JsonRecord):
    """The whole run: ``schema``, ``tool``, ``env``, ``config`` (every setting after defaults), ``levels``.

    Mutable on purpose: the runner appends each level and calls :meth:`write` after it.
    """

    tool: dict[str, Any] = field(default_factory=lambda: {"name": "saturate", "version": "unknown"})
    env: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    levels: list[LevelResult] = field(default_factory=list)
    schema: str = SCHEMA
    #: RUN_EXTRA_KEYS: ``slo`` (loadgen.gates)
    extras: dict[str, Any] = field(default_factory=dict, metadata={"skip": True})
    JSON_ORDER: ClassVar[tuple[str, ...]] = ("schema", "tool", "env", "config", "levels")

    def to_dict(self) -> dict[str, Any]:
        return {**encode(self), **{k: self.extras[k] for k in RUN_EXTRA_KEYS if k in self.extras}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunResult:
        if d.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document (schema={d.get('schema')!r})")
        return decode(cls, d, extras={k: d[k] for k in RUN_EXTRA_KEYS if d.get(k) is not None})

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
