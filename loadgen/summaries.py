"""The parts of a level result: server counter deltas and summaries, GPU samples and summaries,
latency summaries, measurement windows (ns inside, µs in ``to_dict``).
Re-exported by :mod:`loadgen.result`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from loadgen.codec import JsonRecord, ns_as_us

STANDARD_PERCENTILES: tuple[int, ...] = (50, 90, 95, 99)

I64Array = npt.NDArray[np.int64]


def _us(ns: int | None) -> int | None:
    """ns → integer µs, truncated like perf_analyzer (``ns / 1000`` on uint64)."""
    return None if ns is None else int(ns) // 1000


def _ns(us: Any) -> int | None:
    return None if us is None else int(us) * 1000


def empty_latencies() -> I64Array:
    return np.zeros(0, dtype=np.int64)

# --------------------------------------------------------------------------------------------- server


@dataclass(frozen=True)
class ServerDelta(JsonRecord):
    """Counter deltas of Triton's model statistics over an interval (see ``loadgen.serverstats``).

    ``*_count``/``*_ns`` are the count and cumulative ns of ``inference_stats.<name>``;
    ``inference_count`` counts batch elements, ``execution_count`` model executions.
    """

    success_count: int = 0
    success_ns: int = 0
    queue_count: int = 0
    queue_ns: int = 0
    compute_input_count: int = 0
    compute_input_ns: int = 0
    compute_infer_count: int = 0
    compute_infer_ns: int = 0
    compute_output_count: int = 0
    compute_output_ns: int = 0
    cache_hit_count: int = 0
    cache_hit_ns: int = 0
    cache_miss_count: int = 0
    cache_miss_ns: int = 0
    inference_count: int = 0
    execution_count: int = 0

    def __add__(self, other: ServerDelta) -> ServerDelta:
        return ServerDelta(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @property
    def avg_batch(self) -> float:
        """Inferences per execution (dynamic batching merges requests); 0.0 without executions."""
        return self.inference_count / self.execution_count if self.execution_count else 0.0



@dataclass(frozen=True)
class ServerSummary(JsonRecord):
    """Server-side averages per request (ns) for a level, as perf_analyzer reports them.

    ``network_server_ns`` is the CSV's Network+Server Send/Recv; ``request_ns`` the server's average
    request latency (Δsuccess.ns/Δsuccess.count); ``overhead_ns`` its part outside queue + compute.
    Values read from a CSV carry only what the CSV has (the rest stays None).
    """

    queue_ns: int = ns_as_us()
    compute_input_ns: int = ns_as_us()
    compute_infer_ns: int = ns_as_us()
    compute_output_ns: int = ns_as_us()
    network_server_ns: int = ns_as_us(absent=0)
    request_ns: int | None = ns_as_us(default=None)
    overhead_ns: int | None = ns_as_us(default=None)
    avg_batch: float | None = None
    executions: int | None = None
    inferences: int | None = None
    success_count: int | None = None
    cache_hit_ns: int | None = ns_as_us(default=None)
    cache_miss_ns: int | None = ns_as_us(default=None)
    #: the summed counters behind the averages
    delta: ServerDelta | None = field(default=None, metadata={"json": "counters"})


# ------------------------------------------------------------------------------------------------ gpu


@dataclass(frozen=True)
class GpuSample:
    """One scrape of Triton's /metrics: values per GPU UUID (a metric the server lacks is empty)."""

    t_ns: int
    util: dict[str, float] = field(default_factory=dict)  # nv_gpu_utilization, fraction 0-1
    power_w: dict[str, float] = field(default_factory=dict)  # nv_gpu_power_usage
    mem_used_bytes: dict[str, int] = field(default_factory=dict)  # nv_gpu_memory_used_bytes
    mem_total_bytes: dict[str, int] = field(default_factory=dict)  # nv_gpu_memory_total_bytes


@dataclass(frozen=True)
class GpuSummary(JsonRecord):
    """Per-UUID GPU metrics of a level, merged as perf_analyzer does: util and power averaged over all
    samples, memory used the maximum, total memory the first sample."""

    util: dict[str, float] = field(default_factory=dict)
    power_w: dict[str, float] = field(default_factory=dict)
    mem_used_bytes: dict[str, int] = field(default_factory=dict)
    mem_total_bytes: dict[str, int] = field(default_factory=dict)

    @classmethod
    def merge(cls, samples: list[GpuSample]) -> GpuSummary:
        util: dict[str, list[float]] = {}
        power: dict[str, list[float]] = {}
        used: dict[str, int] = {}
        total: dict[str, int] = {}
        for s in samples:
            for k, v in s.util.items():
                util.setdefault(k, []).append(v)
            for k, v in s.power_w.items():
                power.setdefault(k, []).append(v)
            for k, m in s.mem_used_bytes.items():
                used[k] = max(used.get(k, m), m)
            for k, m in s.mem_total_bytes.items():
                total.setdefault(k, m)
        return cls(
            util={k: sum(v) / len(v) for k, v in sorted(util.items())},
            power_w={k: sum(v) / len(v) for k, v in sorted(power.items())},
            mem_used_bytes=dict(sorted(used.items())),
            mem_total_bytes=dict(sorted(total.items())),
        )


# -------------------------------------------------------------------------------------------- latency


@dataclass(frozen=True)
class LatencySummary(JsonRecord):
    """Latency statistics in ns (``to_dict`` gives integer µs, truncated as perf_analyzer does).

    ``percentiles_ns`` maps p → value for 50, 90, 95, 99 and the ``--percentile`` one, in sorted order.
    ``avg_ns``/``std_ns``/``min_ns``/``max_ns``/``count`` are None when the source lacks them (a
    perf_analyzer CSV without --verbose-csv has no average; std is None for a single request).
    """

    percentiles_ns: dict[int, int]
    avg_ns: int | None = None
    std_ns: int | None = None
    min_ns: int | None = None
    max_ns: int | None = None
    count: int | None = None

    def p(self, q: int) -> int:
        """The q-th percentile in ns (KeyError when it was not computed)."""
        return self.percentiles_ns[q]

    def stabilizing_ns(self, percentile: int | None) -> int:
        """The latency perf_analyzer stabilises on: the average, or p``percentile`` when given."""
        if percentile is not None:
            return self.percentiles_ns[percentile]
        if self.avg_ns is None:
            raise ValueError("no average latency recorded")
        return self.avg_ns

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "avg": _us(self.avg_ns),
            "std": _us(self.std_ns),
            "min": _us(self.min_ns),
            "max": _us(self.max_ns),
        }
        for q in sorted(self.percentiles_ns):
            out[f"p{q}"] = _us(self.percentiles_ns[q])
        out["count"] = self.count
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LatencySummary:
        pct = {int(k[1:]): int(v) * 1000 for k, v in d.items() if k[:1] == "p" and k[1:].isdigit()}
        return cls(
            percentiles_ns=dict(sorted(pct.items())),
            avg_ns=_ns(d.get("avg")),
            std_ns=_ns(d.get("std")),
            min_ns=_ns(d.get("min")),
            max_ns=_ns(d.get("max")),
            count=None if d.get("count") is None else int(d["count"]),
        )


# --------------------------------------------------------------------------------------------- window


@dataclass(eq=False)
class WindowStats:
    """What one measurement window recorded (filled by the runner, merged across processes).

    A request belongs to the window in which it completes. ``latencies_ns`` holds one entry per
    completed request: from just before the send (closed loop) or from the **intended** send time
    (request-rate mode) to completion; ``service_ns`` (request-rate mode) from the actual send.
    ``send_ns_total``/``recv_ns_total`` are summed client marshal/unmarshal times of the completed
    requests, ``request_ns_total`` their summed client-side request time (0: use the latencies).
    ``sent`` counts requests sent in the window, ``cpu_ns`` the client CPU time spent in it (all
    processes). ``server`` is the model-statistics delta over the window, None without statistics.
    """

    start_ns: int
    end_ns: int
    latencies_ns: I64Array = field(default_factory=empty_latencies)
    service_ns: I64Array | None = None
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    send_ns_total: int = 0
    recv_ns_total: int = 0
    request_ns_total: int = 0
    sent: int = 0
    delayed: int = 0
    dropped: int = 0
    cpu_ns: int = 0
    server: ServerDelta | None = None
    gpu_samples: list[GpuSample] = field(default_factory=list)
    loop_lag_ns_total: int = 0  # summed event-loop waits of the probe's samples (loadgen.looplag)
    loop_lag_samples: int = 0

    @property
    def completed(self) -> int:
        return int(self.latencies_ns.size)

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    def infer_per_s(self, batch_size: int) -> float:
        """Completed requests * batch / measured window seconds."""
        d = self.duration_ns
        return self.completed * batch_size * 1e9 / d if d > 0 else 0.0


@dataclass(frozen=True)
class WindowSummary(JsonRecord):
    """One window as the run JSON keeps it (no raw latencies)."""

    start_ns: int
    end_ns: int
    completed: int
    failed: int = field(metadata={"absent": 0})
    infer_per_s: float
    latency: LatencySummary | None = field(metadata={"json": "latency_us"})
    errors: dict[str, int] = field(default_factory=dict)
    delayed: int = 0
    dropped: int = 0

