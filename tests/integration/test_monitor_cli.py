"""``saturate monitor`` end to end: real host sampling here, and the subprocess GPU sources driven by
the recording stand-ins in tests/fixtures/monitors/bin (real captured output, replayed)."""

from __future__ import annotations

import csv
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, run_cli

FIX = REPO / "tests" / "fixtures" / "monitors"
COLUMNS = 17


def _env(tmp_path: Path, standins: bool = True, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["SATURATE_STANDIN_LOG"] = str(tmp_path / "standin.log")
    if standins:
        env["PATH"] = f"{FIX / 'bin'}{os.pathsep}{env['PATH']}"
    env.update(extra)
    return env


def _calls(tmp_path: Path) -> list[dict[str, object]]:
    log = tmp_path / "standin.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_acceptance_host_only_run(tmp_path: Path) -> None:
    out = tmp_path / "X.csv"
    r = run_cli("monitor", "--duration", "5", "--interval", "0.1", "--out", str(out), timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("no GPU tool found") == 1
    rows = _rows(out)
    assert len(rows) >= 48
    assert all(row["device"] == "host" and row["cpu_util_pct"] and row["ram_util_pct"] for row in rows)
    assert "0 missed ticks" in r.stderr or len(rows) >= 48


def test_sigterm_mid_run_leaves_only_whole_rows(tmp_path: Path) -> None:
    out, pid_file = tmp_path / "m.csv", tmp_path / "m.pid"
    proc = subprocess.Popen([sys.executable, "-m", "saturate", "monitor", "--interval", "0.05",
                             "--out", str(out), "--pid-file", str(pid_file), "--source", "host"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pid_file.read_text().strip() == str(proc.pid)  # ready handshake: pid written after row 1
        assert len(out.read_text().splitlines()) >= 2
        time.sleep(0.73)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped by SIGTERM" in err
    text = out.read_text()
    assert text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) >= 10
    assert all(len(next(csv.reader([line]))) == COLUMNS for line in lines)
    assert not pid_file.exists()


@pytest.mark.parametrize("args", [
    ["--interval", "0"], ["--interval", "0.01"], ["--interval", "-1"],
    ["--source", "cuda"], ["--source", "nvml"], ["--out", "/proc/no/such/dir/x.csv"],
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    full = ["monitor", "--duration", "1", *args]
    if "--out" not in args:
        full += ["--out", str(tmp_path / "x.csv")]
    r = run_cli(*full, timeout=60, env=_env(tmp_path, standins=False))
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("saturate: error:")


def test_unwritable_out_directory_path(tmp_path: Path) -> None:
    r = run_cli("monitor", "--duration", "1", "--out", str(tmp_path), timeout=60)
    assert r.returncode == 2 and "cannot write --out" in r.stderr and len(r.stderr.splitlines()) == 1


def test_nvidia_smi_one_long_lived_process(tmp_path: Path) -> None:
    out = tmp_path / "nv.csv"
    r = run_cli("monitor", "--source", "nvidia-smi", "--duration", "1.5", "--interval", "0.1",
                "--out", str(out), timeout=60, env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    calls = [c for c in _calls(tmp_path) if c["tool"] == "nvidia-smi"]
    assert len(calls) == 1  # one process for the whole run, not one per sample
    argv = calls[0]["argv"]
    assert isinstance(argv, list) and "-lms" in argv and argv[argv.index("-lms") + 1] == "100"
    assert "--format=csv,noheader,nounits" in argv
    rows = _rows(out)
    assert len(rows) >= 13 and all(row["device"] == "gpu0" for row in rows)
    utils = {row["gpu_util_pct"] for row in rows}
    assert utils <= {"0", "100"} and "100" in utils  # idle and load captures of a real H100
    load = next(row for row in rows if row["gpu_util_pct"] == "100")
    assert (load["power_w"], load["gpu_mem_used_mib"], load["sm_clock_mhz"]) == ("631.95", "19818", "1980")
    assert load["cpu_util_pct"] != "" and load["sm_active_pct"] == ""  # GPM only via NVML


def test_auto_picks_nvidia_smi_and_seed_format(tmp_path: Path) -> None:
    out = tmp_path / "seed.csv"
    r = run_cli("monitor", "--duration", "0.6", "--interval", "0.1", "--format", "seed", "--out", str(out),
                timeout=60, env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "GPU source: nvidia-smi" in r.stderr and "no GPU tool found" not in r.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "Timestamp, GPU Util (%), GPU Mem (%), CPU Util (%), RAM Util (%)"
    assert {ln.split(", ")[1] for ln in lines[1:]} <= {"0", "100"} and len(lines) >= 6


def test_nvidia_smi_without_driver_is_missing_source(tmp_path: Path) -> None:
    r = run_cli("monitor", "--source", "nvidia-smi", "--duration", "1", "--out", str(tmp_path / "x.csv"),
                timeout=60, env=_env(tmp_path, SATURATE_NVSMI_MODE="nodriver"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "couldn't communicate with the NVIDIA driver" in r.stderr and "exit 9" in r.stderr


def test_rocm_smi_four_mi100(tmp_path: Path) -> None:
    out = tmp_path / "amd.csv"
    r = run_cli("monitor", "--source", "rocm-smi", "--gpus", "0,3", "--duration", "0.6", "--interval", "0.1",
                "--out", str(out), timeout=60, env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = _rows(out)
    assert {row["device"] for row in rows} == {"gpu0", "gpu3"}
    g3 = next(row for row in rows if row["device"] == "gpu3")
    assert (g3["power_w"], g3["temp_c"], g3["sm_clock_mhz"]) == ("39", "51", "300")
    assert all("--json" in c["argv"] for c in _calls(tmp_path))  # type: ignore[operator]


def test_rocm_smi_without_gpu_falls_back_to_host_under_auto(tmp_path: Path) -> None:
    out = tmp_path / "h.csv"
    env = _env(tmp_path, SATURATE_ROCM_SMI_MODE="nogpu", SATURATE_NVSMI_MODE="nodriver",
               SATURATE_AMD_SMI_JSON=str(tmp_path / "absent.json"))
    (tmp_path / "absent.json").write_text("")
    r = run_cli("monitor", "--duration", "0.3", "--interval", "0.1", "--out", str(out), timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("no GPU tool found") == 1 and "Driver not initialized" in r.stderr
    assert {row["device"] for row in _rows(out)} == {"host"}


def test_amd_smi_cli_busy_per_xcd(tmp_path: Path) -> None:
    out = tmp_path / "mi300.csv"
    env = _env(tmp_path, SATURATE_AMD_SMI_JSON=str(FIX / "amd_smi_metric_mi300x_dpx_usage_excerpt.json"))
    r = run_cli("monitor", "--source", "amd-smi", "--duration", "0.3", "--interval", "0.1", "--out", str(out),
                timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    row = _rows(out)[0]
    got = (row["device"], row["gpu_util_pct"], row["sm_active_pct"], row["power_w"])
    assert got == ("gpu0", "0", "0", "")


@pytest.fixture
def metrics_server() -> Iterator[str]:
    body = (FIX / "triton_metrics_4gpu.txt").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/metrics"
    srv.shutdown()


def test_triton_metrics_source_and_summarize(tmp_path: Path, metrics_server: str) -> None:
    out = tmp_path / "tri.csv"
    phase = tmp_path / "phase"
    phase.write_text("b=64 c=8\n")
    r = run_cli("monitor", "--source", "triton", "--metrics-url", metrics_server, "--duration", "0.5",
                "--interval", "0.1", "--phase-file", str(phase), "--out", str(out), timeout=60)
    assert r.returncode == 0, r.stderr
    rows = _rows(out)
    assert len({row["device"] for row in rows}) == 4 and all(row["phase"] == "b=64 c=8" for row in rows)
    assert rows[0]["power_w"] == "58.954"
    s = run_cli("monitor", "summarize", str(out), timeout=60)
    assert s.returncode == 0, s.stderr
    assert "b=64 c=8" in s.stdout and "power_w" in s.stdout
    assert (tmp_path / "tri.png").read_bytes()[:4] == b"\x89PNG"


def test_triton_unreachable_is_one_line(tmp_path: Path) -> None:
    r = run_cli("monitor", "--source", "triton", "--metrics-url", "http://127.0.0.1:9/metrics",
                "--duration", "1", "--out", str(tmp_path / "x.csv"), timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--metrics-url" in r.stderr


def test_summarize_rejects_non_monitor_csv(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    r = run_cli("monitor", "summarize", str(bad), timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
