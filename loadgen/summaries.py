"""The parts of a level result: server counter deltas and summaries, GPU samples and summaries,
latency summaries, measurement windows (ns inside, µs in ``to_dict``).
Re-exported by :mod:`loadgen.result`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

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
class ServerDelta:
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

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ServerDelta:
        names = {f.name for f in fields(cls)}
        return cls(**{k: int(v) for k, v in d.items() if k in names})


@dataclass(frozen=True)
class ServerSummary:
    """Server-side averages per request (ns) for a level, as perf_analyzer reports them.

    ``network_server_ns`` is the CSV's Network+Server Send/Recv; ``request_ns`` the server's average
    request latency (Δsuccess.ns/Δsuccess.count); ``overhead_ns`` its part outside queue + compute.
    Values read from a CSV carry only what the CSV has (the rest stays None).
    """

    queue_ns: int
    compute_input_ns: int
    compute_infer_ns: int
    compute_output_ns: int
    network_server_ns: int
    request_ns: int | None = None
    overhead_ns: int | None = None
    avg_batch: float | None = None
    executions: int | None = None
    inferences: int | None = None
    success_count: int | None = None
    cache_hit_ns: int | None = None
    cache_miss_ns: int | None = None
    delta: ServerDelta | None = None  # the summed counters behind the averages

    def to_dict(self) -> dict[str, Any]:
        return {
            "queue_us": _us(self.queue_ns),
            "compute_input_us": _us(self.compute_input_ns),
            "compute_infer_us": _us(self.compute_infer_ns),
            "compute_output_us": _us(self.compute_output_ns),
            "network_server_us": _us(self.network_server_ns),
            "request_us": _us(self.request_ns),
            "overhead_us": _us(self.overhead_ns),
            "avg_batch": self.avg_batch,
            "executions": self.executions,
            "inferences": self.inferences,
            "success_count": self.success_count,
            "cache_hit_us": _us(self.cache_hit_ns),
            "cache_miss_us": _us(self.cache_miss_ns),
            "counters": None if self.delta is None else self.delta.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ServerSummary:
        def opt_int(k: str) -> int | None:
            return None if d.get(k) is None else int(d[k])

        return cls(
            queue_ns=int(d["queue_us"]) * 1000,
            compute_input_ns=int(d["compute_input_us"]) * 1000,
            compute_infer_ns=int(d["compute_infer_us"]) * 1000,
            compute_output_ns=int(d["compute_output_us"]) * 1000,
            network_server_ns=int(d.get("network_server_us") or 0) * 1000,
            request_ns=_ns(d.get("request_us")),
            overhead_ns=_ns(d.get("overhead_us")),
            avg_batch=None if d.get("avg_batch") is None else float(d["avg_batch"]),
            executions=opt_int("executions"),
            inferences=opt_int("inferences"),
            success_count=opt_int("success_count"),
            cache_hit_ns=_ns(d.get("cache_hit_us")),
            cache_miss_ns=_ns(d.get("cache_miss_us")),
            delta=ServerDelta.from_dict(d["counters"]) if d.get("counters") else None,
        )


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
class GpuSummary:
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "util": dict(self.util),
            "power_w": dict(self.power_w),
            "mem_used_bytes": dict(self.mem_used_bytes),
            "mem_total_bytes": dict(self.mem_total_bytes),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GpuSummary:
        return cls(
            util={k: float(v) for k, v in (d.get("util") or {}).items()},
            power_w={k: float(v) for k, v in (d.get("power_w") or {}).items()},
            mem_used_bytes={k: int(v) for k, v in (d.get("mem_used_bytes") or {}).items()},
            mem_total_bytes={k: int(v) for k, v in (d.get("mem_total_bytes") or {}).items()},
        )


# -------------------------------------------------------------------------------------------- latency


@dataclass(frozen=True)
class LatencySummary:
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
class WindowSummary:
    """One window as the run JSON keeps it (no raw latencies)."""

    start_ns: int
    end_ns: int
    completed: int
    failed: int
    infer_per_s: float
    latency: LatencySummary | None
    errors: dict[str, int] = field(default_factory=dict)
    delayed: int = 0
    dropped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "completed": self.completed,
            "failed": self.failed,
            "infer_per_s": self.infer_per_s,
            "latency_us": None if self.latency is None else self.latency.to_dict(),
            "errors": dict(self.errors),
            "delayed": self.delayed,
            "dropped": self.dropped,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WindowSummary:
        lat = d.get("latency_us")
        return cls(
            start_ns=int(d["start_ns"]),
            end_ns=int(d["end_ns"]),
            completed=int(d["completed"]),
            failed=int(d.get("failed", 0)),
            infer_per_s=float(d["infer_per_s"]),
            latency=LatencySummary.from_dict(lat) if lat else None,
            errors={str(k): int(v) for k, v in (d.get("errors") or {}).items()},
            delayed=int(d.get("delayed", 0)),
            dropped=int(d.get("dropped", 0)),
        )
