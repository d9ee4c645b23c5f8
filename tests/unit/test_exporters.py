"""The run's exporters: each writes its whole file from the run as it stands, after every level."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from loadgen.csvfmt import CsvOptions
from loadgen.exporters import LevelUpdate, exporters_for
from loadgen.level import build_level
from loadgen.result import RunResult, WindowStats
from loadgen.stability import LevelContext, StabilityRule
from loadgen.windows import window_summary


def _windows(n: int, lat_us: int) -> list[WindowStats]:
    return [WindowStats(start_ns=k * 10**9, end_ns=(k + 1) * 10**9,
                        latencies_ns=np.full(n, lat_us * 1000, np.int64), sent=n) for k in range(3)]


def test_json_csv_and_latency_files_follow_the_run(tmp_path: Path) -> None:
    paths = {k: tmp_path / f"run.{k}" for k in ("json", "csv", "npz")}
    exporters = exporters_for(str(paths["json"]), str(paths["csv"]), CsvOptions(mode="concurrency"),
                              str(paths["npz"]), batch_size=2)
    assert [type(e).__name__ for e in exporters] == ["JsonExporter", "CsvExporter", "LatencyExporter"]
    run = RunResult()
    rule = StabilityRule(stability_pct=1000)
    for i, (n, lat) in enumerate([(10, 500), (20, 900)]):
        ws = _windows(n, lat)
        run.levels.append(build_level(ws, [window_summary(w, 2) for w in ws],
                                      LevelContext(rule, "concurrency", i + 1, 2)))
        for e in exporters:
            e.export(run, LevelUpdate(i, ws))
        assert len(json.loads(paths["json"].read_text())["levels"]) == i + 1
        assert len(paths["csv"].read_text().splitlines()) == i + 2  # header + a row per level
    ws = _windows(5, 700)
    for e in exporters:  # a repeat round of level 1 adds its latencies and duration
        e.export(run, LevelUpdate(1, ws, accumulate=True))
    with np.load(paths["npz"]) as data:
        assert data["L0"].size == 30 and data["L1"].size == 75 and int(data["D1"]) == 6 * 10**9
        assert int(data["B0"]) == 2
    assert (tmp_path / "run.extra.csv").is_file()  # the CSV's extra columns beside it
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
