"""``saturate scan server --engine perf_analyzer`` against a real CPU server, with a recording stand-in
for perf_analyzer on PATH (it replays a real perf_analyzer fixture; real numbers need the real binary)."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import FIXTURES, ServerProcess, run_cli

pytestmark = pytest.mark.integration
FIX = FIXTURES / "perf_analyzer" / "pa_grpc_verbose"
STANDIN = f"""#!{sys.executable}
import os, shutil, sys
args = sys.argv[1:]
with open({{record!r}}, "a") as f:
    f.write("\\t".join(args) + "\\n")
fix = os.environ.get("PA_FIXTURE", {str(FIX)!r})
sys.stdout.write(open(fix + ".txt").read())
if os.path.exists(fix + ".stderr.txt"):
    sys.stderr.write(open(fix + ".stderr.txt").read())
if os.path.exists(fix + ".csv"):
    shutil.copyfile(fix + ".csv", args[args.index("-f") + 1])
sys.exit(int(os.environ.get("PA_RC", "0")))
"""


def test_scan_server_with_the_perf_analyzer_engine(
    tmp_path: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    srv = server_factory("mlp")
    bin_dir, record = tmp_path / "bin", tmp_path / "argv.tsv"
    bin_dir.mkdir()
    exe = bin_dir / "perf_analyzer"
    exe.write_text(STANDIN.format(record=str(record)))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "SATURATE_PA_DIR": str(tmp_path / "pa")}
    out = tmp_path / "scan"
    proc = run_cli("scan", "server", "-m", "mlp", "-u", srv.grpc_url, "--access-token", srv.token,
                   "--engine", "perf_analyzer", "--concurrency", "1,3", "--batch-sizes", "4",
                   "--out", str(out), "--no-monitor", "-p", "700", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    calls = [line.split("\t") for line in record.read_text().splitlines()]
    assert len(calls) == 2
    for call, c in zip(calls, (1, 3), strict=True):
        assert call[call.index("-u") + 1] == srv.grpc_url and call[call.index("-b") + 1] == "4"
        assert call[call.index("--concurrency-range") + 1] == f"{c}:{c}:1"
        assert call[call.index("-p") + 1] == "700"
        assert f"triton-grpc-protocol-triton-access-token:{srv.token}" in call  # the gRPC header
    doc = json.loads((out / "scan.json").read_text())
    assert doc["config"]["engine"] == "perf_analyzer"
    got = {(lv["concurrency"], lv["batch_size"]): lv["throughput"]["infer_per_s"] for lv in doc["levels"]}
    assert got == {(1, 4): 622.253, (3, 4): 895.06}  # the replayed fixture rows, as PA wrote them
    assert sorted(p.name for p in (tmp_path / "pa").iterdir()) == [
        "pa_c1_b4.csv", "pa_c1_b4.txt", "pa_c3_b4.csv", "pa_c3_b4.txt"]  # SATURATE_PA_DIR

    # perf_analyzer failing a level (no CSV, exit 2): the scan keeps a flagged level with PA's words
    bad = tmp_path / "unstable"
    bad.with_suffix(".txt").write_text("*** Measurement Settings ***\n\nRequest concurrency: 2\n")
    msg = ("Failed to obtain stable measurement within 3 measurement windows for concurrency 2. "
           "Please try to increase the --measurement-interval.")
    (tmp_path / "unstable.stderr.txt").write_text(msg + "\nFailed to obtain stable measurement.\n")
    out2 = tmp_path / "scan2"
    proc = run_cli("scan", "server", "-m", "mlp", "-u", srv.grpc_url, "--access-token", srv.token,
                   "--engine", "perf_analyzer", "--concurrency", "2", "--batch-sizes", "1",
                   "--out", str(out2), "--no-monitor", env={**env, "PA_FIXTURE": str(bad), "PA_RC": "2"})
    assert proc.returncode in (0, 2), proc.stderr[-3000:]
    (lv,) = json.loads((out2 / "scan.json").read_text())["levels"]
    assert lv["concurrency"] == 2 and not lv["stable"] and lv["stability"] == "unstable"
    assert msg in " ".join(lv["verdict"]["reasons"])
