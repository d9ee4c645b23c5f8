"""Repeats, SLO gates and compare against real PyTriton servers (MLP on the CPU), through the front door.

One fast server for the module (scan with --repeats 3, load with --slo); one deliberately slower server
(the same MLP interface with 4096-wide hidden layers) scanned once for the comparison.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ServerProcess, run_cli, start_server

pytestmark = pytest.mark.integration

GRID = ("--concurrency", "1,2", "--batch-sizes", "1", "-p", "300", "-r", "3", "-s", "1000", "--no-monitor")
WINDOWS = ("-p", "300", "-r", "3", "-s", "1000")


@pytest.fixture(scope="module")
def fast() -> Iterator[ServerProcess]:
    s = start_server("mlp", ["--max-batch", "8"])
    yield s
    s.stop()


def scan(server: ServerProcess, out: Path, *extra: str) -> None:
    done = run_cli("scan", "server", "-m", "mlp", "-u", server.grpc_url, "--access-token", server.token,
                   *GRID, "--repeats", "3", "--out", str(out), *extra, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def scan_a(fast: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scan_a")
    scan(fast, out)
    return out


def test_scan_server_repeats_gives_intervals(scan_a: Path) -> None:
    doc = json.loads((scan_a / "scan.json").read_text())
    assert [lv["concurrency"] for lv in doc["levels"]] == [1, 2]
    for lv in doc["levels"]:
        rep = lv["repeats"]
        assert rep["n"] == 3 and rep["method"] == "t" and len(rep["trials"]) == 3
        st = rep["stats"]["infer_per_s"]
        assert st["ci_low"] <= st["mean"] <= st["ci_high"]
        assert lv["throughput"]["infer_per_s"] == pytest.approx(st["mean"])
        assert rep["stats"]["p95_us"]["ci_low"] is not None
        assert sum(lv["histogram"]["level"]["count"]) == lv["latency_us"]["count"]
        assert lv["energy"]["power_w"] is None  # no GPU: empty, never zero
    rows = list(csv.DictReader((scan_a / "b1.extra.csv").open()))
    assert [r["repeats"] for r in rows] == ["3", "3"] and all(r["infer_per_s_ci_low"] for r in rows)
    assert all(r["power_w"] == "" for r in rows)
    done = run_cli("report", str(scan_a))
    assert done.returncode == 0, done.stderr[-2000:]
    html = (scan_a / "report.html").read_text()
    assert "Repeats and energy" in html and "95% CI" in html


def test_load_slo_passes_and_fails(fast: ServerProcess, tmp_path: Path) -> None:
    base = ("load", "-m", "mlp", "-u", fast.grpc_url, "--access-token", fast.token,
            "--concurrency-range", "2", *WINDOWS)
    ok = run_cli(*base, "--repeats", "2", "--slo", "p95 < 10s", "--slo", "throughput > 1",
                 "--json", str(tmp_path / "ok.json"), "-f", str(tmp_path / "ok.csv"), timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
    doc = json.loads((tmp_path / "ok.json").read_text())
    assert doc["slo"]["passed"] is True and doc["slo"]["gates"] == ["p95 < 10s", "throughput > 1"]
    assert doc["levels"][0]["repeats"]["n"] == 2
    assert (tmp_path / "ok.extra.csv").read_text().count("\n") == 2
    bad = run_cli(*base, "--slo", "p95 < 1us", "--slo", "throughput > 1",
                  "--json", str(tmp_path / "bad.json"), timeout=120)
    assert bad.returncode == 1, bad.stderr[-2000:]
    failed = [ln for ln in bad.stderr.splitlines() if "gate failed" in ln]
    assert len(failed) == 1 and "concurrency 2: p95 = " in failed[0] and "bound < 0.001 ms" in failed[0]
    verdict = json.loads((tmp_path / "bad.json").read_text())["slo"]
    assert verdict["passed"] is False and verdict["failures"][0]["metric"] == "p95"
    malformed = run_cli(*base, "--slo", "p95 < 20", "--json", str(tmp_path / "m.json"), timeout=60)
    assert malformed.returncode == 2 and malformed.stderr.count("\n") == 1
    assert "needs a unit" in malformed.stderr and not (tmp_path / "m.json").exists()


def test_compare_flags_a_slower_server(scan_a: Path, tmp_path: Path) -> None:
    slow = start_server("mlp", ["--max-batch", "8", "--mlp-hidden", "4096,4096,4096"])
    try:
        scan(slow, tmp_path / "b")
    finally:
        slow.stop()
    out = tmp_path / "cmp"
    done = run_cli("compare", str(scan_a), str(tmp_path / "b"), "--out", str(out),
                   "--fail-on", "throughput < -5%", "--fail-on", "p95 > +10%", timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr[-2000:]
    assert "c1_b1" in done.stdout and "!" in done.stdout
    assert any("gate failed: c1_b1: infer_per_s changed by -" in ln for ln in done.stderr.splitlines())
    doc = json.loads((out / "compare.json").read_text())
    statuses = {lv["level"]: lv["changes"]["throughput"]["status"] for lv in doc["runs"][0]["levels"]}
    # 3 repeats on a shared 2-core machine: the intervals are wide, so one level significant is the claim
    assert set(statuses) == {"c1_b1", "c2_b1"} and "regressed" in statuses.values(), done.stdout
    assert "improved" not in statuses.values(), done.stdout
    rels = [lv["changes"]["throughput"]["rel"] for lv in doc["runs"][0]["levels"]]
    assert all(r < -0.3 for r in rels), done.stdout
    same = run_cli("compare", str(scan_a), str(scan_a), "--fail-on", "throughput < -5%", timeout=120)
    assert same.returncode == 0, same.stderr[-2000:]
    (scan_a / "compare.json").write_text((out / "compare.json").read_text())
    done = run_cli("report", str(scan_a))
    assert done.returncode == 0 and "Comparison" in (scan_a / "report.html").read_text()


def test_scan_direct_repeats(tmp_path: Path) -> None:
    done = run_cli("scan", "direct", "--model", "mlp", "--batch-sizes", "1,4", "--trials", "10",
                   "--warmup-trials", "2", "--warmup-seconds", "0", "--repeats", "3", "--out", str(tmp_path),
                   timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads((tmp_path / "direct.json").read_text())
    assert [lv["batch_size"] for lv in doc["levels"]] == [1, 4]
    for lv in doc["levels"]:
        st = lv["repeats"]["stats"]["infer_per_s"]
        assert lv["repeats"]["n"] == 3 and st["ci_low"] <= st["mean"] <= st["ci_high"]
        assert lv["direct"]["status"] == "ok"
    rows = list(csv.DictReader((tmp_path / "direct.extra.csv").open()))
    assert [r["repeats"] for r in rows] == ["3", "3"]
    assert (tmp_path / "direct.csv").read_text().count("\n") == 3
