"""``ServerScan`` behind the ``engine=`` seam with :class:`~scans.engines.FakeEngine`: resume, failed
levels and interrupts of the server scan in seconds, no server (the pre-flight is a no-op too)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from loadgen.config import LoadConfig
from loadgen.result import (
    ClientStats,
    LatencySummary,
    LevelResult,
    RequestCounts,
    RunResult,
    Throughput,
    Verdict,
)
from saturate.errors import ConfigError, ServerError
from scans.engines import FakeEngine
from scans.server import scanio
from scans.server.server_scan import ScanConfig, ServerScan

GRID = ["c1_b1", "c2_b1", "c1_b4", "c2_b4"]


async def no_preflight(_load: LoadConfig, _batches: tuple[int, ...]) -> None:
    return None


def measured(cfg: LoadConfig, value: float) -> LevelResult:
    """A stable level whose throughput says which (batch, concurrency) it was: 100·b·c infer/s."""
    c, b = int(value), cfg.batch_size
    ips = 100.0 * b * c
    return LevelResult(
        mode="concurrency", concurrency=c, request_rate=None, batch_size=b, stable=True, stability="stable",
        throughput=Throughput(infer_per_s=ips, requests_per_s=ips / b),
        latency=LatencySummary(percentiles_ns={50: 1_000_000 * c, 90: 2_000_000 * c, 95: 3_000_000 * c,
                                              99: 4_000_000 * c}, avg_ns=1_500_000 * c),
        client=ClientStats(send_ns=1000, recv_ns=1000, cpu_util=0.1),
        requests=RequestCounts(completed=100), verdict=Verdict(valid=True),
    )


def config(out: Path, *, resume: bool = False) -> ScanConfig:
    return ScanConfig(out=out, load=LoadConfig(model="mlp", url="127.0.0.1:1"), concurrencies=(1, 2),
                      batch_sizes=(1, 4), monitor=False, resume=resume)


def scan(out: Path, engine: FakeEngine, *, resume: bool = False) -> int:
    return ServerScan(config(out, resume=resume), engine=engine, preflight=no_preflight).run()


def levels(out: Path) -> dict[str, LevelResult]:
    run = RunResult.read(out / scanio.JSON_NAME)
    return {scanio.name_of(lv): lv for lv in run.levels}


def test_every_level_through_the_engine_in_grid_order(tmp_path: Path) -> None:
    engine = FakeEngine(measured)
    assert scan(tmp_path, engine) == 0
    assert engine.calls == [(1, 1), (1, 2), (4, 1), (4, 2)]
    assert engine.closed >= 1
    got = levels(tmp_path)
    assert list(got) == GRID
    assert got["c2_b4"].throughput.infer_per_s == 800.0
    assert {"b1.csv", "b4.csv"} <= {p.name for p in tmp_path.glob("b*.csv")}


def test_a_failed_level_is_flagged_the_scan_goes_on_and_exits_1(tmp_path: Path) -> None:
    def respond(cfg: LoadConfig, value: float) -> LevelResult:
        if (cfg.batch_size, int(value)) == (1, 2):
            raise ServerError("the server at 127.0.0.1:1 went away")
        if (cfg.batch_size, int(value)) == (4, 1):
            raise RuntimeError("a bug in the engine")
        return measured(cfg, value)

    engine = FakeEngine(respond)
    assert scan(tmp_path, engine) == 1
    assert len(engine.calls) == 4  # neither failure ended the scan
    got = levels(tmp_path)
    assert list(got) == GRID
    assert got["c2_b1"].stability == "interrupted" and got["c2_b1"].throughput.infer_per_s == 0.0
    assert any("went away" in r for r in got["c2_b1"].verdict.reasons)
    assert any("RuntimeError: a bug in the engine" in r for r in got["c1_b4"].verdict.reasons)
    assert got["c1_b1"].stable and got["c2_b4"].stable
    assert engine.closed >= 2  # an unexpected error closes the engine (it may be broken), then the end
    assert "Traceback" in (tmp_path / scanio.LOG_NAME).read_text()


def test_a_scan_with_no_valid_level_exits_1_one_valid_level_is_enough(tmp_path: Path) -> None:
    import dataclasses

    def unstable(cfg: LoadConfig, value: float) -> LevelResult:
        return dataclasses.replace(measured(cfg, value), stable=False, stability="unstable",
                                   verdict=Verdict(valid=False, reasons=["Failed to obtain stable ..."]))

    assert scan(tmp_path / "none", FakeEngine(unstable)) == 1
    assert "no level is valid" in (tmp_path / "none" / scanio.LOG_NAME).read_text()
    assert len(levels(tmp_path / "none")) == 4  # every level kept, flagged

    def one(cfg: LoadConfig, value: float) -> LevelResult:
        return measured(cfg, value) if (cfg.batch_size, int(value)) == (1, 1) else unstable(cfg, value)

    assert scan(tmp_path / "one", FakeEngine(one)) == 0


def test_resume_measures_only_the_failed_and_missing_levels(tmp_path: Path) -> None:
    def flaky(cfg: LoadConfig, value: float) -> LevelResult:
        if (cfg.batch_size, int(value)) == (4, 1):
            raise ServerError("timed out")
        return measured(cfg, value)

    assert scan(tmp_path, FakeEngine(flaky)) == 1
    again = FakeEngine(measured)
    assert scan(tmp_path, again, resume=True) == 0
    assert again.calls == [(4, 1)]
    got = levels(tmp_path)
    assert list(got) == GRID and all(lv.stable for lv in got.values())
    assert got["c1_b4"].throughput.infer_per_s == 400.0


def test_without_resume_an_existing_result_is_refused(tmp_path: Path) -> None:
    assert scan(tmp_path, FakeEngine(measured)) == 0
    before = (tmp_path / scanio.JSON_NAME).read_text()
    engine = FakeEngine(measured)
    with pytest.raises(ConfigError, match="pass --resume"):
        scan(tmp_path, engine)
    assert engine.calls == [] and (tmp_path / scanio.JSON_NAME).read_text() == before


def test_sigint_keeps_the_levels_done_and_resume_finishes_the_grid(tmp_path: Path) -> None:
    def interrupt_third(cfg: LoadConfig, value: float) -> LevelResult:
        if (cfg.batch_size, int(value)) == (4, 1):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the level is being measured
        return measured(cfg, value)

    engine = FakeEngine(interrupt_third, latency_s=0.2)
    assert scan(tmp_path, engine) == 128 + signal.SIGINT
    assert engine.calls == [(1, 1), (1, 2), (4, 1)]
    assert list(levels(tmp_path)) == ["c1_b1", "c2_b1"]  # the interrupted level is not recorded
    assert json.loads((tmp_path / scanio.JSON_NAME).read_text())["levels"]
    assert "rerun with --resume" in (tmp_path / scanio.LOG_NAME).read_text()

    rest = FakeEngine(measured)
    assert scan(tmp_path, rest, resume=True) == 0
    assert rest.calls == [(4, 1), (4, 2)]
    assert list(levels(tmp_path)) == GRID
