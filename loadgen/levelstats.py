"""The measurement core: per-window records, perf_analyzer's stability rule and percentile index,
server-stat deltas, and the level dict of the run JSON (the CSV view is in loadgen.perfcsv).

Rules (DESIGN.md): percentile index floor(p/100*(n-1)+0.5) on sorted values, sample std (n-1);
stable when >= 3 windows and over the last 3 every throughput > 0 and max/min of throughput and of
the stabilizing latency <= 1 + s/100; the result merges the last 3 windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from loadgen.drivers import WindowPart

STAT_KEYS = ("success", "queue", "compute_input", "compute_infer", "compute_output")


def pindex(p: float, n: int) -> int:
    return math.floor(p / 100 * (n - 1) + 0.5)


def latency_us(lat_ns: np.ndarray[Any, Any], extra: int | None = None) -> dict[str, int]:
    """avg, std (sample), min, max, p50/p90/p95/p99 (+ p`extra`) in integer µs."""
    if lat_ns.size == 0:
        return {}
    s = np.sort(lat_ns)
    n = s.size
    out = {
        "avg": int(s.mean() // 1000),
        "std": int(s.std(ddof=1) // 1000) if n > 1 else 0,
        "min": int(s[0] // 1000),
        "max": int(s[-1] // 1000),
    }
    for p in sorted({50, 90, 95, 99} | ({extra} if extra else set())):
        out[f"p{p}"] = int(s[pindex(p, n)] // 1000)
    return out


def _stat(model: dict[str, Any], key: str) -> tuple[int, int]:
    d = model.get("inference_stats", {}).get(key, {})
    return int(d.get("count", 0) or 0), int(d.get("ns", 0) or 0)


def _model(stats: dict[str, Any] | None, version: str) -> dict[str, Any] | None:
    if not stats:
        return None
    models = stats.get("model_stats", [])
    for m in models:
        if not version or str(m.get("version")) == version:
            return dict(m)
    return None


def server_delta(
    prev: dict[str, Any] | None, cur: dict[str, Any] | None, version: str = ""
) -> dict[str, int] | None:
    """Deltas of success/queue/compute_* (count, ns), inference_count and execution_count."""
    a, b = _model(prev, version), _model(cur, version)
    if a is None or b is None:
        return None
    out: dict[str, int] = {}
    for k in STAT_KEYS:
        (c0, n0), (c1, n1) = _stat(a, k), _stat(b, k)
        out[f"{k}_count"], out[f"{k}_ns"] = c1 - c0, n1 - n0
    for k in ("inference_count", "execution_count"):
        out[k] = int(b.get(k, 0) or 0) - int(a.get(k, 0) or 0)
    return out


def _sum_server(deltas: Sequence[dict[str, int] | None]) -> dict[str, int] | None:
    present = [d for d in deltas if d is not None]
    if not present or len(present) != len(deltas):
        return None
    return {k: sum(d[k] for d in present) for k in present[0]}


def window_record(
    part: WindowPart, server: dict[str, int] | None, batch: int, extra: int | None
) -> dict[str, Any]:
    dur = max(1, part.end_ns - part.start_ns)
    return {
        "start_ns": part.start_ns,
        "end_ns": part.end_ns,
        "completed": part.completed,
        "failed": part.failed,
        "infer_per_s": part.completed * batch * 1e9 / dur,
        "latency_us": latency_us(part.latencies_ns, extra),
        "errors": dict(part.errors),
        "server": server,
    }


def stabilizing_latency(w: dict[str, Any], percentile: int | None) -> int:
    lat = w["latency_us"]
    return int(lat.get(f"p{percentile}" if percentile else "avg", 0)) if lat else 0


def is_stable(
    windows: Sequence[dict[str, Any]], s: float, percentile: int | None, throughput_only: bool = False
) -> bool:
    if len(windows) < 3:
        return False
    last = windows[-3:]
    thr = [w["infer_per_s"] for w in last]
    if min(thr) <= 0 or max(thr) / min(thr) > 1 + s / 100:
        return False
    if throughput_only:
        return True
    lat = [stabilizing_latency(w, percentile) for w in last]
    return min(lat) > 0 and max(lat) / min(lat) <= 1 + s / 100


def over_latency_threshold(
    windows: Sequence[dict[str, Any]], threshold_ms: float, percentile: int | None
) -> bool:
    """perf_analyzer's early stop: any of the last 3 windows at or above ``--latency-threshold``."""
    return bool(threshold_ms) and any(
        stabilizing_latency(w, percentile) >= threshold_ms * 1000 for w in windows[-3:]
    )


def level_dict(
    mode: str,
    value: float,
    batch: int,
    parts: Sequence[WindowPart],
    windows: Sequence[dict[str, Any]],
    stable: bool,
    percentile: int | None,
    processes: int,
    gpu: dict[str, Any] | None,
) -> dict[str, Any]:
    """The run-JSON `levels[]` entry from the merged windows `parts` (normally the last 3)."""
    lat = np.concatenate([p.latencies_ns for p in parts]) if parts else np.zeros(0, np.int64)
    svc = [p.service_ns for p in parts if p.service_ns is not None]
    dur = sum(p.end_ns - p.start_ns for p in parts) or 1
    done = int(lat.size)
    errors: dict[str, int] = {}
    for p in parts:
        for k, v in p.errors.items():
            errors[k] = errors.get(k, 0) + v
    cpu = sum(p.cpu_ns for p in parts)
    srv = _sum_server([w["server"] for w in windows[-len(parts) :]]) if parts else None
    server: dict[str, Any] | None = None
    if srv is not None:

        def per(k: str) -> int:
            return srv[f"{k}_ns"] // srv[f"{k}_count"] // 1000 if srv[f"{k}_count"] else 0

        server = {
            "queue_us": per("queue"),
            "compute_input_us": per("compute_input"),
            "compute_infer_us": per("compute_infer"),
            "compute_output_us": per("compute_output"),
            "success_us": per("success"),
            "avg_batch": srv["inference_count"] / srv["execution_count"] if srv["execution_count"] else 0.0,
            "executions": srv["execution_count"],
            "inferences": srv["inference_count"],
            "success_count": srv["success_count"],
        }
    return {
        "mode": mode,
        "concurrency": int(value) if mode == "concurrency" else None,
        "request_rate": value if mode == "request_rate" else None,
        "batch_size": batch,
        "stable": stable,
        "windows": [{k: v for k, v in w.items() if k != "server"} for w in windows],
        "throughput": {"infer_per_s": done * batch * 1e9 / dur, "requests_per_s": done * 1e9 / dur},
        "latency_us": latency_us(lat, percentile),
        "service_latency_us": latency_us(np.concatenate(svc), percentile) if svc else None,
        "requests": {
            "completed": done,
            "failed": sum(p.failed for p in parts),
            "errors": errors,
            "delayed": sum(p.delayed for p in parts),
            "dropped": sum(p.dropped for p in parts),
        },
        "client": {
            "send_us": sum(p.send_ns for p in parts) // max(1, done) // 1000,
            "recv_us": sum(p.recv_ns for p in parts) // max(1, done) // 1000,
            "cpu_us_per_request": cpu / max(1, done) / 1000,
            "cpu_util": cpu / dur,
            "processes": processes,
        },
        "server": server,
        "gpu": gpu,
    }
