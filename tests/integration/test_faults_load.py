"""Faults injected into `saturate load` against a real PyTriton server (issue 14).

A server's process group killed (SIGKILL) or frozen (SIGSTOP) mid-level over HTTP, a hung model in
the pre-flight (only the model's process stopped) over gRPC and HTTP, SIGINT and SIGTERM mid-level
(with `--processes 2`): every one ends in a flagged level with what was measured written, or one
line and exit 2 before measuring; never a traceback, never a hang.
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

import psutil
import pytest

from tests.conftest import REPO, ServerProcess, start_server

FAST = ("-p", "400", "-s", "1", "-r", "10")


@pytest.fixture(scope="module")
def mlp() -> Iterator[ServerProcess]:
    server = start_server("mlp")
    yield server
    server.stop()


def _popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "saturate", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)


def _wait_progress(proc: subprocess.Popen[str], lines: int = 1, timeout: float = 60) -> list[str]:
    """Read stderr until `lines` progress lines ('... window N/...') came; returns what was read."""
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if sum(1 for s in seen if "Pass [" in s) >= lines:
            return seen
    raise AssertionError("no progress line:\n" + "".join(seen))


def _finish(proc: subprocess.Popen[str], timeout: float = 90) -> tuple[int, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def _levels(path: Path) -> list[dict[str, object]]:
    levels: list[dict[str, object]] = json.loads(path.read_text())["levels"]
    return levels


@pytest.mark.parametrize("fault", [signal.SIGKILL, signal.SIGSTOP], ids=["SIGKILL", "SIGSTOP"])
def test_http_server_killed_or_frozen_mid_level(fault: signal.Signals, tmp_path: Path) -> None:
    server = start_server("mlp")
    js, csv = tmp_path / "run.json", tmp_path / "run.csv"
    try:
        proc = _popen("load", "-m", "mlp", "-u", server.http_url, "-i", "http",
                      "--access-token", server.token,
                      "--concurrency-range", "2:4:2", *FAST, "--request-timeout", "3",
                      "--json", str(js), "-f", str(csv))  # fmt: skip
        _wait_progress(proc, 2)
        os.killpg(server.proc.pid, fault)
        code, text = _finish(proc)
    finally:
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
    assert "Traceback" not in text, text
    assert code == 1, text
    assert "stopped answering" in text.strip().splitlines()[-2] + text.strip().splitlines()[-1]
    levels = _levels(js)
    assert levels[-1]["stability"] == "interrupted"
    assert levels[-1]["requests"]["completed"] > 0  # type: ignore[index]  # what was measured is kept
    assert csv.read_text().startswith("Concurrency,")  # the CSV is written too (the flagged level stays out)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_hung_model_in_preflight_is_one_line(mlp: ServerProcess, protocol: str, tmp_path: Path) -> None:
    """Only the model's process stopped: Triton answers metadata, the test request never comes back."""
    url = mlp.grpc_url if protocol == "grpc" else mlp.http_url
    os.kill(mlp.proc.pid, signal.SIGSTOP)
    try:
        res = subprocess.run([sys.executable, "-m", "saturate", "load", "-m", "mlp", "-u", url,
                              "-i", protocol,
                              "--access-token", mlp.token, "--request-timeout", "2", "--json",
                              str(tmp_path / "x.json")], capture_output=True, text=True, timeout=60, cwd=REPO)
    finally:
        os.kill(mlp.proc.pid, signal.SIGCONT)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "did not answer a test request within 2 s" in lines[0]
    assert not (tmp_path / "x.json").exists()


def test_sigint_keeps_the_level_flagged(mlp: ServerProcess, tmp_path: Path) -> None:
    js = tmp_path / "run.json"
    proc = _popen("load", "-m", "mlp", "-u", mlp.grpc_url, "--access-token", mlp.token,
                  "--concurrency-range", "1:2", *FAST, "--json", str(js))
    _wait_progress(proc, 1)
    proc.send_signal(signal.SIGINT)
    code, text = _finish(proc)
    assert code == 130 and "Traceback" not in text, text
    levels = _levels(js)
    assert levels[-1]["stability"] == "interrupted"
    assert any("SIGINT" in r for r in levels[-1]["verdict"]["reasons"])  # type: ignore[index]
    last_progress = [s for s in text.splitlines() if "Pass [" in s][-1]
    assert not last_progress.endswith("stable")


def _sems() -> set[str]:
    return {n for n in os.listdir("/dev/shm") if n.startswith("sem.mp-")}


def test_sigterm_with_processes_stops_the_workers(mlp: ServerProcess, tmp_path: Path) -> None:
    before = _sems()
    js = tmp_path / "run.json"
    proc = _popen("load", "-m", "mlp", "-u", mlp.grpc_url, "--access-token", mlp.token, "--processes", "2",
                  "--concurrency-range", "2:4:2", *FAST, "--json", str(js))
    _wait_progress(proc, 1)
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert len(workers) >= 2
    proc.send_signal(signal.SIGTERM)
    code, text = _finish(proc)
    assert code == 143 and "Traceback" not in text, text
    _gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, [p.cmdline() for p in alive]
    assert _levels(js)[-1]["stability"] == "interrupted"
    assert not (_sems() - before)


def test_sigkill_of_the_parent_ends_its_workers(mlp: ServerProcess, tmp_path: Path) -> None:
    proc = _popen("load", "-m", "mlp", "-u", mlp.grpc_url, "--access-token", mlp.token, "--processes", "2",
                  "--concurrency-range", "2:4:2", *FAST, "--json", str(tmp_path / "run.json"))
    _wait_progress(proc, 1)
    workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
               if "worker_main" in " ".join(p.cmdline()) or "multiprocessing" in " ".join(p.cmdline())]
    assert len(workers) >= 2, [p.cmdline() for p in psutil.Process(proc.pid).children(recursive=True)]
    proc.kill()  # no handler runs: only PR_SET_PDEATHSIG (loadgen/signals.py) ends the workers
    proc.communicate(timeout=30)
    _gone, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, [p.cmdline() for p in alive]
