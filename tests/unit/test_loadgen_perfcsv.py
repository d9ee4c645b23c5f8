"""perf_analyzer CSV: headers byte-equal to real perf_analyzer files, one reader for theirs and ours."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES

from loadgen.perfcsv import CsvOptions, PaRow, csv_text, format_rows, options_from_header, parse_csv, read_csv
from saturate.errors import UsageError

PA = FIXTURES / "perf_analyzer"

#: The options each real file was produced with (shared/fixtures/perf_analyzer/README.md).
FIXTURE_OPTIONS = {
    "pa_grpc_verbose.csv": CsvOptions(mode="concurrency", percentile=95, verbose=True),
    "pa_request_rate.csv": CsvOptions(mode="request_rate"),
    "pa_request_rate_poisson.csv": CsvOptions(mode="request_rate"),
    "pa_collect_metrics.csv": CsvOptions(mode="concurrency", verbose=True, metrics=True),
    "pa_stability_partial.csv": CsvOptions(mode="concurrency"),
}


def test_every_fixture_csv_is_covered() -> None:
    assert sorted(p.name for p in PA.glob("*.csv")) == sorted(FIXTURE_OPTIONS)


@pytest.mark.parametrize("name", sorted(FIXTURE_OPTIONS))
def test_header_is_byte_equal_to_perf_analyzer(name: str) -> None:
    first_line = (PA / name).read_text().splitlines()[0]
    assert ",".join(FIXTURE_OPTIONS[name].header()) == first_line


@pytest.mark.parametrize("name", sorted(FIXTURE_OPTIONS))
def test_reader_then_writer_reproduces_the_real_file(name: str) -> None:
    text = (PA / name).read_text()
    opts, rows = read_csv(PA / name)
    assert rows, "every fixture has data rows"
    assert opts.header() == text.splitlines()[0].split(",")
    assert format_rows(rows, FIXTURE_OPTIONS[name]) == text


def test_reader_values_of_a_real_file() -> None:
    opts, rows = read_csv(PA / "pa_grpc_verbose.csv")
    assert opts.mode == "concurrency" and opts.verbose and opts.server_stats
    first = rows[0]
    assert (first.value, first.infer_per_s, first.client_send_us) == (1.0, 622.253, 14)
    assert first.server == {
        "network_server_us": 369, "queue_us": 66, "compute_input_us": 37,
        "compute_infer_us": 5603, "compute_output_us": 247,
    }
    assert first.latency_us == {"p50": 6319, "p90": 6688, "p95": 6818, "p99": 7150}
    assert (first.request_response_us, first.response_wait_us) == (17, 6314)
    _, rate_rows = read_csv(PA / "pa_request_rate.csv")
    assert [r.value for r in rate_rows] == [50.0, 100.0, 150.0]
    assert all(r.mode == "request_rate" for r in rate_rows)


def test_percentile_column_is_inserted_in_sorted_place() -> None:
    head = CsvOptions(percentile=85, verbose=True).header()
    i = head.index("p50 latency")
    assert head[i : i + 5] == ["p50 latency", "p85 latency", "p90 latency", "p95 latency", "p99 latency"]
    assert "Avg latency" not in head
    assert options_from_header(head).percentile == 85


def test_header_without_server_statistics() -> None:
    assert ",".join(CsvOptions(server_stats=False).header()) == (
        "Concurrency,Inferences/Second,Client Send,Client Recv,"
        "p50 latency,p90 latency,p95 latency,p99 latency"
    )


def _level(conc: int, ips: float, gpu: dict[str, dict[str, float]] | None = None) -> dict[str, object]:
    return {
        "mode": "concurrency", "concurrency": conc, "request_rate": None, "batch_size": 1,
        "throughput": {"infer_per_s": ips, "requests_per_s": ips},
        "latency_us": {"avg": 1000, "p50": 900, "p90": 1500, "p95": 1700, "p99": 2500},
        "client": {"send_us": 10, "recv_us": 5},
        "server": {"queue_us": 100, "compute_input_us": 20, "compute_infer_us": 600, "compute_output_us": 30},
        "gpu": gpu,
    }


def test_ours_round_trips_through_the_same_reader() -> None:
    gpu = {"util": {"GPU-a": 0.5, "GPU-b": 1.0}, "power_w": {"GPU-a": 250.5, "GPU-b": 300.0},
           "mem_used_bytes": {"GPU-a": 1e9, "GPU-b": 2e9}, "mem_total_bytes": {"GPU-a": 8e10, "GPU-b": 8e10}}
    levels = [_level(2, 1999.123456, gpu), _level(1, 1000.0, gpu)]
    text = csv_text(levels, "concurrency", None, True, True, True)
    lines = text.splitlines()
    assert lines[1].startswith("1,1000,") and lines[2].startswith("2,1999.12,")  # sorted by throughput
    assert lines[1].endswith(",GPU-a:0.5;GPU-b:1;,GPU-a:250.5;GPU-b:300;,GPU-a:1e+09;GPU-b:2e+09;,"
                             "GPU-a:8e+10;GPU-b:8e+10;")
    opts, rows = parse_csv(text)
    assert opts == CsvOptions(verbose=True, metrics=True)
    row = rows[0]
    # Network+Server = max(0, avg - send - recv - (queue + compute)) = 1000 - 15 - 750
    assert row.server is not None and row.server["network_server_us"] == 235
    assert (row.request_response_us, row.response_wait_us) == (15, 985)
    assert row.gpu["util"] == {"GPU-a": 0.5, "GPU-b": 1.0}
    assert row == PaRow.from_level(levels[1])


def test_network_server_never_negative() -> None:
    level = _level(1, 10.0)
    level["latency_us"] = {"avg": 100, "p50": 100, "p90": 100, "p95": 100, "p99": 100}
    server = PaRow.from_level(level).server
    assert server is not None and server["network_server_us"] == 0


def test_not_a_perf_analyzer_csv_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("timestamp,unix_ns\n1,2\n")
    with pytest.raises(UsageError, match="not a perf_analyzer CSV"):
        read_csv(bad)
    damaged = tmp_path / "d.csv"
    damaged.write_text((PA / "pa_request_rate.csv").read_text() + "200,1\n")
    with pytest.raises(UsageError, match="damaged"):
        read_csv(damaged)
    with pytest.raises(UsageError, match="cannot read"):
        read_csv(tmp_path / "missing.csv")
