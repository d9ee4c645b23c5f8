"""Scans, sweeps, multiproc and perf_analyzer runs under faults and with tokens (issue 14).

A wrong token is a usage error before `scan server` measures; a server frozen mid-level over HTTP
leaves that level in scan.json, flagged, with what it measured (exit 1); the token never lands in
sweep.jsonl, a sweep's logs, multiproc.json or perf_analyzer's console/JSON copies.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, ServerProcess, run_cli, start_server
from tests.pa_binary import perf_analyzer

SECRET = "tok-3f9a1c77e2"


@pytest.fixture(scope="module")
def mlp() -> Iterator[ServerProcess]:
    server = start_server("mlp", ["--guard-statistics"])  # the token tests need statistics guarded
    yield server
    server.stop()


def _no_secret_under(root: Path, secret: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_scan_with_a_wrong_token_is_a_usage_error(mlp: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "res"
    res = run_cli("scan", "server", "-m", "mlp", "-u", mlp.grpc_url, "--access-token", "wrong",
                  "--concurrency", "1", "--no-monitor", "--out", str(out), timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "token" in lines[0], res.stderr
    assert not out.exists()


def test_scan_over_http_keeps_the_partly_measured_level(tmp_path: Path) -> None:
    server = start_server("mlp")
    out = tmp_path / "res"
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "saturate", "scan", "server", "-m", "mlp", "-u", server.http_url,
             "-i", "http", "--access-token", server.token, "--concurrency", "2", "--no-monitor",
             "-p", "400", "-s", "1", "-r", "10", "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
        log = out / "scan.log"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if log.exists() and log.read_text().count("Pass [") >= 2:
                break
            time.sleep(0.2)
        os.killpg(server.proc.pid, signal.SIGSTOP)
        text, _ = proc.communicate(timeout=120)
    finally:
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
    assert proc.returncode == 1 and "Traceback" not in text, text
    (level,) = json.loads((out / "scan.json").read_text())["levels"]
    assert level["stability"] == "interrupted"
    assert level["requests"]["completed"] > 0  # what was measured before the freeze is kept


def test_sweep_keeps_the_token_out_of_its_files(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"command: load\ntimeout: 60\nparameters:\n  m: mlp\n  u: 127.0.0.1:1\n"
                    f"  access-token: {SECRET}\n  request-timeout: 1\n")
    out = tmp_path / "sw"
    res = run_cli("sweep", str(spec), "--out", str(out), timeout=120)
    assert res.returncode == 1, res.stderr  # the experiment fails (no server), the sweep records it
    record = json.loads((out / "sweep.jsonl").read_text().splitlines()[0])
    assert record["status"] == "failed" and "cannot reach" in (record["error"] or "")
    assert SECRET not in res.stderr + res.stdout
    assert _no_secret_under(out, SECRET) == []


def test_multiproc_json_masks_the_token(tmp_path: Path) -> None:
    out = tmp_path / "mp"
    res = run_cli("scan", "multiproc", "--processes", "1", "-u", "127.0.0.1:1", "--model", "mlp",
                  "--access-token", SECRET, "--time", "1", "--warmup", "0", "--setup-timeout", "20",
                  "--out", str(out), timeout=120)
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
    doc = json.loads((out / "multiproc.json").read_text())
    assert doc["config"]["workload"]["access_token"] == "***"
    assert _no_secret_under(out, SECRET) == []


def test_perf_analyzer_files_mask_the_token(tmp_path: Path) -> None:
    """The real perf_analyzer, failing against a closed port: the console copy and pa.json are masked."""
    out = tmp_path / "pa"
    res = run_cli("pa", "--binary", perf_analyzer(), "--out", str(out), "--", "-m", "mlp",
                  "-u", "127.0.0.1:1",
                  "-H", f"triton-access-token:{SECRET}", timeout=60)
    assert "Traceback" not in res.stderr, res.stderr
    assert (out / "pa_console.txt").exists() and (out / "pa.json").exists()
    assert "triton-access-token:***" in (out / "pa_console.txt").read_text()
    assert _no_secret_under(out, SECRET) == []
