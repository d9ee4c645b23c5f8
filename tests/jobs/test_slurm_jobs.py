"""The Slurm templates run by a real single-node Slurm (tests/setup_slurm.sh: Debian slurm-wlm and
munge, no systemd, loopback): (a) server + monitor + scan in one job, and scancel in its middle;
(b) a server job and a client job meeting through the rendezvous file; (c) two srun ranks sharing
the concurrency from one start time, merged by ``saturate merge``. Each leaves a complete result
directory. Needs root (to install and start Slurm); skipped with the reason otherwise."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import REPO, ServerProcess, start_server
from pa_binary import perf_analyzer

from loadgen.result import RunResult

pytestmark = pytest.mark.integration
SETUP = REPO / "tests" / "setup_slurm.sh"
FAST = ["-P", "partition=debug", "-P", "time=00:05:00", "-P", "model=mlp", "-P", "measurement_interval=500",
        "-P", "max_trials=4", "-P", "stability=60", "-P", "ready_timeout=120"]


@pytest.fixture(scope="module")
def slurm() -> Iterator[None]:
    """Slurm up for this module; stopped at the end only if this fixture started it."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("the Slurm job tests need root and apt-get to install and start slurm-wlm and munge")
    proc = subprocess.run(["bash", str(SETUP), "up"], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"setup_slurm.sh up failed:\n{proc.stderr[-2000:]}")
    started = "STARTED=1" in proc.stdout
    yield
    if started:
        subprocess.run(["bash", str(SETUP), "down"], capture_output=True, timeout=120)


def saturate(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "saturate", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def submit(template: str, out: Path, *params: str, wait: bool = False) -> list[str]:
    flags = ["--wait"] if wait else []
    proc = saturate("job", "submit", template, *FAST, "-P", f"out={out}", *params, *flags)
    assert proc.returncode == 0, proc.stderr + _logs(out)
    return [line.split()[1] for line in proc.stdout.splitlines()]


def _logs(out: Path) -> str:
    return "".join(f"\n--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                   for p in sorted(out.glob("*.out")) + sorted(out.glob("*.log")))


def job_gone(job_id: str) -> bool:
    proc = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    return proc.stdout.strip() in ("", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT")


def wait_for(cond: Callable[[], bool], timeout: float, what: str, out: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}{_logs(out)}")


def port_closed(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def ports(out: Path) -> tuple[int, int, int]:
    for log in out.glob("slurm*.out"):
        for text in log.read_text().splitlines():
            if "starting server on ports" in text:
                a, b, c = text.rsplit(" ", 1)[1].split("/")
                return int(a), int(b), int(c)
    raise AssertionError("no port line in the job output" + _logs(out))


def levels(path: Path) -> list[dict[str, object]]:
    doc = json.loads(path.read_text())
    RunResult.from_dict(doc)  # a complete, valid run document
    lv: list[dict[str, object]] = doc["levels"]
    return lv


def test_a_one_job_server_monitor_scan(slurm: None, tmp_path: Path) -> None:
    out = tmp_path / "a"
    (job,) = submit("a", out, "-P", "concurrency=1:2:1", "-P", "batch_sizes=1,2", "-P", "cpus=2",
                    "-P", "stability=1000")  # exactly 3 windows a level: stable on a loaded CI core too
    wait_for(lambda: job_gone(job), 60, "the job to end", out)
    assert (out / "status").read_text().strip() == "done", _logs(out)
    for b in (1, 2):
        lv = levels(out / f"scan_b{b}.json")
        assert [x["concurrency"] for x in lv] == [1, 2] and all(x["batch_size"] == b for x in lv)
        assert len((out / f"scan_b{b}.csv").read_text().splitlines()) == 3
    assert (out / "scan.exits").read_text().split("\n")[:2] == ["batch 1 exit 0", "batch 2 exit 0"]
    assert len((out / "monitor.csv").read_text().splitlines()) > 2
    assert "saturate serve: ready" in (out / "server.log").read_text()
    assert (out / "server.stopped").exists() and (out / "job-scan.sbatch").exists()
    assert all(port_closed(p) for p in ports(out))


def test_a_scancel_midway_stops_the_server_and_keeps_levels(slurm: None, tmp_path: Path) -> None:
    out = tmp_path / "cancel"
    (job,) = submit("a", out, "-P", "concurrency=1:12:1", "-P", "batch_sizes=1", "-P", "cpus=2",
                    "-P", "stability=1000")
    result = out / "scan_b1.json"
    wait_for(lambda: result.exists() and len(levels(result)) >= 2, 180, "two levels done", out)
    http, grpc, metrics = ports(out)
    assert not port_closed(grpc)
    subprocess.run(["scancel", job], check=True)
    wait_for(lambda: job_gone(job), 60, "the cancelled job to end", out)
    wait_for(lambda: all(port_closed(p) for p in (http, grpc, metrics)), 30, "ports closed", out)
    assert (out / "status").read_text().strip() == "cancelled"
    assert (out / "server.stopped").exists(), _logs(out)
    done = levels(result)
    assert 2 <= len(done) < 12
    assert [x["concurrency"] for x in done] == list(range(1, len(done) + 1))
    # the level scancel cut short is kept, flagged interrupted (issue 14); every one before it is whole
    assert all(x["stable"] for x in done[:-1])
    assert done[-1]["stable"] or done[-1]["stability"] == "interrupted", done[-1]
    ps = subprocess.run(["pgrep", "-f", "--", f"grpc-port {grpc}"], capture_output=True, text=True)
    assert ps.stdout.strip() == "", "a server process outlived the job"


def test_b_server_and_client_jobs_meet_by_rendezvous(slurm: None, tmp_path: Path) -> None:
    out = tmp_path / "b"
    server, client = submit("b", out, "-P", "concurrency=1:2:1", "-P", "bind=127.0.0.1",
                            "-P", "host=127.0.0.1", "-P", "rendezvous_timeout=240", wait=True)
    wait_for(lambda: job_gone(server) and job_gone(client), 90, "both jobs to end", out)
    assert (out / "status").exists()
    lv = levels(out / "scan_b1.json")
    assert [x["concurrency"] for x in lv] == [1, 2]
    assert (out / "rendezvous.env.done").exists() and not (out / "rendezvous.env").exists()
    assert (out / "server.stopped").exists() and (out / "monitor.csv").exists()
    assert "serving at 127.0.0.1:" in (out / f"slurm-server-{server}.out").read_text()


def test_c_two_ranks_one_start_time_merged(slurm: None, tmp_path: Path,
                                           server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory("mlp")
    out = tmp_path / "c"
    out.mkdir()
    (out / "rendezvous.env").write_text(
        f"HOST=127.0.0.1\nHTTP_PORT={srv.http_port}\nGRPC_PORT={srv.grpc_port}\n"
        f"METRICS_PORT={srv.metrics_port}\nTOKEN={srv.token}\nSERVER_JOB=test\n")
    (job,) = submit("c", out, "-P", "ranks=2", "-P", "concurrency=2:4:2", "-P", "start_delay=30",
                    "-P", "level_period=25", "-P", "finish_server=0",
                    "-P", "stability=1000", wait=True)  # every rank: exactly 3 windows, aligned
    wait_for(lambda: job_gone(job), 60, "the job to end", out)
    assert (out / "status").read_text().strip() == "done", _logs(out)
    merged = RunResult.read(out / "merged_b1.json")
    assert [lv.concurrency for lv in merged.levels] == [2, 4]
    for i, lv in enumerate(merged.levels):
        ranks = [RunResult.read(out / f"rank{r}" / "b1" / f"level{i}.json").levels[0] for r in (0, 1)]
        assert [r.concurrency for r in ranks] == [lv.concurrency // 2] * 2  # type: ignore[operator]
        assert lv.requests is not None
        assert lv.requests.completed == sum(r.requests.completed for r in ranks if r.requests)
        assert lv.throughput.infer_per_s == pytest.approx(sum(r.throughput.infer_per_s for r in ranks))
        assert lv.latency.count == lv.requests.completed
    logs = [(out / f"rank{r}.log").read_text() for r in (0, 1)]
    assert all(text.count("for the agreed start time") == 2 for text in logs), logs  # both levels waited
    assert not any("measured together" in r for lv in merged.levels for r in lv.verdict.reasons)


def test_client_template_with_the_perf_analyzer_engine(tmp_path: Path) -> None:
    """The client job script run by bash directly (no Slurm needed): rendezvous with a real MLP server
    whose statistics need the token, then ``saturate pa`` per batch size with the real perf_analyzer."""
    out = tmp_path / "pa"
    out.mkdir()
    srv = start_server("mlp", ["--guard-statistics"])
    try:
        (out / "rendezvous.env").write_text(
            f"HOST=127.0.0.1\nHTTP_PORT={srv.http_port}\nGRPC_PORT={srv.grpc_port}\n"
            f"METRICS_PORT={srv.metrics_port}\nTOKEN={srv.token}\n")
        script = tmp_path / "client.sbatch"
        proc = saturate("job", "render", "client", *FAST, "-P", f"out={out}", "-P", "engine=perf_analyzer",
                        "-P", "batch_sizes=4", "-P", "concurrency=1:2",
                        "-P", "stability=1000",  # any 3 windows: CI once saw perf_analyzer miss -s 60 at c=2
                        "-o", str(script))
        assert proc.returncode == 0, proc.stderr
        pa_dir = str(Path(perf_analyzer()).parent)
        env = {**os.environ, "PATH": f"{pa_dir}{os.pathsep}{os.environ['PATH']}"}
        run = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=300, env=env)
    finally:
        srv.stop()
    assert run.returncode == 0, run.stderr + _logs(out)
    lvs = levels(out / "scan_b4.json")
    assert [lv["concurrency"] for lv in lvs] == [1, 2]
    assert all(lv["server"] for lv in lvs), _logs(out)  # the gRPC token header opened the statistics
    console = (out / "pa_b4" / "pa_console.txt").read_text()
    assert "triton-grpc-protocol-triton-access-token:***" in console and srv.token not in console
    assert (out / "status").read_text().strip() == "done" and (out / "rendezvous.env.done").exists()
