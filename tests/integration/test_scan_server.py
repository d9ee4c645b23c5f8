"""``saturate scan server`` against a real PyTriton server (MLP on the CPU), through the front door.

One module-scoped server serves the uninterrupted scan, the interrupted-and-resumed one and the bad
input; the failed-level test kills its own server mid-scan.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, ServerProcess, run_cli, start_server

from loadgen.result import SCHEMA
from scans.report.build import ReportConfig, make_report

pytestmark = pytest.mark.integration

# -s 1000: every level is stable after its 3 windows, so the per-batch CSVs always have rows
GRID = ("--concurrency", "1,2", "--batch-sizes", "1,4", "-p", "300", "-r", "3", "-s", "1000",
        "--monitor-interval", "0.1")
NAMES = ["c1_b1", "c2_b1", "c1_b4", "c2_b4"]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    s = start_server("mlp", ["--max-batch", "8"])
    yield s
    s.stop()


def scan_args(server: ServerProcess, out: Path, *extra: str) -> list[str]:
    return ["scan", "server", "-m", "mlp", "-u", server.grpc_url, "--access-token", server.token,
            *GRID, "--out", str(out), *extra]


def popen_scan(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "saturate", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def level_names(out: Path) -> list[str]:
    try:
        doc = json.loads((out / "scan.json").read_text())
    except (OSError, ValueError):
        return []
    return [f"c{lv['concurrency']}_b{lv['batch_size']}" for lv in doc["levels"]]


def wait_levels(out: Path, n: int, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(level_names(out)) < n:
        assert proc.poll() is None, f"scan ended early: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "scan did not reach the levels in time"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def uninterrupted(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("full")
    done = run_cli(*scan_args(server, out, "--latency-budget-ms", "1000"), timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_uninterrupted_scan_writes_the_result_directory(uninterrupted: Path) -> None:
    doc = json.loads((uninterrupted / "scan.json").read_text())
    assert doc["schema"] == SCHEMA and doc["tool"]["command"] == "scan server"
    assert level_names(uninterrupted) == NAMES
    assert doc["config"]["grid"] == NAMES and doc["config"]["batch_sizes"] == [1, 4]
    for lv in doc["levels"]:
        assert lv["throughput"]["infer_per_s"] > 0 and 3 <= len(lv["windows"]) <= 3
        assert lv["server"]["avg_batch"] >= 1  # server statistics read with the token
        assert lv["verdict"]["saturated"] in ("client", "server_queue", "gpu", "none")
        assert lv["verdict"]["evidence"]["host_cpu_pct"] is not None  # joined with the monitor
    analysis = doc["analysis"]
    assert analysis["latency_budget_ms"] == 1000 and analysis["knee"]["level"] in NAMES
    assert set(analysis["verdicts"]) == set(NAMES)
    phases = {line.rsplit(",", 1)[1] for line in (uninterrupted / "monitor.csv").read_text().splitlines()[1:]}
    assert set(NAMES) <= phases
    for b in (1, 4):
        header = (uninterrupted / f"b{b}.csv").read_text().splitlines()[0]
        assert header.startswith("Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv")
    log = (uninterrupted / "scan.log").read_text()
    assert "level c2_b4 (4/4)" in log and "Pass [3/3]" in log
    assert "scan server: Best within the 1000 ms p95 budget: " in log  # the headline ends the scan


def plots_of(src: Path, out: Path, cli: bool = False) -> set[str]:
    if cli:
        done = run_cli("report", str(src), "--out", str(out), timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
    else:
        make_report(ReportConfig(source=src, out=out))
    return {p.stem for p in (out / "plots").glob("*.png")}


def test_report_draws_the_same_plots_for_our_scan_and_perf_analyzer(uninterrupted: Path,
                                                                    tmp_path: Path) -> None:
    server_plots = {"throughput_vs_concurrency", "latency_vs_throughput", "server_breakdown"}
    assert plots_of(uninterrupted, tmp_path / "ours", cli=True) == server_plots | {"utilization_timeline"}
    html = (tmp_path / "ours" / "report.html").read_text()
    assert "Knee and saturation verdicts" in html and "within 1000 ms" in html and "c2_b4" in html
    csvs, pa = tmp_path / "csvs", tmp_path / "pa"
    csvs.mkdir()
    pa.mkdir()
    for b in (1, 4):  # our per-batch CSVs alone are perf_analyzer CSVs
        shutil.copy(uninterrupted / f"b{b}.csv", csvs)
    for f in ("pa_grpc_verbose.csv", "pa_grpc_verbose.txt"):
        shutil.copy(FIXTURES / "perf_analyzer" / f, pa)
    assert plots_of(csvs, tmp_path / "csvs_report") == server_plots
    assert plots_of(pa, tmp_path / "pa_report") == server_plots


def interrupt(args: list[str], out: Path, levels: int, sig: int) -> str:
    """Run the scan, send ``sig`` once OUT's JSON has ``levels`` levels; returns stderr."""
    proc = popen_scan(args)
    try:
        wait_levels(out, levels, proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err[-2000:]
    return err


def test_interrupted_and_resumed_scan_matches(server: ServerProcess, uninterrupted: Path,
                                              tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    interrupt(scan_args(server, out), out, 1, signal.SIGINT)  # Ctrl-C during the second level
    first = level_names(out)
    assert first == NAMES[: len(first)] and 1 <= len(first) <= 2
    # resumed, then interrupted again after two levels in all
    err = interrupt(scan_args(server, out, "--resume"), out, len(first) + 1, signal.SIGTERM)
    kept = level_names(out)
    assert kept[:2] == NAMES[:2] and len(kept) < 4
    assert "rerun with --resume" in err
    refused = run_cli(*scan_args(server, out), timeout=60)  # without --resume nothing is overwritten
    assert refused.returncode == 2 and "pass --resume" in refused.stderr and level_names(out) == kept
    done = run_cli(*scan_args(server, out, "--resume"), timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{4 - len(kept)} of 4 levels to measure" in done.stderr
    assert level_names(out) == level_names(uninterrupted) == NAMES
    phases = [line.rsplit(",", 1)[1] for line in (out / "monitor.csv").read_text().splitlines()[1:]]
    assert set(NAMES) <= set(phases)  # both runs' monitor rows, one header
    assert (out / "monitor.csv").read_text().count("timestamp,unix_ns") == 1
    # resuming a finished scan measures nothing; other settings are refused in one line
    again = run_cli(*scan_args(server, out, "--resume"), timeout=60)
    assert again.returncode == 0 and "0 of 4 levels to measure" in again.stderr
    other = run_cli(*[a if a != "1,2" else "1,3" for a in scan_args(server, out, "--resume")], timeout=60)
    assert other.returncode == 2 and "other settings" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--concurrency", ""], "concurrency list is empty"),
        (["--batch-sizes", "4,16"], "batch 16 is above the max batch 8 of model 'mlp'"),
    ],
)
def test_bad_grid_is_one_line_exit_2(server: ServerProcess, tmp_path: Path, extra: list[str],
                                     needle: str) -> None:
    done = run_cli(*scan_args(server, tmp_path / "x"), *extra, timeout=60)
    assert done.returncode == 2 and needle in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_unknown_backend_and_foreign_directory_are_one_line_exit_2(tmp_path: Path) -> None:
    done = run_cli("scan", "server", "--serve", "--backend", "tensorflow", "--out", str(tmp_path / "y"))
    assert done.returncode == 2 and "unknown backend 'tensorflow'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "scan.json").write_text(json.dumps({"schema": "someone.else/3", "rows": []}))
    done = run_cli("scan", "server", "-u", "127.0.0.1:1", "--resume", "--out", str(foreign))
    assert done.returncode == 2 and "schema 'someone.else/3'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_server_lost_mid_scan_records_failed_levels(tmp_path: Path) -> None:
    s = start_server("mlp")
    out = tmp_path / "lost"
    try:
        proc = popen_scan(["scan", "server", "-m", "mlp", "-u", s.grpc_url, "--access-token", s.token,
                           *GRID, "--out", str(out)])
        try:
            wait_levels(out, 1, proc)
            os.killpg(s.proc.pid, signal.SIGKILL)
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    finally:
        s.stop()
    assert proc.returncode == 1, err[-2000:]  # failed levels are recorded and the exit code says so
    doc = json.loads((out / "scan.json").read_text())
    assert level_names(out) == NAMES  # the scan went on and recorded every level
    assert doc["levels"][0]["stability"] != "interrupted"
    lost = [lv for lv in doc["levels"] if lv["stability"] == "interrupted"]
    assert lost and lost[-1]["batch_size"] == 4 and not lost[-1]["verdict"]["valid"]
    assert "level failed: cannot reach" in lost[-1]["verdict"]["reasons"][0]
    assert "failed" in err
