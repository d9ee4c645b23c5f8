"""``saturate report`` in-process: reading result directories (real perf_analyzer CSVs, a real direct scan
of the MLP, a run JSON written by loadgen's result types), the plots each one yields, and the HTML page."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES

from loadgen.result import RunResult
from saturate.errors import ConfigError, ToolMissingError
from scans.direct.direct_scan import DirectConfig, run_direct_scan
from scans.report.build import ReportConfig, make_report
from scans.report.readers import batch_of_csv, best_point, load_directory, read_perf_csv, saturation_rows

PA = FIXTURES / "perf_analyzer"


@pytest.fixture(scope="module")
def direct_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("direct")
    cfg = DirectConfig(model="mlp", batch_sizes=(1, 4, 16), trials=8, warmup_trials=2, warmup_ns=0)
    run_direct_scan(cfg, root, progress=io.StringIO())
    return root


def _copy_pa(dst: Path, *stems: str) -> None:
    for stem in stems:
        for f in PA.glob(f"{stem}.*"):
            shutil.copy(f, dst / f.name)


def test_reads_perf_analyzer_fixtures() -> None:
    data = load_directory(PA)
    by_src = {s.source: s for s in data.server}
    assert set(by_src) == {"pa_collect_metrics.csv", "pa_grpc_verbose.csv", "pa_request_rate.csv",
                           "pa_request_rate_poisson.csv", "pa_stability_partial.csv"}
    grpc = by_src["pa_grpc_verbose.csv"]
    assert grpc.batch_size == 4  # "Batch size: 4" in the console output beside it
    assert grpc.mode == "concurrency" and [p.load for p in grpc.points] == [1, 2, 3, 4]
    top = best_point(grpc)
    assert top is not None and top.infer_per_s == pytest.approx(1088.98) and top.load == 4
    assert top.queue_us == 6069 and top.compute_infer_us == 7157 and top.p95_us == 16813
    assert by_src["pa_request_rate.csv"].mode == "request_rate"
    assert [p.load for p in by_src["pa_request_rate.csv"].points] == [50, 100, 150]
    assert by_src["pa_collect_metrics.csv"].points[0].gpu_util is None  # empty cells on a CPU box
    assert ("pa_profile_export.json", "JSON without a 'schema' key (not a saturate run)") in data.skipped
    assert data.direct == []


def test_batch_from_file_name(tmp_path: Path) -> None:
    assert batch_of_csv(tmp_path / "batch_16.csv") == 16
    assert batch_of_csv(tmp_path / "run_bs32.csv") == 32
    assert batch_of_csv(tmp_path / "pnet-b8.csv") == 8
    assert batch_of_csv(tmp_path / "db651eecc.csv") is None  # hex in a name is not a batch size
    assert batch_of_csv(PA / "pa_request_rate.csv") == 1


def test_run_json_server_levels_replace_the_csvs(tmp_path: Path) -> None:
    levels = [dataclasses.replace(lv, batch_size=4) for lv in read_perf_csv(PA / "pa_grpc_verbose.csv")]
    RunResult(config={"model": "particlenet"}, levels=levels).write(tmp_path / "run.json")
    shutil.copy(PA / "pa_grpc_verbose.csv", tmp_path / "batch_4.csv")
    data = load_directory(tmp_path)
    assert len(data.server) == 1
    srv = data.server[0]
    assert srv.source == "run.json" and srv.batch_size == 4 and srv.model == "particlenet"
    assert [p.infer_per_s for p in srv.points] == [lv.throughput.infer_per_s for lv in levels]
    assert ("batch_4.csv", "same levels as the run JSON in this directory") in data.skipped


def test_saturation_ratio(direct_dir: Path, tmp_path: Path) -> None:
    shutil.copy(direct_dir / "direct.json", tmp_path / "direct.json")
    _copy_pa(tmp_path, "pa_grpc_verbose")
    data = load_directory(tmp_path)
    rows = saturation_rows(data)
    assert [r.batch_size for r in rows] == [4]
    ceiling = next(lv for lv in json.loads((direct_dir / "direct.json").read_text())["levels"]
                   if lv["batch_size"] == 4)["direct"]["items_per_s"]
    assert rows[0].direct_ceiling == ceiling
    assert rows[0].server_best == pytest.approx(1088.98)
    assert rows[0].ratio == pytest.approx(1088.98 / ceiling)


def test_report_plots_follow_the_data(direct_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "only-direct"
    page = make_report(ReportConfig(source=direct_dir, out=out, title="<b>x</b>"))
    assert sorted(p.name for p in (out / "plots").glob("*.png")) == ["direct_scan.png"]
    html = page.read_text()
    assert html.count("data:image/png;base64,") == 1
    assert "<title>&lt;b&gt;x&lt;/b&gt;</title>" in html
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing outside the page
    assert "direct.csv" in html  # listed as not used: its JSON is read

    both = tmp_path / "both"
    both.mkdir()
    shutil.copy(direct_dir / "direct.json", both / "direct.json")
    _copy_pa(both, "pa_grpc_verbose", "pa_request_rate")
    make_report(ReportConfig(source=both, out=out))
    names = sorted(p.stem for p in (out / "plots").glob("*.png"))
    assert names == sorted(["direct_scan", "throughput_vs_concurrency", "throughput_vs_request_rate",
                            "latency_vs_throughput", "server_breakdown", "saturation_ratio"])


def test_another_schema_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"schema": "dlbs.log/2", "data": []}))
    with pytest.raises(ConfigError, match=r"dlbs\.log/2"):
        load_directory(tmp_path)


def test_empty_or_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no saturate\.run/1"):
        load_directory(tmp_path)
    with pytest.raises(ConfigError, match="not a directory"):
        load_directory(tmp_path / "nope")


def test_mplhep_style_needs_mplhep(direct_dir: Path, tmp_path: Path) -> None:
    try:
        import mplhep  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        with pytest.raises(ToolMissingError, match="pip install mplhep"):
            make_report(ReportConfig(source=direct_dir, out=tmp_path, style="mplhep"))
    else:
        assert make_report(ReportConfig(source=direct_dir, out=tmp_path, style="mplhep")).is_file()


def test_a_level_that_does_not_parse_is_listed_not_fatal(direct_dir: Path, tmp_path: Path) -> None:
    good = read_perf_csv(PA / "pa_grpc_verbose.csv")
    doc = RunResult(levels=good).to_dict()
    del doc["levels"][1]["throughput"]
    (tmp_path / "run.json").write_text(json.dumps(doc))
    data = load_directory(tmp_path)
    assert [len(s.points) for s in data.server] == [3]
    assert any(f == "run.json" and "level 1 does not parse" in why for f, why in data.skipped)


def test_monitor_timeline_with_levels_shaded_and_knee_table(tmp_path: Path) -> None:
    from monitors.schema import Reading
    from monitors.writers import make_writer
    from scans.analysis import analysis
    from scans.report.plots import plot_utilization

    w = make_writer(str(tmp_path / "monitor.csv"), "tidy")
    for t, phase in enumerate(["", "c1_b4", "c1_b4", "c2_b4", "c2_b4", ""]):
        w.write(10**9 * (t + 1), [Reading("gpu0", {"gpu_util_pct": 20.0 * t, "sm_active_pct": 10.0 * t}),
                                  Reading("host", {"cpu_util_pct": 50.0, "ram_util_pct": 5.0})], phase)
    w.close()
    levels = [dataclasses.replace(lv, batch_size=4) for lv in read_perf_csv(PA / "pa_grpc_verbose.csv")]
    doc = RunResult(config={"model": "m"}, levels=levels).to_dict()
    doc["analysis"] = analysis(levels, 15.0, {})
    (tmp_path / "scan.json").write_text(json.dumps(doc))
    data = load_directory(tmp_path)
    assert [m.source for m in data.monitors] == ["monitor.csv"] and "monitor.csv" in data.used
    fig = plot_utilization(data)
    assert fig is not None
    gpu_ax = fig.axes[0]
    assert {t.get_text() for t in gpu_ax.texts} == {"c1_b4", "c2_b4"}  # one label per level band
    assert len(gpu_ax.patches) == 2 and len(gpu_ax.lines) == 2  # two bands; util and SM active
    html = make_report(ReportConfig(source=tmp_path, out=tmp_path)).read_text()
    assert "Knee and saturation verdicts" in html and "within 15 ms" in html
    knee = doc["analysis"]["knee"]
    assert knee["concurrency"] == 2 and knee["p95_ms"] <= 15  # the best level with p95 within 15 ms
    assert (tmp_path / "plots" / "utilization_timeline.png").is_file()
