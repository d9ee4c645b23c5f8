"""Console report lines compared with perf_analyzer's real output for the same numbers."""

from __future__ import annotations

from conftest import FIXTURES

from loadgen.console import level_header, level_report, progress_line, settings_banner, summary_table
from loadgen.result import (
    ClientStats,
    GpuSummary,
    LatencySummary,
    LevelResult,
    RequestCounts,
    ServerSummary,
    Throughput,
    WindowSummary,
)

PA = FIXTURES / "perf_analyzer"


def pa_level() -> LevelResult:
    """pa_collect_metrics.txt, concurrency 1, in our types (ns values chosen to truncate to PA's µs)."""
    return LevelResult(
        mode="concurrency",
        concurrency=1,
        request_rate=None,
        batch_size=1,
        stable=True,
        throughput=Throughput(292.406),
        latency=LatencySummary(
            percentiles_ns={50: 3_315_000, 90: 3_798_000, 95: 3_922_000, 99: 4_141_000},
            avg_ns=3_405_400,
            std_ns=323_900,
            count=2107,
        ),
        client=ClientStats(send_ns=7_100, recv_ns=3_900, request_ns=3_381_000),
        server=ServerSummary(
            queue_ns=46_000,
            compute_input_ns=24_000,
            compute_infer_ns=2_830_000,
            compute_output_ns=237_000,
            network_server_ns=256_000,
            request_ns=3_141_000,
            overhead_ns=3_000,
            executions=2107,
            inferences=2107,
            success_count=2107,
        ),
        gpu=GpuSummary(),
    )


def test_level_block_matches_perf_analyzer_output() -> None:
    real = (PA / "pa_collect_metrics.txt").read_text().splitlines()
    start = real.index("Request concurrency: 1")
    expected = real[start + 1 : real.index("Request concurrency: 2")]
    ours = level_report(pa_level(), protocol="grpc", collect_metrics=True).splitlines()
    assert ours == expected
    assert level_header("concurrency", 1) == real[start]


def test_banner_and_summary_table_match() -> None:
    real = (PA / "pa_request_rate.txt").read_text()
    banner = settings_banner(batch_size=1, mode="request_rate", limit=150, interval_ms=2000)
    theirs = real.split("\n\n")[0].splitlines()
    # identical except the stabilisation line (we check latency and throughput) and sync/async
    diff = [(a, b) for a, b in zip(banner.splitlines(), theirs, strict=True) if a != b]
    assert diff == [("  Using asynchronous calls for inference", "  Using synchronous calls for inference")]
    assert level_header("request_rate", 50.0) == "Request Rate: 50 inference requests per second"
    # a closed loop blocking a thread per request (native-sync, threads) says what perf_analyzer's sync says
    real_sync = (PA / "pa_collect_metrics.txt").read_text().split("\n\n")[0]
    assert settings_banner(batch_size=1, mode="concurrency", limit=2, interval_ms=2000,
                           synchronous=True).rstrip("\n") == real_sync
    lv = pa_level()
    table = summary_table([lv])
    assert table.splitlines() == [
        "Inferences/Second vs. Client Average Batch Latency",
        "Concurrency: 1, throughput: 292.406 infer/sec, latency 3405 usec",
    ]


def test_our_additions_and_progress_line() -> None:
    lv = pa_level()
    ours = LevelResult(
        **{**lv.__dict__, "requests": RequestCounts(completed=2107, failed=3, errors={"UNAVAILABLE": 3})}
    )
    text = level_report(ours, protocol="http")
    assert "    Failed requests: 3 (UNAVAILABLE: 3)" in text
    assert "    Avg HTTP time: 3381 usec (send/recv 10 usec + response wait 3371 usec)" in text
    w = WindowSummary(0, 2_400_000_000, 700, 2, 291.7, lv.latency)
    line = progress_line(w, 2, level="concurrency 1", max_trials=10)
    assert line == (
        "[concurrency 1] Pass [2/10] throughput: 291.7 infer/sec. "
        "Avg latency: 3405 usec (std 323 usec). 2 failed."
    )
    empty = WindowSummary(0, 2_000_000_000, 0, 0, 0.0, None)
    assert "no completed requests" in progress_line(empty, 1, level="c 1", max_trials=3)
