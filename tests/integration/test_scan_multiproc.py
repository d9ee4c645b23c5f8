"""``saturate scan multiproc`` on this machine: pinned direct children, a loadgen workload against a real
PyTriton server, a child killed or stopped mid-run, numactl through a recording stand-in, bad input."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, ServerProcess, run_cli, start_server

pytestmark = pytest.mark.integration

TWO_CORES = os.cpu_count() is not None and len(os.sched_getaffinity(0)) >= 2
needs_two = pytest.mark.skipif(not TWO_CORES, reason="needs two usable cores for two single-core children")
FAST = ("--warmup", "0.3", "--time", "1", "--cooldown", "0.1", "--barrier-timeout", "20")


def _doc(out: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((out / "multiproc.json").read_text())
    return doc


def _check_common(doc: dict[str, Any], n: int) -> None:
    assert doc["schema"] == "saturate.multiproc/1" and doc["status"] == "ok"
    assert len(doc["processes"]) == n
    agg = doc["aggregate"]
    assert agg["own_items_per_s"] >= agg["effective_items_per_s"] > 0
    assert agg["adjusted_items_per_s"] > 0
    assert agg["own_items_per_s"] == pytest.approx(sum(p["items_per_s"] for p in doc["processes"]))
    for p in doc["processes"]:
        lat = p["latency_ms"]
        assert p["iterations"] > 0 and lat["min"] <= lat["median"] <= lat["p99"] <= lat["max"]
        assert p["window_s"] <= agg["sync_window_s"]


@needs_two
def test_two_pinned_particlenet_children(tmp_path: Path) -> None:
    out = tmp_path / "pnet"
    done = run_cli("scan", "multiproc", "--topology", "0;1", "--pinning", "core", "--model", "particlenet",
                   "-b", "2", "--points", "30", "--svs", "4", "--devices", "3;5", *FAST, "--out", str(out),
                   timeout=180)
    assert done.returncode == 0, done.stderr
    doc = _doc(out)
    _check_common(doc, 2)
    # the affinity each child read from inside itself
    assert [p["affinity"] for p in doc["processes"]] == [[0], [1]]
    assert all(p["pinned"] and p["threads"] == 1 for p in doc["processes"])
    assert len({p["pid"] for p in doc["processes"]}) == 2
    # device visibility as each child saw it (the model runs on the CPU here, so any list is harmless)
    assert [p["env"] for p in doc["processes"]] == [
        {"CUDA_VISIBLE_DEVICES": "3", "HIP_VISIBLE_DEVICES": "3"},
        {"CUDA_VISIBLE_DEVICES": "5", "HIP_VISIBLE_DEVICES": "5"}]
    assert "own" in done.stdout and "effective" in done.stdout and "adjusted" in done.stdout
    import numpy as np

    times = np.load(out / "multiproc_times.npz")
    assert sorted(times.files) == ["T0", "T1"]
    assert times["T0"].size == doc["processes"][0]["iterations"]
    # what a sweep line keeps of this run
    from scans.sweep.sweep import extract_results

    res = extract_results(out)
    assert res["processes"] == 2 and res["batch_size"] == 2
    assert res["items_per_s"] == doc["aggregate"]["effective_items_per_s"]


@pytest.fixture(scope="module")
def mlp_server() -> Iterator[ServerProcess]:
    server = start_server("mlp")
    try:
        yield server
    finally:
        server.stop()


@needs_two
def test_loadgen_workload_against_pytriton(tmp_path: Path, mlp_server: ServerProcess) -> None:
    out = tmp_path / "lg"
    done = run_cli("scan", "multiproc", "--topology", "0;1", "-u", mlp_server.grpc_url,
                   "--model", "mlp", "-b", "4", "--concurrency", "2", "--access-token", mlp_server.token,
                   *FAST, "--out", str(out), timeout=120)
    assert done.returncode == 0, done.stderr
    doc = _doc(out)
    _check_common(doc, 2)
    assert doc["config"]["workload"]["kind"] == "loadgen"
    assert [p["affinity"] for p in doc["processes"]] == [[0], [1]]
    assert all(p["failed"] == 0 and p["in_flight"] == 2 for p in doc["processes"])


def _main(*args: str) -> tuple[int, str]:
    """``saturate ARGS`` in this process (no interpreter start-up); returns the code and stderr."""
    from saturate.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stderr(buf):
        code = main(list(args))
    return code, buf.getvalue().strip()


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    from conftest import free_port

    code, err = _main("scan", "multiproc", "--processes", "1", "-u", f"127.0.0.1:{free_port()}",
                      "--model", "mlp", *FAST, "--out", str(tmp_path / "x"))
    assert code == 2, err
    line = [ln for ln in err.splitlines() if ln.startswith("saturate: error:")]
    assert len(line) == 1 and "child 0" in line[0] and "cannot reach" in line[0]


def _start(out: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "saturate", "scan", "multiproc", "--topology", "0;1", "--model", "mlp",
           "--warmup", "0.2", "--cooldown", "0.1", "--out", str(out), *extra]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _child_pid(proc: subprocess.Popen[str], rank: int, until: str) -> tuple[int, list[str]]:
    """Read the parent's progress lines until ``until``; return child ``rank``'s pid."""
    assert proc.stderr is not None
    lines: list[str] = []
    pid = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if f"started child {rank} (pid " in line:
            pid = int(line.split("(pid ")[1].split(",")[0])
        if until in line:
            break
    assert pid is not None, "".join(lines)
    return pid, lines


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        _, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, rest


@needs_two
def test_child_killed_mid_run_ends_run_naming_it(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    proc = _start(out, "--time", "60", "--barrier-timeout", "15")
    pid, _ = _child_pid(proc, 1, "measuring")
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    code, rest = _finish(proc)
    elapsed = time.monotonic() - t0
    assert code == 1, rest
    assert elapsed < 15, f"took {elapsed:.1f} s, longer than the barrier timeout"
    line = [ln for ln in rest.splitlines() if ln.startswith("saturate: error:")]
    assert len(line) == 1
    assert f"child 1 (pid {pid}, cores 1)" in line[0] and "SIGKILL" in line[0]
    doc = _doc(out)
    assert doc["status"] == "failed" and "child 1" in doc["error"]
    assert doc["children"][1] == {"rank": 1, "pid": pid, "exitcode": -signal.SIGKILL}
    assert doc["children"][0]["exitcode"] is not None  # the other child was ended too


@needs_two
def test_stopped_child_times_out_at_barrier(tmp_path: Path, mlp_server: ServerProcess) -> None:
    out = tmp_path / "stopped"
    proc = _start(out, "-u", mlp_server.grpc_url, "--access-token", mlp_server.token, "--time", "3",
                  "--barrier-timeout", "2")
    pid, _ = _child_pid(proc, 0, "measuring")
    os.kill(pid, signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        code, rest = _finish(proc)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert code == 1, rest
    assert time.monotonic() - t0 < 15
    line = next(ln for ln in rest.splitlines() if ln.startswith("saturate: error:"))
    assert f"child 0 (pid {pid}, cores 0) did not reach the 'measured' barrier" in line


@needs_two
def test_numa_pinning_runs_children_under_numactl(tmp_path: Path, mlp_server: ServerProcess) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "numactl.log"
    stand_in = bindir / "numactl"
    # records its arguments, then runs the command after its options (as numactl does, without the policy)
    stand_in.write_text('#!/bin/sh\necho "$@" >> "$NUMACTL_RECORD"\n'
                        'while [ "${1#--}" != "$1" ]; do shift; done\nexec "$@"\n')
    stand_in.chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", NUMACTL_RECORD=str(record))
    out = tmp_path / "numa"
    done = run_cli("scan", "multiproc", "--topology", "0;1", "--pinning", "numa", "--model", "mlp",
                   "-u", mlp_server.grpc_url, "--access-token", mlp_server.token, *FAST,
                   "--out", str(out), env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    calls = sorted(record.read_text().splitlines())
    assert len(calls) == 2
    assert calls[0].startswith(f"--localalloc --physcpubind=0 {sys.executable} ")
    assert calls[1].startswith(f"--localalloc --physcpubind=1 {sys.executable} ")
    assert all("--multiprocessing-fork" in c for c in calls)
    doc = _doc(out)
    assert [p["affinity"] for p in doc["processes"]] == [[0], [1]]


def test_numa_without_numactl_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, err = _main("scan", "multiproc", "--processes", "1", "--pinning", "numa", "--model", "mlp",
                      "--out", str(tmp_path / "x"))
    assert code == 2
    assert "\n" not in err and "numactl" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("args, match", [
    (("--topology", "0;99"), "names core 99"),
    (("--topology", "0;;1"), "empty core group"),
    (("--processes", "1", "--devices", "0;1"), "2 groups for 1"),
    (("--processes", "1", "--model", "nosuchmodel"), "nosuchmodel"),
])
def test_bad_input_is_one_line(tmp_path: Path, args: tuple[str, ...], match: str) -> None:
    code, err = _main("scan", "multiproc", *args, "--out", str(tmp_path / "x"))
    assert code == 2
    assert "\n" not in err and match in err
