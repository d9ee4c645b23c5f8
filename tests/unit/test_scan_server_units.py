"""``saturate scan server`` without a server: verdicts and the knee, the monitor join, the resume check,
the result directory, and the flags that are refused before anything connects."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from loadgen.config import LoadConfig
from loadgen.result import (
    ClientStats,
    GpuSummary,
    LatencySummary,
    LevelResult,
    RunResult,
    ServerSummary,
    Throughput,
    Verdict,
)
from loadgen.verdict import Usage, decide
from monitors.schema import Reading
from monitors.summarize import load
from monitors.writers import make_writer
from saturate.errors import ConfigError
from scans.analysis import knee, level_name
from scans.demo.steps import MARKER, prepare_out
from scans.flags import parse_concurrency
from scans.server import scanio
from scans.server.cli import add_server, scan_config
from scans.server.server_scan import ScanConfig, failed_level, identity
from scans.server.serverproc import zoo_shapes


def level(c: int, b: int, ips: float, p95_ms: float, *, queue_us: float = 100, compute_us: float = 1000,
          cpu: float | None = 0.2, gpu: float | None = None, valid: bool = True) -> LevelResult:
    return LevelResult(
        mode="concurrency", concurrency=c, request_rate=None, batch_size=b, stable=valid,
        stability="stable" if valid else "unstable",
        throughput=Throughput(infer_per_s=ips, requests_per_s=ips / b),
        latency=LatencySummary(percentiles_ns={50: int(p95_ms * 5e5), 90: int(p95_ms * 9e5),
                                              95: int(p95_ms * 1e6), 99: int(p95_ms * 1.2e6)}, avg_ns=1),
        client=ClientStats(send_ns=1000, recv_ns=1000, cpu_util=cpu),
        server=ServerSummary(queue_ns=int(queue_us * 1e3), compute_input_ns=0,
                             compute_infer_ns=int(compute_us * 1e3), compute_output_ns=0,
                             network_server_ns=10_000, avg_batch=float(b)),
        gpu=None if gpu is None else GpuSummary(util={"gpu0": gpu}),
        verdict=Verdict(valid=valid),
    )


def test_verdict_order_and_evidence() -> None:
    v = decide(level(1, 1, 100, 5, cpu=0.95, queue_us=5000))
    assert v.saturated == "client" and v.evidence["client_cpu_pct_per_process"] == pytest.approx(95)
    assert any("client CPU at 95%" in r for r in v.reasons)
    v = decide(level(8, 16, 900, 20, queue_us=5000), Usage(gpu_util_pct=97.0, sm_active_pct=30.0))
    assert v.saturated == "gpu"
    assert v.evidence["gpu_util_pct"] == 97.0 and v.evidence["sm_active_pct"] == 30.0
    assert "SM activity 30%: small kernels" in v.reasons[-1]
    v = decide(level(8, 16, 900, 20, gpu=0.93))  # Triton's metrics when the monitor has no GPU
    assert v.saturated == "gpu" and v.evidence["gpu_util_pct"] == pytest.approx(93)
    v = decide(level(4, 1, 300, 9, queue_us=800, compute_us=1000), Usage(gpu_util_pct=40.0, host_cpu_pct=88))
    assert v.saturated == "server_queue" and v.evidence["queue_over_compute"] == pytest.approx(0.8)
    assert v.evidence["host_cpu_pct"] == 88 and len(v.reasons) == 1
    v = decide(level(4, 1, 300, 9, queue_us=800, compute_us=1000), Usage(host_cpu_pct=97))
    assert v.saturated == "server_queue" and "host CPU busy 97%" in v.reasons[-1]  # a CPU-only server
    v = decide(level(1, 1, 100, 5, queue_us=100, compute_us=1000), Usage(gpu_util_pct=50.0))
    assert v.saturated == "none" and v.reasons == []
    d = v.to_dict()
    assert d["saturated"] == "none" and d["evidence"]["avg_batch"] == 1.0


def test_knee_within_budget() -> None:
    levels = [level(1, 1, 100, 2), level(4, 1, 300, 8), level(8, 1, 350, 30), level(4, 16, 900, 12),
              level(8, 16, 2000, 50, valid=False)]
    k = knee(levels, 10.0)
    assert k is not None and k["level"] == "c4_b1" and k["p95_ms"] == pytest.approx(8) and k["valid"]
    k = knee(levels, 20.0)
    assert k is not None and k["level"] == "c4_b16"
    k = knee(levels, None)  # no budget: the best valid level
    assert k is not None and k["level"] == "c4_b16" and k["infer_per_s"] == 900
    assert knee(levels, 1.0) is None
    only_unstable = [level(1, 1, 100, 2, valid=False), level(2, 1, 150, 3, valid=False)]
    k = knee(only_unstable, 5.0)
    assert k is not None and k["level"] == "c2_b1" and k["valid"] is False
    assert knee([failed_level(1, 1, "gone")], None) is None


def test_phase_usage_from_a_real_monitor_csv(tmp_path: Path) -> None:
    path = tmp_path / "monitor.csv"
    w = make_writer(str(path), "tidy")
    for t, (phase, util, sm, cpu) in enumerate([("", 5, 1, 10), ("c1_b1", 50, 20, 40), ("c1_b1", 70, 40, 60),
                                               ("c2_b1", 95, 35, 90)]):
        w.write(1_000_000_000 * (t + 1), [Reading("gpu0", {"gpu_util_pct": util, "sm_active_pct": sm}),
                                          Reading("host", {"cpu_util_pct": cpu}),
                                          Reading("pid:42", {"cpu_util_pct": 2 * cpu})], phase)
    w.close()
    u = scanio.phase_usage(load(str(path)), "c1_b1")
    assert u == Usage(gpu_util_pct=60, gpu_util_max_pct=70, sm_active_pct=30, host_cpu_pct=50,
                      process_cpu_pct=100, samples=2)
    assert scanio.MonitorTail(path).level("c9_b9")[0] is None
    assert scanio.MonitorTail(tmp_path / "absent.csv").level("c1_b1") == (None, None)


def test_monitor_tail_reads_only_the_rows_a_level_added(tmp_path: Path) -> None:
    path = tmp_path / "monitor.csv"
    tail = scanio.MonitorTail(path)
    assert tail.level("c1_b1") == (None, None)  # the monitor has not written yet
    w = make_writer(str(path), "tidy")
    for t in range(3):
        w.write(1_000_000_000 * (t + 1), [Reading("gpu0", {"gpu_util_pct": 40, "power_w": 100.0})], "c1_b1")
    w.close()
    usage, power = tail.level("c1_b1")
    assert usage is not None and usage.gpu_util_pct == 40 and usage.samples == 3 and power == (100.0, 3)
    header_and_rows = path.read_text().splitlines(keepends=True)
    row = header_and_rows[1].replace("c1_b1", "c2_b1").replace(",40,", ",90,")
    with open(path, "a") as f:  # the next level: two complete rows and one being written
        f.write(row + row + row[:10])
    usage, _ = tail.level("c2_b1")
    assert usage is not None and usage.samples == 1 and usage.gpu_util_pct == 90  # same timestamp, 2 rows
    assert tail.level("c1_b1")[0] is None  # the earlier level's rows are not read again
    with open(path, "a") as f:
        f.write(row[10:])
    usage, _ = tail.level("c2_b1")  # the row finished later belongs to the next read
    assert usage is not None and usage.gpu_util_pct == 90


def _cfg(tmp_path: Path, **kw: object) -> ScanConfig:
    base: dict[str, object] = dict(out=tmp_path, load=LoadConfig(model="mlp", url="127.0.0.1:1"),
                                   concurrencies=(1, 2), batch_sizes=(1, 4))
    base.update(kw)
    return ScanConfig(**base)  # type: ignore[arg-type]


def test_grid_and_identity(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    assert cfg.grid() == [(1, 1), (1, 2), (4, 1), (4, 2)]
    assert cfg.to_dict()["grid"] == ["c1_b1", "c2_b1", "c1_b4", "c2_b4"]
    other_url = _cfg(tmp_path, load=LoadConfig(model="mlp", url="10.0.0.1:8001", access_token="t"))
    assert identity(cfg.to_dict()) == identity(other_url.to_dict())
    assert identity(cfg.to_dict()) != identity(_cfg(tmp_path, concurrencies=(1, 3)).to_dict())
    slower = _cfg(tmp_path, load=LoadConfig(model="mlp", url="127.0.0.1:1", measurement_interval_ms=900))
    assert identity(cfg.to_dict()) != identity(slower.to_dict())
    with pytest.raises(ConfigError, match="grid is empty"):
        _cfg(tmp_path, concurrencies=())
    with pytest.raises(ConfigError, match="unknown engine"):
        _cfg(tmp_path, engine="locust")


def test_parse_concurrency() -> None:
    assert parse_concurrency("1,2,4,8") == (1, 2, 4, 8)
    assert parse_concurrency("2:8:2") == (2, 4, 6, 8)
    for bad, msg in (("", "empty"), ("1,x", "integers"), ("0,1", "at least 1"), ("4:2", "below start")):
        with pytest.raises(ConfigError, match=msg):
            parse_concurrency(bad)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_server(parser.add_subparsers())
    return parser.parse_args(["server", *argv])


def test_cli_refuses_before_connecting(tmp_path: Path) -> None:
    out = str(tmp_path / "o")
    cfg = scan_config(_args("-u", "127.0.0.1:8001", "--batch-range", "1:16", "--out", out))
    assert cfg.batch_sizes == (1, 2, 4, 8, 16) and cfg.concurrencies == (1, 2, 4, 8) and cfg.serve is None
    assert cfg.load.shapes == zoo_shapes("particlenet") and cfg.load.shapes[0] == ("pf_points", (2, 100))
    cfg = scan_config(_args("-u", "h:1", "-m", "mlp", "--concurrency", "2,4", "--processes", "2",
                            "--out", out))
    assert cfg.load.processes == 2 and cfg.load.shapes == ()
    with pytest.raises(ConfigError, match="--processes 2 needs concurrency >= 2"):
        scan_config(_args("-u", "h:1", "--concurrency", "1,4", "--processes", "2", "--out", out))
    cfg = scan_config(_args("--serve", "--backend", "onnx", "--batch-sizes", "1,16", "--out", out))
    assert cfg.serve is not None and cfg.serve.backend == "onnx"
    for argv, msg in ((["--out", out], "give -u"), (["--serve", "-u", "h:1", "--out", out], "not both"),
                      (["--serve", "--backend", "tensorflow", "--out", out], "unknown backend"),
                      (["-u", "h:1", "--batch-sizes", "", "--out", out], "batch list is empty"),
                      (["-u", "h:1", "--concurrency", ",", "--out", out], "concurrency list is empty")):
        with pytest.raises(ConfigError, match=msg):
            scan_config(_args(*argv))


def test_result_directory_round_trip_and_other_schema(tmp_path: Path) -> None:
    levels = [level(1, 1, 100, 2), level(2, 1, 180, 3), level(1, 4, 350, 4), failed_level(4, 2, "gone")]
    run = RunResult(config={"model": "mlp"}, levels=levels)
    verdicts = {level_name(1, 1): decide(levels[0]).to_dict()}
    scanio.write_outputs(tmp_path, run, verdicts, 3.5, None)
    doc = json.loads((tmp_path / "scan.json").read_text())
    assert doc["analysis"]["knee"]["level"] == "c2_b1"
    assert doc["analysis"]["knee_per_batch"]["4"] is None  # p95 4 ms is over the budget
    assert doc["levels"][0]["verdict"]["evidence"]["infer_per_s"] == 100
    prev = scanio.read_previous(tmp_path)
    assert prev is not None and [scanio.name_of(lv) for lv in prev[1]] == ["c1_b1", "c2_b1", "c1_b4", "c2_b4"]
    assert set(prev[2]) == {"c1_b1"}
    assert (tmp_path / "b1.csv").read_text().count("\n") == 3 and (tmp_path / "b4.csv").is_file()
    (tmp_path / "scan.json").write_text(json.dumps({"schema": "other/2", "levels": []}))
    with pytest.raises(ConfigError, match="schema 'other/2'"):
        scanio.read_previous(tmp_path)


def test_demo_directory_is_cleared_only_when_it_is_a_demo_directory(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    prepare_out(out)
    assert (out / MARKER).is_file()
    for name in ("scan.json", "b16.csv", "report.html", "keep.txt"):
        (out / name).write_text("old")
    (out / "plots").mkdir()
    (out / "plots" / "x.png").write_bytes(b"png")
    prepare_out(out)  # a rerun: the earlier results go, other files stay
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "keep.txt"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.csv").write_text("x")
    with pytest.raises(ConfigError, match="not a demo directory"):
        prepare_out(foreign)


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_shows_level_window_stability_and_throughput(terminal: bool) -> None:
    import io

    from rich.console import Console

    from loadgen.result import WindowSummary
    from loadgen.runner import WindowProgress
    from scans.server.progress import ScanProgress

    screen, log = io.StringIO(), io.StringIO()
    console = Console(file=screen, force_terminal=terminal, width=200, soft_wrap=True, highlight=False)
    summary = WindowSummary(start_ns=0, end_ns=10**9, completed=120, failed=0, infer_per_s=480.0,
                            latency=LatencySummary(percentiles_ns={50: 2_000_000}, avg_ns=2_000_000))
    with ScanProgress(2, log, console) as progress:
        progress.start_level("c4_b4", 1)
        progress.window(WindowProgress(4, 3, 5, summary, True, "[concurrency 4] Pass [3/5] ..."))
        progress.end_level("c4_b4", level(4, 4, 480.0, 3.0), "server_queue", None)
        progress.start_level("c8_b4", 2)
        progress.end_level("c8_b4", failed_level(4, 8, "gone"), "none", "gone")
    text = screen.getvalue()
    assert "c4_b4: 480.0 infer/s, p95 3.00 ms, stable, saturated: server_queue" in text
    assert "c8_b4: FAILED: gone" in text
    if not terminal:  # plain lines; a terminal gets the live bar instead
        assert "c4_b4 window 3/5 stable=yes 480.0 infer/s" in text
    assert "Pass [3/5]" in log.getvalue() and "level c8_b4 (2/2)" in log.getvalue()
