"""The measurement contract (DESIGN.md, perf_analyzer.md §1).

Percentile index, std, stability, merge, server deltas.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from loadgen import levelstats as ls
from loadgen.drivers import WindowPart
from loadgen.perfcsv import PaRow

SEC = 1_000_000_000


def window(ips: float, avg_us: int, p95_us: int | None = None) -> dict[str, Any]:
    """A synthetic window record as the runner builds it."""
    lat = {"avg": avg_us, "p50": avg_us, "p90": avg_us, "p95": p95_us or avg_us, "p99": avg_us}
    return {"infer_per_s": ips, "latency_us": lat, "completed": int(ips), "server": None}


def part(lat_us: list[int], start_s: float = 0.0, dur_s: float = 1.0, **kw: Any) -> WindowPart:
    return WindowPart(
        start_ns=int(start_s * SEC), end_ns=int((start_s + dur_s) * SEC),
        latencies_ns=np.array(lat_us, dtype=np.int64) * 1000, service_ns=None, **kw,
    )


# -- percentile index and summary ------------------------------------------------------------

def test_percentile_index_is_rounded_nearest_rank() -> None:
    assert [ls.pindex(p, 10) for p in (50, 90, 95, 99)] == [5, 8, 9, 9]  # floor(p/100*9 + 0.5)
    assert ls.pindex(50, 1) == 0 and ls.pindex(99, 2) == 1 and ls.pindex(50, 2) == 1


@given(st.lists(st.integers(1, 10**9), min_size=1, max_size=300), st.integers(1, 99))
def test_percentile_matches_definition(values: list[int], p: int) -> None:
    s = sorted(values)
    got = ls.latency_us(np.array(values, dtype=np.int64), p)[f"p{p}"]
    assert got == s[math.floor(p / 100 * (len(s) - 1) + 0.5)] // 1000


def test_summary_uses_sample_std_and_integer_us() -> None:
    lat = np.array([1000, 2000, 3000, 4000], dtype=np.int64) * 1000
    out = ls.latency_us(lat)
    assert out["avg"] == 2500 and out["min"] == 1000 and out["max"] == 4000
    assert out["std"] == int(np.std(lat, ddof=1) // 1000) == 1290  # n-1, not n (1118)
    assert ls.latency_us(np.array([5000], dtype=np.int64))["std"] == 0
    assert ls.latency_us(np.zeros(0, dtype=np.int64)) == {}


# -- stability ---------------------------------------------------------------------------------

def test_stable_after_three_agreeing_windows() -> None:
    ws = [window(100, 1000), window(105, 1040)]
    assert not ls.is_stable(ws, 10, None)  # fewer than 3 windows
    ws.append(window(98, 990))
    assert ls.is_stable(ws, 10, None)


def test_only_the_last_three_windows_count() -> None:
    assert ls.is_stable([window(10, 9000), window(100, 1000), window(104, 1010), window(101, 1005)], 10, None)


def test_unstable_throughput() -> None:
    assert not ls.is_stable([window(100, 1000), window(125, 1000), window(100, 1000)], 10, None)
    assert ls.is_stable([window(100, 1000), window(125, 1000), window(100, 1000)], 25, None)


def test_unstable_latency() -> None:
    assert not ls.is_stable([window(100, 1000), window(100, 1200), window(100, 1000)], 10, None)


def test_percentile_is_the_stabilizing_latency() -> None:
    ws = [window(100, 1000, p95_us=2000), window(100, 1000, p95_us=3000), window(100, 1000, p95_us=2000)]
    assert ls.is_stable(ws, 10, None)
    assert not ls.is_stable(ws, 10, 95)


def test_zero_throughput_is_never_stable() -> None:
    assert not ls.is_stable([window(0, 1000), window(0, 1000), window(0, 1000)], 10, None)
    assert not ls.is_stable([window(0, 0), window(0, 0), window(0, 0)], 10, None, throughput_only=True)


def test_async_relaxation_accepts_stable_throughput_alone() -> None:
    ws = [window(100, 1000), window(101, 1500), window(100, 2000)]
    assert not ls.is_stable(ws, 10, None)
    assert ls.is_stable(ws, 10, None, throughput_only=True)


def test_latency_threshold_stops_on_any_of_the_last_three() -> None:
    ws = [window(100, 900), window(100, 5100), window(100, 900), window(100, 900)]
    assert ls.over_latency_threshold(ws, 5, None)  # 5100 us >= 5 ms, within the last 3
    assert not ls.over_latency_threshold([*ws, window(100, 900)], 5, None)
    assert not ls.over_latency_threshold(ws, 0, None)  # 0 = no limit


# -- the merged level ---------------------------------------------------------------------------

def test_merge_of_last_three_windows_sums_counts_and_concatenates_latencies() -> None:
    parts = [part([1000, 3000], 0, 1.0, failed=1, errors={"UNAVAILABLE": 1}, send_ns=4000, recv_ns=2000),
             part([2000], 1, 0.5, delayed=1),
             part([4000, 5000, 6000], 1.5, 1.5, dropped=2)]
    windows = [ls.window_record(p, None, 4, None) for p in parts]
    assert windows[0]["infer_per_s"] == 2 * 4 / 1.0
    level = ls.level_dict("concurrency", 2, 4, parts, windows, True, None, 1, None)
    assert level["throughput"]["infer_per_s"] == 6 * 4 / 3.0  # sum(count) * batch / sum(duration)
    assert level["throughput"]["requests_per_s"] == 2.0
    merged = np.array([1000, 3000, 2000, 4000, 5000, 6000]) * 1000
    assert level["latency_us"] == ls.latency_us(merged)
    assert level["latency_us"]["p50"] == 4000  # index floor(0.5*5+0.5)=3 of the sorted union
    assert level["requests"] == {"completed": 6, "failed": 1, "errors": {"UNAVAILABLE": 1},
                                 "delayed": 1, "dropped": 2}
    assert level["client"]["send_us"] == 0 and level["client"]["recv_us"] == 0  # 4 us / 6 requests
    assert level["server"] is None


# -- server statistics ---------------------------------------------------------------------------

def snapshot(success: int, queue_ns: int, infer_ns: int, inferences: int, executions: int) -> dict[str, Any]:
    """The shape of tritonclient's get_inference_statistics(as_json=True) (counts as strings, as protobuf
    JSON writes int64) and of Triton's HTTP JSON (numbers)."""
    stat = {
        "success": {"count": str(success), "ns": str(success * 2_000_000)},
        "queue": {"count": str(success), "ns": str(queue_ns)},
        "compute_input": {"count": str(executions), "ns": str(executions * 10_000)},
        "compute_infer": {"count": str(executions), "ns": str(infer_ns)},
        "compute_output": {"count": str(executions), "ns": str(executions * 5_000)},
    }
    return {"model_stats": [{"name": "m", "version": "1", "inference_count": str(inferences),
                             "execution_count": str(executions), "inference_stats": stat}]}


def test_server_deltas_between_snapshots() -> None:
    d = ls.server_delta(
        snapshot(10, 1_000_000, 8_000_000, 40, 4), snapshot(30, 5_000_000, 20_000_000, 120, 10)
    )
    assert d is not None
    assert d["success_count"] == 20 and d["queue_ns"] == 4_000_000 and d["compute_infer_ns"] == 12_000_000
    assert d["inference_count"] == 80 and d["execution_count"] == 6
    assert ls.server_delta(None, snapshot(1, 1, 1, 1, 1)) is None


def test_server_columns_and_average_batch_in_the_level() -> None:
    before, after = snapshot(0, 0, 0, 0, 0), snapshot(20, 4_000_000, 12_000_000, 80, 6)
    delta = ls.server_delta(before, after)
    p = part([3000] * 20, 0, 1.0)
    win = ls.window_record(p, delta, 4, None)
    level = ls.level_dict("concurrency", 4, 4, [p], [win], True, None, 1, None)
    s = level["server"]
    assert s["queue_us"] == 200  # 4 ms / 20 requests
    assert s["compute_infer_us"] == 2000  # 12 ms / 6 executions
    assert s["avg_batch"] == 80 / 6 and s["executions"] == 6
    row = PaRow.from_level(level)
    assert row.server is not None
    # Network+Server = avg latency - send - recv - (queue + compute input/infer/output)
    assert row.server["network_server_us"] == 3000 - 0 - 0 - (200 + 10 + 2000 + 5)
