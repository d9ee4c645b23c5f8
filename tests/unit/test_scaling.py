"""Scaling tables (DLBS definitions) against values computed by hand for a small fixed input."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from scans.report.scaling import (
    Cell,
    Point,
    csv_text,
    exploration,
    markdown,
    pivots,
    points_from_records,
    strong_scaling,
    weak_scaling,
    write_scaling,
)

# model m on cpu: N=1 b=4 → 1000 items/s; N=2 b=4 → 1600; N=2 b=2 → 1500; N=1 b=8 → 1200; N=4 b=2 → 2000
POINTS = [Point("m", "cpu", 1, 4, 1000.0), Point("m", "cpu", 2, 4, 1600.0), Point("m", "cpu", 2, 2, 1500.0),
          Point("m", "cpu", 1, 8, 1200.0), Point("m", "cpu", 4, 2, 2000.0)]


def cell(cells: list[Cell], batch: int, n: int) -> Cell:
    return next(c for c in cells if c.batch == batch and c.n == n)


def test_batch_time_from_throughput() -> None:
    assert Point("m", "cpu", 2, 4, 1600.0).time_ms == pytest.approx(5.0)  # 8 items / 1600 per s


def test_exploration_by_hand() -> None:
    cells = exploration(POINTS)
    c = cell(cells, 8, 1)
    assert c.device == "cpu" and c.time_ms == pytest.approx(8 * 1000 / 1200)
    assert cell(cells, 8, 2).device == "cpu x2"


def test_strong_scaling_by_hand() -> None:
    cells = strong_scaling(POINTS)
    # B = 4: N=1 (b=4, t=4 ms) and N=2 (b=2, t=4*1000/1500 = 2.6667 ms)
    c = cell(cells, 4, 2)
    assert c.time_ms == pytest.approx(2.666667, rel=1e-5)
    assert c.speedup == pytest.approx(1.5)
    assert c.efficiency_pct == pytest.approx(75.0)  # 100 * 4 / (2 * 2.6667)
    assert cell(cells, 4, 1).efficiency_pct == pytest.approx(100.0)
    # B = 8: N=1 (t = 6.6667), N=2 b=4 (t = 5), N=4 b=2 (t = 4)
    assert cell(cells, 8, 2).speedup == pytest.approx(1600 / 1200)
    assert cell(cells, 8, 2).efficiency_pct == pytest.approx(66.67, abs=0.01)  # 100 * 6.6667 / (2 * 5)
    assert cell(cells, 8, 4).efficiency_pct == pytest.approx(41.67, abs=0.01)  # 100 * 6.6667 / (4 * 4)


def test_weak_scaling_by_hand() -> None:
    cells = weak_scaling(POINTS)
    # b = 4: t1 = 4 ms, t2 = 5 ms → efficiency 80 %, speedup 1.6
    assert cell(cells, 4, 2).efficiency_pct == pytest.approx(80.0)
    assert cell(cells, 4, 2).speedup == pytest.approx(1.6)
    # b = 2 has no N = 1 point: dropped (as DLBS does)
    assert not [c for c in cells if c.batch == 2]


def test_outputs(tmp_path: Path) -> None:
    cells = [*exploration(POINTS), *strong_scaling(POINTS), *weak_scaling(POINTS)]
    rows = list(csv.DictReader(io.StringIO(csv_text(cells))))
    weak = [r for r in rows if r["table"] == "weak" and r["n"] == "2"]
    assert weak[0]["efficiency_pct"] == "80.00"
    md = markdown(pivots(cells))
    assert "### Weak scaling (per-replica batch b): Efficiency = 100% * t1 / tN" in md
    assert "| m | cpu | 4 | 100.00 | 80.00 |" in md
    strong_eff = next(t for t in pivots(cells) if t.title.startswith("Strong") and "Efficiency" in t.title)
    assert strong_eff.header == ("model", "device", "B", "N=1", "N=2", "N=4")
    assert ("m", "cpu", "8", "100.00", "66.67", "41.67") in strong_eff.rows


def test_records_to_points_and_files(tmp_path: Path) -> None:
    levels = [{"batch_size": 4, "items_per_s": 10.0}, {"batch_size": 4, "items_per_s": 20.0}]
    recs = [
        {"status": "ok", "params": {"model": "mlp", "processes": 1},
         "results": {"processes": 1, "batch_size": 4, "items_per_s": 1000.0}},
        {"status": "ok", "params": {"model": "mlp", "processes": 2},
         "results": {"processes": 2, "batch_size": 4, "items_per_s": 1600.0}},
        {"status": "failed", "params": {"model": "mlp", "processes": 4}, "results": {}},
        {"status": "ok", "params": {"model": "mlp", "gpus": "0,1"}, "results": {"levels": levels}},
    ]
    pts = points_from_records(recs)
    assert [(p.n, p.items_per_s) for p in pts] == [(1, 1000.0), (2, 1600.0)]  # duplicates: best level
    assert [(p.n, p.items_per_s) for p in points_from_records(recs, "gpus")][-1] == (2, 20.0)
    (tmp_path / "sweep.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = write_scaling(tmp_path, tmp_path / "rep")
    assert out is not None and out.png is not None and out.png[:4] == b"\x89PNG"
    assert {p.name for p in out.files} == {"scaling.csv", "scaling.md", "scaling.png"}
    assert write_scaling(tmp_path / "rep", tmp_path / "x") is None


def test_report_on_a_sweep_directory(tmp_path: Path) -> None:
    from saturate.errors import ConfigError
    from scans.report.build import ReportConfig, make_report

    recs = [{"status": "ok", "params": {"model": "m", "processes": n},
             "results": {"processes": n, "batch_size": 4, "items_per_s": thr}} for n, thr in ((1, 1000.0),
                                                                                             (2, 1600.0))]
    (tmp_path / "sweep.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    page = make_report(ReportConfig(source=tmp_path, out=tmp_path / "rep")).read_text()
    assert "<h2>Scaling</h2>" in page and "data:image/png;base64," in page
    assert "Weak scaling (per-replica batch b): Efficiency = 100% * t1 / tN" in page
    assert "<td>80.00</td>" in page  # t1 = 4 ms, t2 = 5 ms
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError):
        make_report(ReportConfig(source=empty, out=empty))
