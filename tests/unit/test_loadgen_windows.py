"""The stability rule on synthetic windows, request-to-window assignment and the 3-window merge."""

from __future__ import annotations

import numpy as np
import pytest

from loadgen.result import GpuSample, ServerDelta, WindowStats
from loadgen.stability import StabilityRule
from loadgen.windows import Stabilizer, combine_processes

SEC = 1_000_000_000


def win(k: int, completed: int, lat_us: float | list[int], *, failed: int = 0, **kw: object) -> WindowStats:
    lat = (
        np.array(lat_us, dtype=np.int64) * 1000
        if isinstance(lat_us, list)
        else np.full(completed, int(lat_us * 1000), dtype=np.int64)
    )
    return WindowStats(start_ns=k * SEC, end_ns=(k + 1) * SEC, latencies_ns=lat, failed=failed, **kw)  # type: ignore[arg-type]


def run(windows: list[WindowStats], rule: StabilityRule, batch: int = 1) -> Stabilizer:
    st = Stabilizer(rule, mode="concurrency", value=2, batch_size=batch)
    for w in windows:
        assert not st.done()
        st.add(w)
        if st.done():
            break
    return st


def test_stable_after_three_windows_and_merge_of_last_three() -> None:
    ws = [win(0, 50, 900), win(1, 100, 1000), win(2, 104, 1040), win(3, 98, 1010), win(4, 1, 1)]
    st = run(ws, StabilityRule(stability_pct=10), batch=4)
    assert st.stable() and len(st.windows) == 4  # window 1 (50/s) spoils the first check
    lv = st.result()
    assert lv.stable and lv.stability == "stable" and lv.verdict.valid
    assert lv.requests is not None and lv.requests.completed == 302
    assert lv.throughput.infer_per_s == pytest.approx(302 * 4 / 3)
    assert lv.latency.count == 302
    assert lv.latency.avg_ns == (100 * 1_000_000 + 104 * 1_040_000 + 98 * 1_010_000) // 302
    assert lv.latency.p(50) == 1_010_000 and lv.latency.min_ns == 1_000_000 and lv.latency.max_ns == 1_040_000
    assert len(lv.windows) == 4 and lv.windows[0].infer_per_s == 200.0


def test_unstable_throughput() -> None:
    ws = [win(k, 100 if k % 2 else 80, 1000) for k in range(10)]
    st = run(ws, StabilityRule(stability_pct=10, max_trials=10))
    assert st.done() and not st.stable() and len(st.windows) == 10
    lv = st.result()
    assert not lv.stable and lv.stability == "unstable" and not lv.verdict.valid
    assert (
        "Failed to obtain stable measurement within 10 measurement windows for concurrency 2"
        in lv.verdict.reasons[0]
    )
    assert "--measurement-interval" in lv.verdict.reasons[0]


def test_unstable_latency_and_async_relaxation() -> None:
    ws = [win(k, 100, 1000 if k % 2 else 1300) for k in range(5)]
    strict = run(ws, StabilityRule(stability_pct=10, max_trials=5, throughput_relaxation=False))
    assert not strict.stable() and strict.throughput_stable()
    assert strict.result().stability == "unstable"
    relaxed = run(ws, StabilityRule(stability_pct=10, max_trials=5))
    lv = relaxed.result()
    assert lv.stable and lv.stability == "throughput_only" and lv.verdict.valid
    assert any("latency is not stabilizing" in r for r in lv.verdict.reasons)


def test_ratio_boundary_is_inclusive() -> None:
    ws = [win(0, 100, 1000), win(1, 110, 1100), win(2, 105, 1000)]
    assert run(ws, StabilityRule(stability_pct=10)).stable()
    ws = [win(0, 100, 1000), win(1, 111, 1000), win(2, 105, 1000)]
    assert not run(ws, StabilityRule(stability_pct=10, max_trials=3)).stable()


def test_stabilises_on_percentile_when_given() -> None:
    # averages drift by 30% but p95 stays put
    def w(k: int, tail: int) -> WindowStats:
        return win(k, 100, [1000] * 90 + [tail] * 5 + [1100] * 5)

    ws = [w(0, 5000), w(1, 50000), w(2, 9000)]
    assert not run(ws, StabilityRule(max_trials=3, throughput_relaxation=False)).stable()
    st = run(ws, StabilityRule(max_trials=3, percentile=95))
    assert st.stable()
    assert st.result().latency.stabilizing_ns(95) == 1_100_000


def test_zero_throughput_window_is_never_stable() -> None:
    ws = [win(0, 100, 1000), win(1, 100, 1000), win(2, 0, 0, failed=7, errors={"UNAVAILABLE": 7})]
    st = run(ws, StabilityRule(max_trials=3))
    assert st.done() and not st.stable()
    lv = st.result()
    assert lv.stability == "empty_window" and not lv.verdict.valid
    assert "larger time window" in lv.verdict.reasons[0]
    assert any("7 failed requests" in r for r in lv.verdict.reasons)


def test_latency_threshold_stops_early_and_flags() -> None:
    ws = [win(k, 100, 4000 + k * 800) for k in range(10)]
    st = run(ws, StabilityRule(latency_threshold_ms=5, max_trials=10, throughput_relaxation=False))
    assert len(st.windows) == 3  # the third window (5.6 ms) is over 5 ms: stop at once
    lv = st.result()
    assert lv.stability == "over_latency_threshold" and not lv.verdict.valid
    assert "went over the set limit of 5 msec" in lv.verdict.reasons[0]
    # stable but at/over the limit after merging: measured stable, not reportable
    ws = [win(k, 100, 5100) for k in range(3)]
    lv = run(ws, StabilityRule(latency_threshold_ms=5)).result()
    assert lv.stable and lv.stability == "over_latency_threshold"
    # under the limit: fine
    ws = [win(k, 100, 4900) for k in range(3)]
    assert run(ws, StabilityRule(latency_threshold_ms=5)).result().stability == "stable"


def test_interrupted_level_keeps_what_was_measured() -> None:
    st = Stabilizer(StabilityRule(), mode="request_rate", value=150.0)
    st.add(win(0, 140, 1000))
    st.add(win(1, 60, 1000, failed=30, errors={"UNAVAILABLE": 30}))
    lv = st.result(interrupted="server stopped responding")
    assert lv.stability == "interrupted" and not lv.stable and not lv.verdict.valid
    assert lv.request_rate == 150.0 and lv.concurrency is None
    assert (
        lv.requests is not None and lv.requests.completed == 200 and lv.requests.errors == {"UNAVAILABLE": 30}
    )
    assert "server stopped responding" in lv.verdict.reasons[0]


def test_server_client_and_gpu_blocks_of_the_merge() -> None:
    srv = ServerDelta(
        success_count=100, success_ns=100 * 800_000, queue_count=100, queue_ns=100 * 50_000,
        compute_input_count=100, compute_input_ns=100 * 10_000, compute_infer_count=100,
        compute_infer_ns=100 * 600_000, compute_output_count=100, compute_output_ns=100 * 20_000,
        inference_count=100, execution_count=50,
    )  # fmt: skip
    gpu = [GpuSample(t_ns=0, util={"GPU-a": 0.5}, power_w={"GPU-a": 100.0}, mem_used_bytes={"GPU-a": 7},
                     mem_total_bytes={"GPU-a": 9})]  # fmt: skip
    ws = [
        win(k, 100, 1000, send_ns_total=100 * 20_000, recv_ns_total=100 * 5_000, cpu_ns=SEC // 4, sent=100,
            server=srv, gpu_samples=gpu)
        for k in range(3)
    ]  # fmt: skip
    lv = run(ws, StabilityRule()).result()
    assert lv.client.send_ns == 20_000 and lv.client.recv_ns == 5_000
    assert lv.client.cpu_ns_per_request == pytest.approx(SEC / 4 / 100)
    assert lv.client.cpu_util == pytest.approx(0.25)
    assert lv.server is not None and lv.server.avg_batch == 2.0 and lv.server.executions == 150
    # queue + compute <= average latency; Network+Server is the rest after client send/recv
    assert lv.server.network_server_ns == 1_000_000 - 25_000 - 50_000 - 630_000
    assert lv.gpu is not None and lv.gpu.util == {"GPU-a": 0.5}
    assert lv.verdict.saturated == "none"
    assert lv.throughput.send_per_s == pytest.approx(100.0)


def test_client_bottleneck_verdict() -> None:
    ws = [win(k, 100, 1000, cpu_ns=SEC * 95 // 100) for k in range(3)]
    lv = run(ws, StabilityRule()).result()
    assert lv.verdict.saturated == "client" and lv.verdict.valid
    assert any("client CPU at 95%" in r for r in lv.verdict.reasons)


def test_combine_processes() -> None:
    a = win(0, 3, 1000, sent=3, errors={"X": 1}, failed=1, cpu_ns=5)
    b = win(0, 2, 2000, sent=2, errors={"X": 2}, failed=2, cpu_ns=7, server=ServerDelta(success_count=5))
    c = combine_processes([a, b])
    assert c.completed == 5 and c.failed == 3 and c.errors == {"X": 3} and c.cpu_ns == 12
    assert c.server == ServerDelta(success_count=5)
    assert sorted(c.latencies_ns.tolist()) == [1_000_000] * 3 + [2_000_000] * 2


def test_rule_validation() -> None:
    with pytest.raises(ValueError):
        StabilityRule(max_trials=0)
    with pytest.raises(ValueError):
        StabilityRule(percentile=100)


def test_request_rate_server_columns_use_service_time() -> None:
    """Latency counts from the intended send; Network+Server and response wait from the actual send."""
    srv = ServerDelta(queue_count=10, queue_ns=10 * 100_000, compute_input_count=10, compute_infer_count=10,
                      compute_infer_ns=10 * 400_000, compute_output_count=10, success_count=10,
                      success_ns=10 * 600_000)  # fmt: skip
    st = Stabilizer(StabilityRule(), mode="request_rate", value=10.0)
    for k in range(3):
        st.add(win(k, 10, 3000, service_ns=np.full(10, 1_000_000, dtype=np.int64), server=srv, delayed=5))
    lv = st.result()
    assert lv.latency.avg_ns == 3_000_000 and lv.service_latency is not None
    assert lv.server is not None and lv.server.network_server_ns == 1_000_000 - 500_000
    assert lv.client.request_ns == 1_000_000
    assert lv.verdict.saturated == "client" and not lv.verdict.valid  # 50% of requests sent late


def test_merged_windows_are_the_rules_last_three() -> None:
    from loadgen.stability import STABILITY_WINDOW, merged

    assert STABILITY_WINDOW == 3 and merged([1, 2, 3, 4, 5]) == [3, 4, 5] and merged([1]) == [1]
    assert StabilityRule(stability_window=2).merged([1, 2, 3]) == [2, 3]


def test_stable_windows_whose_merge_reaches_the_threshold_are_flagged_over_it() -> None:
    # the windows agree (stable) and their merged p95, 1.95 ms, is at the 1 ms limit in whole ms:
    # the level keeps its numbers as stable and is labelled over the threshold
    lat = [1000] * 90 + [1950] * 10
    ws = [win(k, 100, lat) for k in range(3)]
    st = run(ws, StabilityRule(stability_pct=10, percentile=95, latency_threshold_ms=1))
    lv = st.result()
    assert lv.stability == "over_latency_threshold" and lv.stable
