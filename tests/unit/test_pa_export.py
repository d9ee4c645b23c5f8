"""perf_analyzer's --profile-export-file read into saturate's per-request latencies: the real export
of a real run (tests/fixtures/perf_analyzer) agrees with the CSV and console of that same run, and the
latency file it gives is one ``saturate merge`` reads like a ``saturate load --latency-file``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadgen.result import RunResult
from saturate.errors import ConfigError
from scans.jobs.merge import load_rank, merge_ranks
from scans.perf_analyzer.engine import parse_outcome
from scans.perf_analyzer.export import attach_export, export_level, read_profile_export, write_latency_file

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "perf_analyzer"


def test_export_agrees_with_the_csv_and_console_of_its_run() -> None:
    (exp,) = read_profile_export(FIX / "pa_profile_export.json")
    assert exp.mode == "request_rate" and exp.value == 100.0 and exp.failed == 0
    assert exp.latencies_ns.size == 695 and len(exp.boundaries_ns) == 4  # console: Request count: 695
    lv = export_level(exp, batch_size=1)
    assert lv.throughput.infer_per_s == pytest.approx(96.4862, rel=1e-5)  # CSV/console throughput
    p = {q: v // 1000 for q, v in lv.latency.percentiles_ns.items()}
    assert p == {50: 4174, 90: 6255, 95: 6862, 99: 7754}  # the CSV's p50..p99 (µs, truncated)
    assert lv.latency.avg_ns is not None and lv.latency.avg_ns // 1000 == 4374
    assert lv.latency.std_ns is not None and lv.latency.std_ns // 1000 == 1208
    assert [w.completed for w in lv.windows] and sum(w.completed for w in lv.windows) == 695


def test_attached_levels_keep_the_csv_and_feed_merge(tmp_path: Path) -> None:
    csv = FIX / "pa_request_rate_poisson.csv"
    (base,) = parse_outcome(csv.with_suffix(".txt").read_text(), "", 0, csv.read_text(), batch_size=1)
    levels, lats, durs = attach_export([base], read_profile_export(FIX / "pa_profile_export.json"), 95)
    (lv,) = levels
    assert lv.server == base.server and lv.percentile == 95 and lv.latency.percentiles_ns[95] // 1000 == 6862
    run = RunResult(tool={"name": "perf_analyzer"}, config={}, levels=levels)
    for rank in ("r0", "r1"):  # two "ranks" holding the same run: pooled statistics equal the run's
        run.write(tmp_path / f"{rank}.json")
        write_latency_file(tmp_path / f"{rank}.npz", lats, durs, [1])
    ranks = [load_rank(tmp_path / f"{r}.json") for r in ("r0", "r1")]
    assert np.array_equal(ranks[0].latencies[0], lats[0])
    merged = merge_ranks(ranks)
    (m,) = merged.levels
    assert m.latency.count == 2 * 695 and m.latency.percentiles_ns[50] == lv.latency.percentiles_ns[50]
    assert m.throughput.infer_per_s == pytest.approx(2 * lv.throughput.infer_per_s)


def test_not_an_export_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(ConfigError, match="not a perf_analyzer profile export"):
        read_profile_export(bad)
