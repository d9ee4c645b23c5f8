"""scans.compare: level matching, significance on synthetic runs, gates, outputs, CSV sources."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from loadgen.csvfmt import CsvOptions, write_csv
from loadgen.repeats import aggregate
from loadgen.result import ClientStats, LatencySummary, LevelResult, RunResult, Throughput
from saturate.cli import main
from scans.compare.significance import compare_runs, match, welch


def _trial(c: int, b: int, thr: float, p95_ms: float) -> LevelResult:
    pcts = {p: int(p95_ms * 1e6 * f) for p, f in ((50, 0.6), (90, 0.9), (95, 1.0), (99, 1.2))}
    lat = LatencySummary(percentiles_ns=pcts, avg_ns=int(p95_ms * 6e5))
    return LevelResult(mode="concurrency", concurrency=c, request_rate=None, batch_size=b, stable=True,
                       throughput=Throughput(thr, thr / b), latency=lat, client=ClientStats(0, 0))


GRID = ((1, 1), (4, 1), (4, 8))


def _run(slow: float, seed: int, n: int = 5, grid: tuple[tuple[int, int], ...] = GRID) -> list[LevelResult]:
    rng = np.random.default_rng(seed)
    out = []
    for c, b in grid:
        base = 1000.0 * c * b ** 0.5
        trials = [_trial(c, b, base * (1 - slow) * (1 + 0.02 * float(rng.standard_normal())),
                         2.0 * c / (1 - slow) * (1 + 0.02 * float(rng.standard_normal()))) for _ in range(n)]
        out.append(aggregate(trials))
    return out


def test_equal_runs_show_no_significant_change() -> None:
    rows = compare_runs(_run(0.0, 1), _run(0.0, 1))  # the same trials: no change at all
    assert len(rows) == 3
    for r in rows:
        for c in r.changes.values():
            assert c.basis == "repeats" and c.status == "same" and c.rel == 0.0, (r.name, c)


def test_equal_distributions_are_flagged_at_the_nominal_rate() -> None:
    """Two runs from one distribution: 'significant' about 5% of the time (95% intervals), not more."""
    flagged = 0
    for seed in range(150):
        rows = compare_runs(_run(0.0, 2 * seed, grid=((1, 1),)), _run(0.0, 2 * seed + 1, grid=((1, 1),)))
        flagged += rows[0].changes["throughput"].status != "same"
    assert flagged <= 16  # expected 7.5; P(> 16) < 0.1% under the binomial(150, 0.05)


def test_twenty_percent_slower_is_flagged() -> None:
    rows = compare_runs(_run(0.0, 1), _run(0.2, 2))
    for r in rows:
        thr = r.changes["throughput"]
        assert thr.status == "regressed" and thr.rel == pytest.approx(-0.2, abs=0.03)
        assert thr.ci_low is not None and thr.ci_high is not None and thr.ci_high < 0
        assert r.changes["p95"].status == "regressed" and r.changes["p95"].rel > 0.15
    faster = compare_runs(_run(0.2, 2), _run(0.0, 1))
    assert all(r.changes["throughput"].status == "improved" for r in faster)


def test_matching_on_batch_and_concurrency() -> None:
    a = _run(0.0, 1, n=1)
    b = _run(0.0, 2, n=1, grid=((4, 8), (2, 1), (1, 1)))
    pairs = match(a, b)
    assert [(k[1], k[2]) for k, _, _ in pairs] == [(1, 1.0), (8, 4.0)]
    # no repeats and no windows: a change without an interval
    rows = compare_runs(a, b)
    assert rows[0].changes["throughput"].status == "unknown" and rows[0].changes["throughput"].ci_low is None


def test_welch_against_scipy() -> None:
    from scipy import stats

    a, b = [10.0, 11.0, 9.5, 10.2], [12.0, 12.5, 11.1]
    diff, lo, hi = welch(a, b)
    res = stats.ttest_ind(b, a, equal_var=False)
    ci = res.confidence_interval(0.95)
    assert (lo, hi) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert diff == pytest.approx(np.mean(b) - np.mean(a))


def _write(path: Path, levels: list[LevelResult]) -> Path:
    RunResult(levels=levels).write(path)
    return path


def test_cli_gates_outputs_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path / "a.json", _run(0.0, 1))
    b = _write(tmp_path / "b.json", _run(0.2, 2))
    out = tmp_path / "cmp"
    code = main(["compare", str(a), str(b), "--out", str(out), "--fail-on", "throughput < -5%",
                 "--fail-on", "p95 > +10%"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("gate failed:") == 6 and "c4_b8: infer_per_s changed by -" in err
    doc = json.loads((out / "compare.json").read_text())
    assert doc["gates"]["passed"] is False and (out / "compare.png").stat().st_size > 1000
    assert "regressed" in (out / "compare.csv").read_text()
    assert main(["compare", str(a), str(a), "--fail-on", "throughput < -5%"]) == 0
    assert main(["compare", str(a), str(b), "--fail-on", "throughput < -5"]) == 2
    assert "signed percentage" in capsys.readouterr().err
    assert main(["compare", str(a), str(tmp_path / "nope")]) == 2


def test_perf_analyzer_csv_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, slow in (("A", 0.0), ("B", 0.3)):
        d = tmp_path / name
        d.mkdir()
        levels = [lv for lv in _run(slow, 3, n=1) if lv.batch_size == 1]
        write_csv(d / "b1.csv", levels, CsvOptions(mode="concurrency"))
    code = main(["compare", str(tmp_path / "A"), str(tmp_path / "B"), "--fail-on", "throughput < -5%"])
    out = capsys.readouterr()
    assert code == 1 and "c1_b1" in out.out and "c4_b1" in out.out


PA = Path(__file__).resolve().parents[1] / "fixtures" / "perf_analyzer"


def test_real_perf_analyzer_csvs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """perf_analyzer's own CSVs: levels matched on concurrency (and rate), a 20% drop gated."""
    lines = (PA / "pa_grpc_verbose.csv").read_text().splitlines()
    slower = [lines[0]]
    for ln in lines[1:]:
        cells = ln.split(",")
        cells[1] = f"{float(cells[1]) * 0.8:g}"
        slower.append(",".join(cells))
    (tmp_path / "slow_b4.csv").write_text("\n".join(slower) + "\n")
    code = main(["compare", str(PA / "pa_grpc_verbose.csv"), str(tmp_path / "slow_b4.csv"),
                 "--fail-on", "throughput < -5%"])
    cap = capsys.readouterr()
    assert code == 1 and cap.err.count("gate failed:") == 4
    assert "c4_b4" in cap.out and "-20.0%" in cap.out and "?" in cap.out  # no repeats, no windows
    assert main(["compare", str(PA / "pa_request_rate.csv"), str(PA / "pa_request_rate.csv"),
                 "--fail-on", "throughput < -5%"]) == 0
    assert "r150_b" in capsys.readouterr().out
