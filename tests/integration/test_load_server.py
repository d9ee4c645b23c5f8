"""`saturate load` against a real PyTriton server on the CPU (model `mlp`; one particlenet check)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, ServerProcess, free_port, run_cli, start_server

pytestmark = pytest.mark.integration

FAST = ("-p", "500", "-s", "60", "-r", "4", "--continue-on-unstable")


@pytest.fixture(scope="module")
def mlp() -> Iterator[ServerProcess]:
    server = start_server("mlp", ["--guard-statistics"])  # the token tests need statistics guarded
    yield server
    server.stop()


def _load(
    server: ServerProcess, *args: str, protocol: str = "grpc", token: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    url = server.grpc_url if protocol == "grpc" else server.http_url
    extra = ("--access-token", server.token) if token else ()
    return run_cli("load", "-m", server.model, "-u", url, "-i", protocol, *extra, *args, timeout=timeout)


def _levels(path: Path) -> list[dict[str, object]]:
    doc = json.loads(path.read_text())
    assert doc["schema"] == "saturate.run/1"
    return list(doc["levels"])


def _check_server_columns(rows: list[dict[str, str]]) -> None:
    for row in rows:
        queue, compute = (
            int(row["Server Queue"]),
            sum(int(row[f"Server Compute {k}"]) for k in ("Input", "Infer", "Output")),
        )
        assert int(row["Server Compute Infer"]) > 0
        assert queue + compute <= int(row["p99 latency"])
        assert float(row["Inferences/Second"]) > 0


@pytest.mark.parametrize(("protocol", "driver"), [
    ("grpc", "auto"), ("grpc", "native"), ("grpc", "native-sync"), ("grpc", "threads"), ("grpc", "asyncio"),
    ("http", "auto"), ("http", "threads"), ("http", "asyncio")])
def test_concurrency_1_to_4(mlp: ServerProcess, protocol: str, driver: str, tmp_path: Path) -> None:
    """Every closed loop (the C loops, blocking sends on threads, coroutines) over both transports;
    auto takes the C sync loop for gRPC (make test builds it; the served MLP batches dynamically) and
    threads for HTTP at c <= 4."""
    out, js = tmp_path / "out.csv", tmp_path / "out.json"
    res = _load(mlp, "--concurrency-range", "1:4", *FAST, "-f", str(out), "--json", str(js),
                "--driver", driver, protocol=protocol)
    assert res.returncode == 0, res.stderr
    doc = json.loads(js.read_text())
    ran = {"auto": "native-sync" if protocol == "grpc" else "threads"}.get(driver, driver)
    assert doc["config"]["driver"] == driver and {lv["client"]["driver"] for lv in doc["levels"]} == {ran}
    # threaded and C-loop gRPC levels go through the native sender, HTTP threads through Python
    sender = None if ran == "asyncio" else ("native" if protocol == "grpc" else "python")
    assert {lv["client"]["sender"] for lv in doc["levels"]} == {sender}
    rows = list(csv.DictReader(out.open()))
    levels = _levels(js)
    assert [lv["concurrency"] for lv in levels] == [1, 2, 3, 4]
    # like perf_analyzer, the CSV holds the levels it would record (a loaded CI core may leave one unstable)
    recorded = [lv["concurrency"] for lv in levels if lv["stability"] in ("stable", "throughput_only")]
    assert sorted(int(r["Concurrency"]) for r in rows) == recorded and len(recorded) >= 2
    _check_server_columns(rows)
    for lv in levels:
        server, lat = lv["server"], lv["latency_us"]
        assert isinstance(server, dict) and isinstance(lat, dict)
        assert server["queue_us"] + server["compute_infer_us"] <= lat["avg"]
        assert server["executions"] > 0 and server["avg_batch"] >= 1
        assert lv["requests"]["failed"] == 0  # type: ignore[index]
        assert 0 < lv["client"]["cpu_us_per_request"] < 20_000  # type: ignore[index]


@pytest.mark.parametrize("sender", ["native", "python"])
def test_both_grpc_senders_count_what_the_server_counts(mlp: ServerProcess, sender: str,
                                                        tmp_path: Path) -> None:
    """`--sender native|python` on threads: the server executed what the client recorded (up to the
    requests in flight at the windows' two edges)."""
    js = tmp_path / "out.json"
    res = _load(mlp, "--concurrency-range", "2", *FAST, "--json", str(js), "--driver", "threads",
                "--sender", sender)
    assert res.returncode == 0, res.stderr
    (lv,) = _levels(js)
    assert lv["client"]["sender"] == sender and lv["requests"]["failed"] == 0  # type: ignore[index]
    completed, executed = lv["requests"]["completed"], lv["server"]["success_count"]  # type: ignore[index]
    assert completed > 0 and abs(executed - completed) <= 2 * 2


@pytest.mark.parametrize(("distribution", "driver", "ran"), [
    ("constant", "auto", "native"), ("poisson", "native", "native"), ("poisson", "asyncio", "asyncio")])
def test_request_rate(mlp: ServerProcess, distribution: str, driver: str, ran: str, tmp_path: Path) -> None:
    """Open loops in C (auto takes it for gRPC) and on the event loop: on schedule, the server executed
    what the client sent and recorded."""
    out, js = tmp_path / "rate.csv", tmp_path / "rate.json"
    res = _load(mlp, "--request-rate-range", "40:80:40", "--request-distribution", distribution, *FAST,
                "-f", str(out), "--json", str(js), "--driver", driver)
    assert res.returncode == 0, res.stderr
    header = out.read_text().splitlines()[0]
    assert header.startswith("Request Rate,Inferences/Second,Client Send,Network+Server Send/Recv")
    levels = _levels(js)
    assert [lv["request_rate"] for lv in levels] == [40.0, 80.0]
    for lv in levels:
        assert lv["client"]["driver"] == ran  # type: ignore[index]
        thr = lv["throughput"]["requests_per_s"]  # type: ignore[index]
        assert 0.6 * lv["request_rate"] < thr < 1.4 * lv["request_rate"]  # type: ignore[operator]
        assert lv["service_latency_us"]["avg"] <= lv["latency_us"]["avg"]  # type: ignore[index]
        requests, server = lv["requests"], lv["server"]
        assert requests["failed"] == requests["dropped"] == 0  # type: ignore[index]
        # up to the requests in flight at the windows' two edges (a few at these rates)
        assert abs(server["success_count"] - requests["completed"]) <= 4  # type: ignore[index]


def test_two_processes_at_a_rate_cap_what_is_in_flight(mlp: ServerProcess, tmp_path: Path) -> None:
    """Two processes share a rate, each its C open loop; --max-outstanding 1 per process at a rate the
    server cannot keep up with one at a time drops the sends due while one is in flight."""
    js = tmp_path / "mp.json"
    res = _load(mlp, "--request-rate-range", "3000", "--processes", "2", "--max-outstanding", "2", *FAST,
                "--json", str(js))
    assert res.returncode == 0, res.stderr
    (lv,) = _levels(js)
    assert lv["client"]["processes"] == 2 and lv["client"]["driver"] == "native"  # type: ignore[index]
    requests = lv["requests"]
    assert requests["completed"] > 0 and requests["dropped"] > 0  # type: ignore[index]
    assert requests["completed"] <= requests["sent"]  # type: ignore[index]


def test_two_processes(mlp: ServerProcess, tmp_path: Path) -> None:
    js = tmp_path / "mp.json"
    res = _load(mlp, "--concurrency-range", "2:4:2", "--processes", "2", *FAST, "--json", str(js))
    assert res.returncode == 0, res.stderr
    levels = _levels(js)
    assert [lv["concurrency"] for lv in levels] == [2, 4]
    for lv in levels:
        assert lv["client"]["processes"] == 2  # type: ignore[index]
        assert lv["requests"]["completed"] > 0  # type: ignore[index]
        assert lv["server"]["executions"] > 0  # type: ignore[index]


@pytest.mark.parametrize(
    "args, needle",
    [
        (("-m", "no_such_model"), "no_such_model"),
        (("--shape", "nope:4"), "nope"),
        (("--input-data", "{bad"), "input-data"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    mlp: ServerProcess, args: tuple[str, ...], needle: str, tmp_path: Path
) -> None:
    if args[0] == "--input-data":
        bad = tmp_path / "bad.json"
        bad.write_text("{not json")
        args = ("--input-data", str(bad))
    res = run_cli("load", "-m", mlp.model, "-u", mlp.grpc_url, "--access-token", mlp.token, *args, *FAST)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and needle in lines[0], res.stderr


def test_wrong_rank_is_one_line_exit_2(mlp: ServerProcess) -> None:
    res = run_cli(
        "load", "-m", mlp.model, "-u", mlp.grpc_url, "--access-token", mlp.token, "--shape", "input:1,2,3,4,5"
    )
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "rank 5" in lines[0], res.stderr


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_missing_or_wrong_token(mlp: ServerProcess, token: str | None) -> None:
    extra = ("--access-token", token) if token else ()
    res = run_cli("load", "-m", mlp.model, "-u", mlp.grpc_url, *extra, *FAST)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "access" in lines[0] and "token" in lines[0], (
        res.stderr
    )


def test_unreachable_url() -> None:
    res = run_cli("load", "-m", "mlp", "-u", f"127.0.0.1:{free_port()}", "-i", "http")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "cannot reach" in lines[0], res.stderr


def test_server_stopped_mid_level(tmp_path: Path) -> None:
    """Level 1 completes; the server is stopped during level 2: level 2 is flagged, level 1 stays intact."""
    server = start_server("mlp")
    out, js = tmp_path / "dead.csv", tmp_path / "dead.json"
    cmd = [sys.executable, "-m", "saturate", "load", "-m", "mlp", "-u", server.grpc_url, "--access-token",
           server.token, "--concurrency-range", "1:2", "-p", "700", "-s", "1000", "-r", "20", "-f", str(out),
           "--json", str(js)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (js.exists() and len(_levels(js)) >= 1):
            time.sleep(0.1)
        time.sleep(1.0)  # into level 2's windows
        server.stop()
        _stdout, stderr = proc.communicate(timeout=120)
    finally:
        server.stop()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr
    assert "stopped answering" in stderr
    levels = _levels(js)
    assert len(levels) == 2 and levels[0]["stable"] is True and levels[1]["stable"] is False
    assert levels[1]["stability"] == "interrupted"
    assert any("stopped answering" in r for r in levels[1]["verdict"]["reasons"])  # type: ignore[index]
    assert levels[1]["requests"]["completed"] > 0  # type: ignore[index]
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 1 and rows[0]["Concurrency"] == "1" and float(rows[0]["Inferences/Second"]) > 0


@pytest.mark.parametrize("go_on", [False, True])
def test_unstable_level_stops_the_sweep_unless_told(mlp: ServerProcess, go_on: bool, tmp_path: Path) -> None:
    """-s 0.001 never holds: the first level is unstable after -r windows; the sweep stops (exit 1)."""
    js = tmp_path / "u.json"
    extra = ["--continue-on-unstable"] if go_on else []
    res = run_cli("load", "-m", "mlp", "-u", mlp.grpc_url, "--access-token", mlp.token, "--concurrency-range",
                  "1:2", "-p", "300", "-s", "0.001", "-r", "3", "--json", str(js), *extra)  # fmt: skip
    levels = _levels(js)
    assert [lv["stability"] for lv in levels] == ["unstable"] * (2 if go_on else 1)
    assert res.returncode == (0 if go_on else 1), res.stderr  # flagged, not a usage error
    assert "Failed to obtain stable measurement within 3 measurement windows" in res.stdout + res.stderr


def test_particlenet_with_shapes(tmp_path: Path) -> None:
    server = start_server("particlenet")
    try:
        js = tmp_path / "pn.json"
        shapes = [
            a
            for n, d in (
                ("pf_points", "2,20"),
                ("pf_features", "20,20"),
                ("pf_mask", "1,20"),
                ("sv_points", "2,4"),
                ("sv_features", "11,4"),
                ("sv_mask", "1,4"),
            )
            for a in ("--shape", f"{n}:{d}")
        ]
        res = _load(server, *shapes, "-b", "2", *FAST, "--json", str(js))
        assert res.returncode == 0, res.stderr
        (level,) = _levels(js)
        assert level["batch_size"] == 2 and level["requests"]["completed"] > 0  # type: ignore[index]
        missing = _load(server, *FAST)
        assert missing.returncode == 2 and "--shape pf_points:2,N" in missing.stderr, missing.stderr
    finally:
        server.stop()
