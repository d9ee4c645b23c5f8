"""Server-side statistics: deltas of Triton model-statistics snapshots and perf_analyzer's derived columns.

A snapshot is what the statistics extension returns, in either shape:

- gRPC, ``get_inference_statistics(as_json=True)`` (protobuf JSON): 64-bit counters are strings and
  zero values are left out, e.g. ``{"model_stats": [{"name": "m", "version": "1",
  "inference_count": "8", "inference_stats": {"success": {"count": "8", "ns": "91000"}, ...}}]}``;
  a ``ModelStatisticsResponse`` message is accepted too;
- HTTP, ``GET /v2/models/<m>/stats``: the same keys with JSON numbers.

Rules follow perf_analyzer (``SummarizeServerStatsHelper``, ``DetermineStatsModelVersion``,
``ReportWriter::GenerateReport``, ``ReportServerSideStats``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from loadgen.result import ServerDelta, ServerSummary

_TIMED = ("success", "queue", "compute_input", "compute_infer", "compute_output", "cache_hit", "cache_miss")

ModelKey = tuple[str, str]  # (name, version)


def _int(v: Any) -> int:
    return int(v) if v not in (None, "") else 0


def _as_mapping(stats: Any) -> Mapping[str, Any]:
    if isinstance(stats, Mapping):
        return stats
    if hasattr(stats, "DESCRIPTOR"):  # a protobuf ModelStatisticsResponse
        json_format = importlib.import_module("google.protobuf.json_format")
        d: dict[str, Any] = json_format.MessageToDict(stats, preserving_proto_field_name=True)
        return d
    raise TypeError(f"not a model statistics snapshot: {type(stats).__name__}")


def parse_snapshot(stats: Any) -> dict[ModelKey, ServerDelta]:
    """Cumulative counters per (model name, version) from a statistics response (either shape)."""
    out: dict[ModelKey, ServerDelta] = {}
    for m in _as_mapping(stats).get("model_stats") or []:
        inf = m.get("inference_stats") or {}
        vals: dict[str, int] = {
            "inference_count": _int(m.get("inference_count")),
            "execution_count": _int(m.get("execution_count")),
        }
        for name in _TIMED:
            d = inf.get(name) or {}
            vals[f"{name}_count"] = _int(d.get("count"))
            vals[f"{name}_ns"] = _int(d.get("ns"))
        out[(str(m.get("name", "")), str(m.get("version", "")))] = ServerDelta(**vals)
    return out


def _sub(end: ServerDelta, start: ServerDelta | None) -> ServerDelta:
    if start is None:
        return end
    return ServerDelta(**{f.name: getattr(end, f.name) - getattr(start, f.name) for f in fields(end)})


@dataclass(frozen=True)
class DeltaResult:
    """The delta for the model, which version it came from, and any warning about that choice."""

    delta: ServerDelta
    version: str
    warnings: list[str] = field(default_factory=list)


def model_delta(start: Any, end: Any, model: str, version: str = "") -> DeltaResult | None:
    """Counter deltas of ``model`` between two snapshots (``end - start``); None if it is absent.

    With ``version`` empty, perf_analyzer's rule picks the version whose queue count grew over the
    interval (the highest one, with a warning, if several grew); if none grew, the highest version
    present (a window with no traffic then reads as zeros). A version missing from ``start`` counts
    from zero.
    """
    a, b = parse_snapshot(start), parse_snapshot(end)
    versions = sorted((k[1] for k in b if k[0] == model), key=_version_key)
    if not versions:
        return None
    warnings: list[str] = []
    if version:
        if (model, version) not in b:
            return None
        chosen = version
    else:
        grew = [v for v in versions if b[(model, v)].queue_count > _queue(a.get((model, v)))]
        if len(grew) > 1:
            warnings.append(
                f"several versions of {model} received requests ({', '.join(grew)}); "
                f"using version {grew[-1]} (pass -x to choose)"
            )
        chosen = grew[-1] if grew else versions[-1]
    return DeltaResult(_sub(b[(model, chosen)], a.get((model, chosen))), chosen, warnings)


def _queue(d: ServerDelta | None) -> int:
    return 0 if d is None else d.queue_count


def _version_key(v: str) -> tuple[int, str]:
    return (int(v), "") if v.isdigit() else (-1, v)


def _avg(ns: int, count: int) -> int:
    return ns // count if count > 0 else 0


def compute_avg_ns(d: ServerDelta) -> int:
    """Average compute time per execution: (input + infer + output ns) / compute_input count."""
    if not d.compute_input_count == d.compute_infer_count == d.compute_output_count:
        raise ValueError(
            "server statistics compute counts differ "
            f"({d.compute_input_count}, {d.compute_infer_count}, {d.compute_output_count})"
        )
    return _avg(d.compute_input_ns + d.compute_infer_ns + d.compute_output_ns, d.compute_input_count)


def network_server_ns(avg_latency_ns: int, send_ns: int, recv_ns: int, d: ServerDelta) -> int:
    """perf_analyzer's ``Network+Server Send/Recv`` in ns.

    ``max(0, avg latency - client send - client recv - (queue + compute + cache hit + cache miss))``
    with every term a per-request average in ns, so it also holds the server's own overhead.
    """
    client_wait = avg_latency_ns - send_ns - recv_ns
    accounted = (
        _avg(d.queue_ns, d.queue_count)
        + compute_avg_ns(d)
        + _avg(d.cache_hit_ns, d.cache_hit_count)
        + _avg(d.cache_miss_ns, d.cache_miss_count)
    )
    return max(0, client_wait - accounted)


def summarize_server(d: ServerDelta, avg_latency_ns: int, send_ns: int, recv_ns: int) -> ServerSummary:
    """The level's server block from the summed deltas and the client's averages (ns per request)."""
    request_ns = _avg(d.success_ns, d.success_count)
    compute_avg_ns(d)  # checks that the three compute counts agree
    # The console's overhead is computed on truncated µs averages (ReportServerSideStats).
    compute_total = d.compute_input_ns + d.compute_infer_ns + d.compute_output_ns
    compute_us = _avg(compute_total, d.compute_input_count * 1000)
    queue_us = _avg(d.queue_ns, d.queue_count * 1000)
    overhead_us = max(0, request_ns // 1000 - queue_us - compute_us) if d.success_count else 0
    return ServerSummary(
        queue_ns=_avg(d.queue_ns, d.queue_count),
        compute_input_ns=_avg(d.compute_input_ns, d.compute_input_count),
        compute_infer_ns=_avg(d.compute_infer_ns, d.compute_infer_count),
        compute_output_ns=_avg(d.compute_output_ns, d.compute_output_count),
        network_server_ns=network_server_ns(avg_latency_ns, send_ns, recv_ns, d),
        request_ns=request_ns,
        overhead_ns=overhead_us * 1000,
        avg_batch=d.avg_batch,
        executions=d.execution_count,
        inferences=d.inference_count,
        success_count=d.success_count,
        cache_hit_ns=_avg(d.cache_hit_ns, d.cache_hit_count),
        cache_miss_ns=_avg(d.cache_miss_ns, d.cache_miss_count),
        delta=d,
    )


def merge_deltas(deltas: list[ServerDelta | None]) -> ServerDelta | None:
    """Sum the windows' deltas (PA's ``MergeServerSideStats``); None if any window lacks statistics."""
    if not deltas or any(d is None for d in deltas):
        return None
    total = ServerDelta()
    for d in deltas:
        assert d is not None
        total = total + d
    return total
