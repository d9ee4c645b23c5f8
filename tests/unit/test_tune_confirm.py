"""saturate tune's confirmation stage: the summary of the runs (median/min/max, the budget), the gain
from confirmed figures, what the summary and table print, and the stage itself with a fake engine
(recorded after every run, kept by --resume, redone when unfinished, a failing server recorded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from loadgen.config import LoadConfig, Range
from loadgen.result import ClientStats, LatencySummary, LevelResult, Throughput
from saturate.cli import main
from scans.tune import confirm, output
from scans.tune.runner import TuneConfig, Tuner
from scans.tune.search import SearchRule
from scans.tune.space import TuneSpace
from scans.tune.validity import TailRule


def run(tp: float, tail: float | None, valid: bool = True) -> dict[str, Any]:
    return {"batch": 1, "concurrency": 8, "throughput": tp, "tail_ms": tail, "tail_valid": valid}


def test_summary_is_median_min_max_and_judges_the_median_tail() -> None:
    s = confirm.summarize([run(1900, 9), run(1500, 12), run(2100, 30)], 20.0, requested=3,
                          search_throughput=2229.0)  # fmt: skip
    assert (s["throughput_median"], s["throughput_min"], s["throughput_max"]) == (1900, 1500, 2100)
    assert s["tail_ms_median"] == 12 and s["tail_ms_max"] == 30 and s["within_budget"] is True
    assert s["runs"] == 3 and s["requested"] == 3 and s["tail_valid"] is True
    assert s["vs_search"] == pytest.approx(1900 / 2229 - 1)
    over = confirm.summarize([run(100, 25), run(120, 21, valid=False)], 20.0, requested=2,
                             search_throughput=None)  # fmt: skip
    assert over["throughput_median"] == 110 and over["tail_ms_median"] == 23
    assert over["within_budget"] is False and over["tail_valid"] is False and over["vs_search"] is None
    empty = confirm.summarize([], 20.0, requested=3, search_throughput=100.0)
    assert empty["throughput_median"] is None and empty["within_budget"] is None and empty["runs"] == 0


def cand(name: str, instances: int, delay: int) -> dict[str, Any]:
    return {"name": name, "instances": instances, "max_batch": 64, "max_queue_delay_us": delay,
            "preferred_batch": []}  # fmt: skip


def record(name: str, instances: int, delay: int, tp: float, conc: int) -> dict[str, Any]:
    best = {"batch": 1, "concurrency": conc, "throughput": tp, "tail_ms": 5.0, "samples": 900}
    return {"candidate": cand(name, instances, delay), "status": "measured", "reason": None,
            "levels": [{**best, "tail_valid": True}], "best": best}  # fmt: skip


def confirmation(rec: dict[str, Any], tps: list[float], tail: float = 6.0, status: str = "done",
                 budget: float = 20.0) -> None:  # fmt: skip
    runs = [run(tp, tail) for tp in tps]
    rec["confirmation"] = {
        "status": status, "reason": None, "batch": rec["best"]["batch"],
        "concurrency": rec["best"]["concurrency"], "requested": 3, "runs": runs,
        "summary": confirm.summarize(runs, budget, requested=3, search_throughput=rec["best"]["throughput"]),
    }  # fmt: skip


def doc_of(*recs: dict[str, Any]) -> dict[str, Any]:
    return {"config": {"model": "mlp", "backend": "torch", "device": "cpu", "latency_budget_ms": 20.0,
                       "tail": {"percentile": 95}, "load": {"measurement_interval_ms": 500}},
            "candidates": list(recs)}  # fmt: skip


def test_gain_uses_confirmed_medians_only_when_both_sides_are_confirmed() -> None:
    base, win = record("i1_mb64_d0_pnone", 1, 0, 100.0, 4), record("i2_mb64_d500_pnone", 2, 500, 200.0, 8)
    assert confirm.gain(win, base) == (2.0, "search")
    confirmation(win, [150, 160, 170])
    assert confirm.gain(win, base) == (2.0, "search")  # defaults unconfirmed: both from the search
    confirmation(base, [90, 80, 100])
    assert confirm.gain(win, base) == (pytest.approx(160 / 90), "confirmed")
    base["confirmation"]["status"] = "failed"
    assert confirm.gain(win, base)[1] == "search"
    assert confirm.gain(None, base) == (None, None) and confirm.gain(win, None) == (None, None)


def test_a_confirmation_of_another_point_or_run_count_does_not_count() -> None:
    rec = record("i1_mb64_d0_pnone", 1, 0, 100.0, 4)
    confirmation(rec, [90, 95, 100])
    assert confirm.is_done(rec, 3) and not confirm.is_done(rec, 5)
    assert confirm.confirmed(rec) is not None
    rec["best"] = {**rec["best"], "concurrency": 8}  # the best point moved: the old confirmation is stale
    assert not confirm.is_done(rec, 3) and confirm.confirmed(rec) is None


def test_summary_and_table_show_confirmed_figures_and_flag_a_broken_budget() -> None:
    base, win = record("i1_mb64_d0_pnone", 1, 0, 100.0, 4), record("i2_mb64_d500_pnone", 2, 500, 200.0, 8)
    confirmation(win, [150, 160, 170])
    confirmation(base, [90, 80, 100])
    doc = doc_of(base, win)
    doc["gain_over_defaults"], doc["gain_basis"] = confirm.gain(win, base)
    text = output.summary_text(doc)
    assert "winner: i2_mb64_d500_pnone: 200.0 infer/s" in text
    assert "median 160.0 infer/s (min 150.0, max 170.0), p95 median 6.00 ms, -20.0 % vs the search" in text
    assert "x1.78, from the confirmed medians" in text and "FLAGGED" not in text
    rows = output.ranked_table(doc)
    assert rows[0][-2:] == ["confirmed infer/s [min-max]", "confirmed p95 ms"]
    assert rows[1][-2:] == ["160.0 [150.0-170.0]", "6.00"] and rows[2][-2:] == ["90.0 [80.0-100.0]", "6.00"]
    confirmation(win, [150, 160, 170], tail=25.0)
    text = output.summary_text(doc)
    assert "FLAGGED: the confirmed p95 median 25.00 ms breaks the 20 ms budget" in text
    assert output.ranked_table(doc)[1][-1] == "25.00 (over budget)"
    win["confirmation"].update(status="failed", reason="server exited (code -9)", runs=[],
                               summary=confirm.summarize([], 20, requested=3, search_throughput=200))
    doc["gain_over_defaults"], doc["gain_basis"] = confirm.gain(win, base)
    text = output.summary_text(doc)
    assert "confirmation failed (server exited (code -9)): the search's figures above are unconfirmed" in text
    assert "x2.00, from the search's figures" in text


# -- the stage, with a fake engine against a -u tune (no server to start) -------------------------------
class FakeEngine:
    tps: ClassVar[list[float]] = []
    fail_at: ClassVar[int | None] = None
    calls: ClassVar[int] = 0

    async def measure(self, cfg: LoadConfig, value: float) -> LevelResult:
        FakeEngine.calls += 1
        if FakeEngine.fail_at is not None and FakeEngine.calls >= FakeEngine.fail_at:
            raise ConnectionError("connection refused")
        lat = LatencySummary(percentiles_ns={95: 7_000_000}, min_ns=500_000, count=5000)
        return LevelResult(mode="concurrency", concurrency=int(value), request_rate=None,
                           batch_size=cfg.batch_size, stable=True,
                           throughput=Throughput(infer_per_s=FakeEngine.tps[FakeEngine.calls - 1]),
                           latency=lat, client=ClientStats(0, 0))  # fmt: skip

    async def close(self) -> None:
        pass


def tuner(out: Path, runs: int) -> Tuner:
    load = LoadConfig(model="mlp", url="127.0.0.1:1", concurrency_range=Range(1, 1, 1))
    cfg = TuneConfig(out=out, load=load, space=TuneSpace(batch_sizes=(1,), external=True),
                     rule=SearchRule(budget_ms=20.0), tail=TailRule(), confirm_runs=runs)  # fmt: skip
    t = Tuner(cfg, say=lambda s: None)
    t.doc = {**doc_of(), "format": output.FORMAT, "config": cfg.to_dict()}
    rec = record("external", 1, 0, 500.0, 8)
    rec["candidate"]["external"] = True
    t.doc["candidates"] = [rec]
    out.mkdir()
    return t


def test_stage_records_every_run_and_resume_keeps_or_redoes_it(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(confirm, "LoadgenEngine", FakeEngine)
    FakeEngine.tps, FakeEngine.calls, FakeEngine.fail_at = [400.0, 450.0, 420.0], 0, None
    t = tuner(tmp_path / "t", 3)
    confirm.Stage(t).run()
    doc = json.loads((tmp_path / "t" / "tune.json").read_text())
    c = doc["winner"]["confirmed"]
    assert c["status"] == "done" and c["runs"] == 3 and c["throughput_median"] == 420.0
    assert (c["throughput_min"], c["throughput_max"], c["tail_ms_median"]) == (400.0, 450.0, 7.0)
    assert c["within_budget"] is True and doc["winner"]["throughput"] == 500.0  # the search's figure stays
    assert doc["gain_basis"] == "confirmed"  # the -u candidate is its own defaults baseline
    confirm.Stage(t).run()  # already recorded: nothing measured again
    assert FakeEngine.calls == 3
    t.doc["candidates"][0]["confirmation"]["status"] = "interrupted"  # as a resumed, unfinished one
    FakeEngine.tps, FakeEngine.calls = [300.0, 310.0, 320.0], 0
    confirm.Stage(t).run()
    assert FakeEngine.calls == 3 and t.doc["winner"]["confirmed"]["throughput_median"] == 310.0


def test_stage_records_a_failure_and_keeps_the_runs_it_had(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(confirm, "LoadgenEngine", FakeEngine)
    FakeEngine.tps, FakeEngine.calls, FakeEngine.fail_at = [400.0, 450.0, 420.0], 0, 2
    t = tuner(tmp_path / "t", 3)
    confirm.Stage(t).run()
    doc = json.loads((tmp_path / "t" / "tune.json").read_text())
    c = doc["winner"]["confirmed"]
    assert c["status"] == "failed" and "connection refused" in c["reason"] and c["runs"] == 1
    assert doc["gain_basis"] == "search"
    assert "confirmed over 1 of 3 fresh runs (failed" in output.summary_text(doc)


def test_negative_confirm_runs_is_one_line_and_exit_2(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t"
    assert main(["tune", "-m", "mlp", "--latency-budget-ms", "10", "--confirm-runs", "-1",
                 "--out", str(out)]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--confirm-runs -1" in err, err
    assert not out.exists()
