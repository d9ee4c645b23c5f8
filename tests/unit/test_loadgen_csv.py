"""perf_analyzer CSV: headers byte-equal to the real files for the same options; one reader for both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES as TEST_FIXTURES

from loadgen.csvfmt import CsvOptions, parse_csv, read_csv, render, write_csv
from loadgen.result import GpuSample, ServerDelta, WindowStats
from loadgen.stability import StabilityRule
from loadgen.windows import Stabilizer

FIXTURES = TEST_FIXTURES / "perf_analyzer"
CSV_FILES = sorted(FIXTURES.glob("*.csv"))

# The options each fixture was produced with (fixtures/perf_analyzer/README.md), as the CLI would pass them.
OPTIONS = {
    "pa_grpc_verbose.csv": CsvOptions(mode="concurrency", percentile=95, verbose=True),
    "pa_request_rate.csv": CsvOptions(mode="request_rate"),
    "pa_request_rate_poisson.csv": CsvOptions(mode="request_rate"),
    "pa_collect_metrics.csv": CsvOptions(mode="concurrency", verbose=True, metrics=True),
    "pa_stability_partial.csv": CsvOptions(mode="concurrency"),
}


def test_every_fixture_is_covered() -> None:
    assert CSV_FILES, f"no perf_analyzer fixtures under {FIXTURES}"
    assert {p.name for p in CSV_FILES} == set(OPTIONS)


@pytest.mark.parametrize("path", CSV_FILES, ids=lambda p: p.name)
def test_header_byte_equal_for_same_options(path: Path) -> None:
    first_line = path.read_bytes().split(b"\n", 1)[0]
    assert OPTIONS[path.name].header_line().encode() == first_line


@pytest.mark.parametrize("path", CSV_FILES, ids=lambda p: p.name)
def test_reader_and_writer_round_trip_byte_equal(path: Path) -> None:
    table = read_csv(path)
    assert table.levels, "every fixture has data rows"
    assert render(table.levels, table.options) == path.read_text()
    for lv in table.levels:
        assert lv.stable and lv.throughput.infer_per_s > 0
        assert set(lv.latency.percentiles_ns) >= {50, 90, 95, 99}
        assert lv.server is not None and lv.server.queue_ns >= 0


def test_reader_values_and_units() -> None:
    t = read_csv(FIXTURES / "pa_collect_metrics.csv")
    lv = t.levels[0]
    assert lv.mode == "concurrency" and lv.concurrency == 1
    assert lv.throughput.infer_per_s == 292.406
    assert lv.client.send_ns == 7_000 and lv.client.recv_ns == 3_000
    assert lv.server is not None and lv.server.network_server_ns == 256_000
    assert lv.server.compute_infer_ns == 2_830_000
    assert lv.latency.p(99) == 4_141_000 and lv.latency.avg_ns == 3_405_000
    assert lv.client.response_wait_us == 3371  # request/response 10 = send 7 + recv 3
    assert lv.gpu is not None and lv.gpu.util == {}  # empty cells: no GPU on that box
    r = read_csv(FIXTURES / "pa_request_rate.csv")
    assert [lv.request_rate for lv in r.levels] == [50.0, 100.0, 150.0]
    assert r.options == CsvOptions(mode="request_rate")
    v = read_csv(FIXTURES / "pa_grpc_verbose.csv")
    assert v.options.verbose and not v.options.avg_latency_column
    assert v.levels[0].latency.avg_ns is None


def our_level(conc: int, per_window: int, gpu: bool = False) -> Stabilizer:
    srv = ServerDelta(
        success_count=per_window, success_ns=per_window * 900_000, queue_count=per_window,
        queue_ns=per_window * 100_999, compute_input_count=per_window, compute_input_ns=per_window * 10_500,
        compute_infer_count=per_window, compute_infer_ns=per_window * 700_000,
        compute_output_count=per_window, compute_output_ns=per_window * 9_999,
        inference_count=per_window, execution_count=per_window,
    )  # fmt: skip
    samples = (
        [
            GpuSample(
                0,
                {"GPU-b": 0.25, "GPU-a": 0.5},
                {"GPU-a": 71.5, "GPU-b": 60.0},
                {"GPU-a": 1 << 30, "GPU-b": 5},
                {"GPU-a": 80 << 30, "GPU-b": 10},
            )
        ]
        if gpu
        else []
    )
    st = Stabilizer(StabilityRule(percentile=85 if conc == 3 else None), mode="concurrency", value=conc)
    rng = np.random.default_rng(conc)
    for k in range(3):
        lat = rng.integers(900_000, 1_100_000, per_window).astype(np.int64)
        st.add(
            WindowStats(start_ns=k * 10**9, end_ns=(k + 1) * 10**9, latencies_ns=lat,
                        send_ns_total=per_window * 12_345, recv_ns_total=per_window * 2_999,
                        request_ns_total=int(lat.sum()) - per_window * 1000, server=srv, gpu_samples=samples)
        )  # fmt: skip
    return st


def test_our_levels_sorted_by_throughput_integer_us_and_metrics_cells(tmp_path: Path) -> None:
    levels = [our_level(2, 300, gpu=True).result(), our_level(1, 200, gpu=True).result()]
    opts = CsvOptions(verbose=True, metrics=True)
    out = tmp_path / "ours.csv"
    write_csv(out, levels, opts)
    text = out.read_text()
    lines = text.splitlines()
    assert lines[0] == (
        "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,"
        "Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,"
        "p50 latency,p90 latency,p95 latency,p99 latency,Avg latency,request/response,response wait,"
        "Avg GPU Utilization,Avg GPU Power Usage,Max GPU Memory Usage,Total GPU Memory"
    )
    assert [ln.split(",")[:2] for ln in lines[1:]] == [["1", "200"], ["2", "300"]]
    cells = lines[1].split(",")
    assert cells[2] == "12" and cells[4] == "100" and cells[8] == "2"  # 12_345 ns -> 12 µs, 100_999 -> 100
    assert cells[14] == "14"  # request/response = 12 + 2
    assert cells[16:] == ["GPU-a:0.5;GPU-b:0.25;", "GPU-a:71.5;GPU-b:60;", "GPU-a:1073741824;GPU-b:5;",
                          "GPU-a:85899345920;GPU-b:10;"]  # fmt: skip
    back = parse_csv(text)
    assert render(back.levels, back.options) == text
    assert back.levels[0].gpu is not None and back.levels[0].gpu.mem_total_bytes["GPU-a"] == 80 << 30
    assert not list(tmp_path.glob(".*.tmp"))


def test_percentile_column_inserted_and_no_server_stats_variant() -> None:
    lv = our_level(3, 100).result()
    opts = CsvOptions(percentile=85, verbose=True)
    text = render([lv], opts)
    assert text.splitlines()[0].endswith(
        "Client Recv,p50 latency,p85 latency,p90 latency,p95 latency,p99 latency,"
        "request/response,response wait"
    )
    assert parse_csv(text).options.percentile == 85
    bare = CsvOptions(server_stats=False).header_line()
    assert (
        bare == "Concurrency,Inferences/Second,Client Send,Client Recv,"
        "p50 latency,p90 latency,p95 latency,p99 latency"
    )
    text = render([lv], CsvOptions(server_stats=False))
    assert parse_csv(text).levels[0].server is None
    assert render(parse_csv(text).levels, CsvOptions(server_stats=False)) == text


def test_unstable_levels_stay_out_unless_asked() -> None:
    st = Stabilizer(StabilityRule(max_trials=1), mode="concurrency", value=1)
    st.add(WindowStats(0, 10**9, latencies_ns=np.full(10, 1000, dtype=np.int64)))
    lv = st.result()
    assert lv.stability == "unstable"
    assert render([lv], CsvOptions()).count("\n") == 1
    assert render([lv], CsvOptions(), include_unreported=True).count("\n") == 2


def test_not_a_perf_analyzer_csv() -> None:
    with pytest.raises(ValueError):
        parse_csv("a,b\n1,2\n")
