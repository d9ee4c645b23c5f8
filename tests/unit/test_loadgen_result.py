"""Result types: JSON round trip, atomic run-JSON writes, GPU merge rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from loadgen.result import SCHEMA, GpuSample, GpuSummary, LevelResult, RunResult, ServerDelta, WindowStats
from loadgen.stability import StabilityRule
from loadgen.windows import Stabilizer


def level(value: float, mode: str = "concurrency") -> LevelResult:
    st = Stabilizer(StabilityRule(percentile=85), mode=mode, value=value, batch_size=2)  # type: ignore[arg-type]
    srv = ServerDelta(success_count=30, success_ns=30_000_000, queue_count=30, queue_ns=3_000_000,
                      compute_input_count=30, compute_input_ns=30_000, compute_infer_count=30,
                      compute_infer_ns=9_000_000, compute_output_count=30, compute_output_ns=30_000,
                      inference_count=60, execution_count=20)  # fmt: skip
    for k in range(3):
        st.add(
            WindowStats(k * 10**9, (k + 1) * 10**9, latencies_ns=np.arange(1, 11, dtype=np.int64) * 1_000_000,
                        service_ns=np.arange(1, 11, dtype=np.int64) * 900_000, failed=1,
                        errors={"UNAVAILABLE": 1}, sent=11, cpu_ns=10**8, server=srv,
                        gpu_samples=[GpuSample(k, {"g": 0.1 * k})])
        )  # fmt: skip
    return st.result()


def test_level_and_run_round_trip_through_json(tmp_path: Path) -> None:
    run = RunResult(
        tool={"name": "saturate", "version": "0.1"}, env={"host": "h"}, config={"concurrency": "1:2"}
    )
    run.levels += [level(1), level(150.5, "request_rate")]
    doc = json.loads(json.dumps(run.to_dict()))
    assert doc["schema"] == SCHEMA
    lv = doc["levels"][0]
    assert set(lv) >= {"mode", "concurrency", "request_rate", "batch_size", "stable", "windows", "throughput",
                       "latency_us", "requests", "client", "server", "gpu", "verdict"}  # fmt: skip
    assert set(lv["latency_us"]) >= {"avg", "std", "min", "max", "p50", "p85", "p90", "p95", "p99"}
    assert lv["requests"]["errors"] == {"UNAVAILABLE": 3} and lv["requests"]["failed"] == 3
    assert set(lv["client"]) >= {"send_us", "recv_us", "cpu_us_per_request", "cpu_util"}
    assert set(lv["server"]) >= {"queue_us", "compute_input_us", "compute_infer_us", "compute_output_us",
                                 "avg_batch", "executions"}  # fmt: skip
    assert lv["server"]["avg_batch"] == 3.0
    assert set(lv["windows"][0]) >= {"start_ns", "end_ns", "completed", "failed", "infer_per_s", "latency_us"}
    assert set(lv["verdict"]) == {"saturated", "valid", "reasons"} and lv["verdict"]["valid"] is False
    again = RunResult.from_dict(doc)
    assert again.to_dict() == run.to_dict()
    assert again.levels[1].request_rate == 150.5 and again.levels[1].value == 150.5
    assert again.levels[0].service_latency is not None


def test_atomic_write_and_read(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "run.json"
    run = RunResult()
    for v in (1, 2, 3):
        run.levels.append(level(v))
        run.write(path)
        assert len(RunResult.read(path).levels) == v  # complete after every level
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]  # no temp files left


def test_wrong_schema_is_refused() -> None:
    with pytest.raises(ValueError, match="schema"):
        RunResult.from_dict({"schema": "other/1", "levels": []})


def test_gpu_merge_rules() -> None:
    s = [
        GpuSample(0, {"b": 0.2, "a": 0.4}, {"a": 100.0}, {"a": 5}, {"a": 80}),
        GpuSample(1, {"a": 0.8}, {"a": 200.0}, {"a": 9}, {"a": 81}),
        GpuSample(2, {"a": 0.6}, {"a": 150.0}, {"a": 7}, {"a": 82}),
    ]
    g = GpuSummary.merge(s)
    assert g.util == pytest.approx({"a": 0.6, "b": 0.2})  # average of every sample
    assert g.power_w == {"a": 150.0}
    assert g.mem_used_bytes == {"a": 9}  # maximum
    assert g.mem_total_bytes == {"a": 80}  # first sample
    assert list(g.util) == ["a", "b"]


def test_server_delta_adds_and_averages() -> None:
    a = ServerDelta(inference_count=8, execution_count=2)
    assert (a + a).avg_batch == 4.0 and ServerDelta().avg_batch == 0.0
    assert ServerDelta.from_dict(a.to_dict()) == a


def test_one_codec_for_the_result_model() -> None:
    from loadgen.result import ClientStats, ServerSummary, WindowSummary

    s = ServerSummary(queue_ns=1999, compute_input_ns=1000, compute_infer_ns=5_500, compute_output_ns=0,
                      network_server_ns=2_000, cache_hit_ns=None)
    d = s.to_dict()
    assert d["queue_us"] == 1 and d["compute_infer_us"] == 5 and d["cache_hit_us"] is None  # truncated µs
    assert "queue_ns" not in d and d["counters"] is None
    back = ServerSummary.from_dict({**d, "network_server_us": None, "unknown": 1})  # null → absent value
    assert back.queue_ns == 1000 and back.network_server_ns == 0
    c = ClientStats(send_ns=3_000, recv_ns=1_000, request_ns=10_000, cpu_ns_per_request=1_500.0,
                    loop_lag_ns=500.0)
    cd = c.to_dict()
    assert list(cd)[:4] == ["send_us", "recv_us", "request_us", "response_wait_us"]
    assert cd["cpu_us_per_request"] == 1.5 and cd["loop_lag_us"] == 0.5 and cd["own_latency_us"] == 2.0
    assert ClientStats.from_dict(cd) == c
    w = WindowSummary.from_dict({"start_ns": 0, "end_ns": 1, "completed": 2, "infer_per_s": 2.0,
                                 "latency_us": None, "errors": None})
    assert w.failed == 0 and w.errors == {} and w.latency is None
    with pytest.raises(KeyError):
        WindowSummary.from_dict({"start_ns": 0, "end_ns": 1, "infer_per_s": 2.0})  # completed is required
