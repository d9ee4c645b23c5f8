"""Server-statistics deltas (gRPC JSON and HTTP shapes), version choice, Network+Server column."""

from __future__ import annotations

from typing import Any

import pytest

from loadgen.result import ServerDelta
from loadgen.serverstats import (
    compute_avg_ns,
    merge_deltas,
    model_delta,
    network_server_ns,
    parse_snapshot,
    summarize_server,
)


def grpc_snapshot(version: str, success: int, ns: int, queue_ns: int, execs: int) -> dict[str, Any]:
    """Protobuf-JSON shape: int64 as strings, zero fields left out."""
    stats: dict[str, Any] = {"name": "m", "version": version}
    if success:
        stats.update(
            inference_count=str(success * 4),
            execution_count=str(execs),
            inference_stats={
                "success": {"count": str(success), "ns": str(ns)},
                "fail": {},
                "queue": {"count": str(success), "ns": str(queue_ns)},
                "compute_input": {"count": str(execs), "ns": str(execs * 1000)},
                "compute_infer": {"count": str(execs), "ns": str(execs * 50_000)},
                "compute_output": {"count": str(execs), "ns": str(execs * 2000)},
            },
        )
    return {"model_stats": [stats]}


def http_snapshot(success: int, ns: int) -> dict[str, object]:
    return {
        "model_stats": [
            {
                "name": "m",
                "version": "1",
                "last_inference": 17,
                "inference_count": success,
                "execution_count": success,
                "inference_stats": {
                    "success": {"count": success, "ns": ns},
                    "fail": {"count": 0, "ns": 0},
                    "queue": {"count": success, "ns": ns // 10},
                    "compute_input": {"count": success, "ns": 0},
                    "compute_infer": {"count": success, "ns": ns // 2},
                    "compute_output": {"count": success, "ns": 0},
                    "cache_hit": {"count": 0, "ns": 0},
                    "cache_miss": {"count": 0, "ns": 0},
                },
                "batch_stats": [],
            }
        ]
    }


def test_grpc_json_shape_with_omitted_zeros() -> None:
    empty = parse_snapshot(grpc_snapshot("1", 0, 0, 0, 0))[("m", "1")]
    assert empty == ServerDelta()
    d = model_delta(
        grpc_snapshot("1", 10, 1_000_000, 300_000, 5), grpc_snapshot("1", 30, 4_000_000, 900_000, 12), "m"
    )
    assert d is not None and d.version == "1" and not d.warnings
    assert d.delta.success_count == 20 and d.delta.success_ns == 3_000_000
    assert d.delta.queue_count == 20 and d.delta.queue_ns == 600_000
    assert d.delta.compute_infer_count == 7 and d.delta.compute_infer_ns == 350_000
    assert d.delta.inference_count == 80 and d.delta.execution_count == 7
    assert d.delta.avg_batch == pytest.approx(80 / 7)


def test_http_shape() -> None:
    d = model_delta(http_snapshot(100, 10_000_000), http_snapshot(150, 16_000_000), "m", "1")
    assert d is not None
    assert (d.delta.success_count, d.delta.success_ns) == (50, 6_000_000)
    assert (d.delta.queue_count, d.delta.queue_ns) == (50, 600_000)
    assert d.delta.avg_batch == 1.0


def two(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {"model_stats": a["model_stats"] + b["model_stats"]}


def test_version_choice_follows_perf_analyzer() -> None:
    start = two(grpc_snapshot("1", 5, 10, 10, 5), grpc_snapshot("2", 5, 10, 10, 5))
    only_v2 = two(grpc_snapshot("1", 5, 10, 10, 5), grpc_snapshot("2", 9, 20, 20, 9))
    both = two(grpc_snapshot("1", 7, 10, 10, 7), grpc_snapshot("2", 9, 20, 20, 9))
    d = model_delta(start, only_v2, "m")
    assert d is not None and d.version == "2" and d.delta.success_count == 4 and not d.warnings
    d = model_delta(start, both, "m")
    assert d is not None and d.version == "2" and d.warnings  # highest of several, with a warning
    d = model_delta(start, both, "m", "1")
    assert d is not None and d.delta.success_count == 2
    assert model_delta(start, both, "other") is None
    assert model_delta(start, both, "m", "3") is None


def test_version_missing_from_start_counts_from_zero() -> None:
    d = model_delta({"model_stats": []}, grpc_snapshot("1", 3, 30, 3, 3), "m")
    assert d is not None and d.delta.success_count == 3


def delta(**kw: int) -> ServerDelta:
    base = dict(
        success_count=10,
        success_ns=10 * 900_000,
        queue_count=10,
        queue_ns=10 * 100_500,
        compute_input_count=5,
        compute_input_ns=5 * 20_300,
        compute_infer_count=5,
        compute_infer_ns=5 * 600_400,
        compute_output_count=5,
        compute_output_ns=5 * 30_600,
        inference_count=10,
        execution_count=5,
    )
    base.update(kw)
    return ServerDelta(**base)


def test_network_server_column() -> None:
    d = delta()
    assert compute_avg_ns(d) == 651_300
    # wait = 1_000_000 - 12_345 - 3_210 = 984_445; accounted = 100_500 + 651_300 = 751_800
    assert network_server_ns(1_000_000, 12_345, 3_210, d) == 232_645
    # clamped at 0 when the server accounts for more than the client waited
    assert network_server_ns(700_000, 12_345, 3_210, d) == 0
    # cache times count as accounted
    assert (
        network_server_ns(1_000_000, 12_345, 3_210, delta(cache_hit_count=2, cache_hit_ns=2 * 45)) == 232_600
    )


def test_compute_counts_must_agree() -> None:
    with pytest.raises(ValueError, match="compute counts"):
        compute_avg_ns(delta(compute_infer_count=4))


def test_server_summary_and_console_overhead() -> None:
    s = summarize_server(delta(), avg_latency_ns=1_000_000, send_ns=12_345, recv_ns=3_210)
    assert (s.queue_ns, s.compute_input_ns, s.compute_infer_ns, s.compute_output_ns) == (
        100_500,
        20_300,
        600_400,
        30_600,
    )
    assert s.network_server_ns == 232_645
    assert s.request_ns == 900_000
    # console: 900 - 100 - (651_300 // 1000 = 651) = 149 µs
    assert s.overhead_ns == 149_000
    assert s.avg_batch == 2.0 and s.executions == 5 and s.inferences == 10
    # queue + compute never exceed the average latency when the numbers are consistent
    assert s.queue_ns + compute_avg_ns(delta()) <= 1_000_000


def test_merge_sums_and_needs_every_window() -> None:
    a, b = delta(), delta(success_count=1)
    m = merge_deltas([a, b, a])
    assert m is not None and m.success_count == 21 and m.queue_ns == 3 * a.queue_ns
    assert merge_deltas([a, None, a]) is None
    assert merge_deltas([]) is None
