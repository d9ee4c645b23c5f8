"""The client-cost features of `saturate load` against the real null KServe v2 gRPC server:
the event-loop choice, the client's own share of latency per level, `--processes auto`, and what a
plain gRPC run imports at start-up."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, free_port

from loadgen import autoproc, eventloop, runner, verdict
from loadgen.cli import config_from_args
from loadgen.config import LoadConfig, Range
from loadgen.level import build_level
from loadgen.result import ClientStats, LevelResult, WindowStats
from loadgen.stability import LevelContext, StabilityRule
from loadgen.windows import window_summary
from saturate.errors import ConfigError

sys.path.insert(0, str(REPO / "benchmarks"))
import null_kserve


@pytest.fixture(scope="module")
def null_server() -> Iterator[str]:
    port = free_port()
    proc: subprocess.Popen[str] = null_kserve.start(port)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def _args(*flags: str) -> LoadConfig:
    import argparse

    from loadgen.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return config_from_args(parser.parse_args(["load", "-m", "null", *flags]))


def test_flags_processes_auto_and_event_loop() -> None:
    cfg = _args("--processes", "auto", "--concurrency-range", "1:8")
    assert cfg.processes == 1 and cfg.processes_auto and cfg.event_loop == "uvloop"
    assert cfg.to_dict()["processes_auto"] is True and cfg.to_dict()["event_loop"] == "uvloop"
    assert _args("--processes", "2", "--concurrency-range", "2").processes == 2
    assert _args("--event-loop", "asyncio").event_loop == "asyncio"
    with pytest.raises(ConfigError, match="--processes takes a number or auto"):
        _args("--processes", "many")
    with pytest.raises(ConfigError, match="--event-loop"):
        LoadConfig(model="m", event_loop="trio")
    assert eventloop.available("asyncio") and eventloop.available("uvloop")
    assert eventloop.run(asyncio.sleep(0, "x"), "asyncio") == "x"


def _level(cpu_ns: int, concurrency: int, processes: int = 1) -> LevelResult:
    import numpy as np

    w = WindowStats(start_ns=0, end_ns=1_000_000_000, latencies_ns=np.full(1000, 500_000, np.int64),
                    cpu_ns=cpu_ns, loop_lag_ns_total=3_000, loop_lag_samples=3)
    rule = StabilityRule()
    windows = [w, w, w]
    return build_level(windows, [window_summary(x, 1) for x in windows],
                       LevelContext(rule, "concurrency", concurrency, 1, processes))


def test_more_processes_follows_the_client_verdict() -> None:
    busy, idle = _level(950_000_000, 8), _level(100_000_000, 8)
    assert busy.verdict.saturated == "client" and idle.verdict.saturated == "none"
    assert autoproc.more_processes(busy, 1, 4) == 2
    assert autoproc.more_processes(busy, 4, 4) is None  # no more cores
    assert autoproc.more_processes(idle, 1, 4) is None
    assert autoproc.more_processes(_level(950_000_000, 1), 1, 4) is None
    assert "again with 2" in autoproc.step_message(busy, 1, 2)
    # the client's share: CPU per request (950 us) + loop wait (1 us), capped at the request time (500 us)
    c = busy.client
    assert c.loop_lag_ns == 1000 and c.own_latency_ns == 500_000
    assert idle.client.own_latency_ns == pytest.approx(100_000 + 1000)
    back = ClientStats.from_dict(idle.client.to_dict())
    assert back.loop_lag_ns == pytest.approx(1000)


def test_own_share_is_measured_and_reported(null_server: str, tmp_path: Path) -> None:
    js = tmp_path / "run.json"
    out = subprocess.run(
        [sys.executable, "-m", "saturate", "load", "-m", "null", "-u", null_server,
         "--concurrency-range", "2", "-p", "300", "-s", "1000", "-r", "3", "--json", str(js)],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Client's own share of latency:" in out.stdout
    level = json.loads(js.read_text())["levels"][0]
    client = level["client"]
    assert client["loop_lag_us"] is not None and client["loop_lag_us"] >= 0
    assert 0 < client["own_latency_us"] <= client["request_us"] + 1
    assert json.loads(js.read_text())["config"]["event_loop"] == "uvloop"


def test_processes_auto_adds_a_process_when_the_client_limits(
        null_server: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # every level counts as client-bound (threshold 0), so auto must step 1 -> 2 and stop at 2 cores
    monkeypatch.setattr(verdict, "CLIENT_CPU", 0.0)  # loadgen/verdict.py: the one threshold
    monkeypatch.setattr(autoproc, "usable_cores", lambda: 2)
    cfg = LoadConfig(model="null", url=null_server, concurrency_range=Range(2, 2, 1),
                     measurement_interval_ms=300, stability_percentage=1000, max_trials=3,
                     processes_auto=True, event_loop="asyncio")

    async def go() -> list[int]:
        async with runner.LoadSession(cfg) as session:
            code = await runner._sweep(cfg, session, runner.RunWriter(cfg, session.stats_available))
            assert code == 0 and session.processes == 2
            first = await session.measure(2)
            return [first.client.processes]

    assert asyncio.run(go()) == [2]
    err = capsys.readouterr().err
    assert "--processes auto: starting with 1 process" in err
    assert "the client limited concurrency 2 with 1 process; measuring it again with 2" in err


def test_report_point_carries_the_client_share() -> None:
    from scans.report.readers import server_point

    point = server_point(_level(100_000_000, 8))
    assert point.client_own_us == pytest.approx(101.0)


def test_one_rule_for_the_load_and_the_scan_verdict() -> None:
    """loadgen/verdict.py decides for build_level and, with the monitor's usage, for the scans: a client
    at 85 % of a core is the limit for both (the old loadgen default of 90 % said `none` there)."""
    from loadgen.verdict import CLIENT_CPU, Usage, decide

    assert CLIENT_CPU == 0.8
    at85 = _level(850_000_000, 8)
    assert at85.verdict.saturated == "client" and decide(at85).saturated == "client"
    assert decide(at85, Usage(gpu_util_pct=99.0)).saturated == "client"  # the client still comes first
    calm = _level(300_000_000, 8)
    assert calm.verdict.saturated == "none"
    assert decide(calm, Usage(gpu_util_pct=95.0)).saturated == "gpu"  # the monitor's evidence, same rule


def test_a_grpc_load_run_does_not_import_what_only_other_runs_use() -> None:
    """Start-up counts in the whole-process client CPU a run reports (and benchmarks/vs_perf_analyzer.py
    compares): scipy (--repeats), aiohttp and tritonclient.http (-i http, --collect-metrics) stay out of a
    plain gRPC run, and rich out of a --quiet one; an HTTP client still brings its own."""
    probe = ("import sys; from saturate.cli import main; import loadgen.runner, loadgen.clients as c; "
             "from loadgen.live import LiveView; v = LiveView(quiet=True); v.__enter__(); v.__exit__(); "
             "heavy = [m for m in ('scipy', 'aiohttp', 'tritonclient.http', 'rich') if m in sys.modules]; "
             "assert not heavy, heavy; c.make_client('http', '127.0.0.1:1', None); "
             "assert 'aiohttp' in sys.modules and c.HttpClient.__name__ == 'HttpClient'")
    res = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
