"""Misbehaving GPU tools under `saturate monitor` (issue 14): hung in a grandchild, garbage, stalled.

The stand-ins are small shell scripts put first on PATH. The one data line they print is our query's
fields taken from the real L40S capture in tests/fixtures/monitors/nvidia_smi_l40s_595.80_load.csv.
Every case must end (bounded), with one line and exit 2 when the tool cannot be used (and no
header-only CSV), or with empty GPU cells once a tool stalls (never its old values repeated).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

from monitors.poller import Poller
from saturate.errors import ToolMissingError
from tests.conftest import REPO

LINE = "0, GPU-00000000-0000-0000-0000-000000000000, 9, 2, 1235, 46068, 110.23, 54, 2520"


def _standin(tmp_path: Path, name: str, body: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / name
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


def _monitor(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "saturate", "monitor", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env=env)


def _gone(pidfile: Path) -> bool:
    pid = int(pidfile.read_text().split()[0])
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_nvidia_smi_hung_in_a_grandchild(tmp_path: Path) -> None:
    """The tool forks a child that holds the pipe and never prints: one line, exit 2, child killed."""
    pids = tmp_path / "grandchild.pid"
    env = _standin(tmp_path, "nvidia-smi", f"sleep 1000 &\necho $! > {pids}\nwait\n")
    out = tmp_path / "m.csv"
    res = _monitor(env, "--source", "nvidia-smi", "--duration", "1", "--out", str(out))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "nvidia-smi gave no usable line" in lines[0]
    assert not out.exists()  # no header-only CSV
    assert _gone(pids)


def test_nvidia_smi_garbage_is_counted_and_skipped(tmp_path: Path) -> None:
    env = _standin(tmp_path, "nvidia-smi", "while :; do echo 'garbage, x';"
                   " echo 'nan, u, 1, 2, 3, 4, 5, 6, 7'; echo 'inf, u, 1, 2, 3, 4, 5, 6, 7';"
                   " sleep 0.05; done\n")
    out = tmp_path / "m.csv"
    res = _monitor(env, "--source", "nvidia-smi", "--duration", "1", "--out", str(out))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "lines not understood" in lines[0] and "exit None" not in lines[0]
    assert not out.exists()


def test_nvidia_smi_that_stalls_gives_empty_cells_and_duration_ends(tmp_path: Path) -> None:
    pids = tmp_path / "grandchild.pid"
    env = _standin(tmp_path, "nvidia-smi", f"echo '{LINE}'\nsleep 1000 &\necho $! > {pids}\nwait\n")
    out = tmp_path / "m.csv"
    res = _monitor(env, "--source", "nvidia-smi", "--duration", "4", "--interval", "0.25", "--out", str(out))
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    with open(out, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("device") == "gpu0"]
    assert rows and rows[0]["gpu_util_pct"] == "9"
    assert rows[-1]["gpu_util_pct"] == "" and rows[-1]["power_w"] == ""  # stale: empty, not repeated
    assert _gone(pids)


def test_polled_tool_hung_in_a_grandchild_is_bounded(tmp_path: Path) -> None:
    """rocm-smi/amd-smi style (one run per sample): the run's whole group is killed at its timeout."""
    pids = tmp_path / "grandchild.pid"
    _standin(tmp_path, "rocm-smi", f"sleep 1000 &\necho $! > {pids}\nwait\n")
    poller = Poller("rocm-smi", [str(tmp_path / "bin" / "rocm-smi")], lambda s: [], 0.2, timeout_s=1.0)
    t0 = time.monotonic()
    try:
        poller.first()
    except ToolMissingError as exc:
        assert "could not run" in str(exc)
    else:
        raise AssertionError("a hung tool must not be usable")
    assert time.monotonic() - t0 < 15
    assert _gone(pids)
