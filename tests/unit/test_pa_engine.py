"""perf_analyzer engine: CSV + console + failure parsing on every real fixture, the argument list built
from a LoadConfig, and the real perf_analyzer run with no server (against a real server:
tests/integration/test_pa_scan.py); only ``apptainer`` is a recording stand-in."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from pathlib import Path

import pytest
from conftest import free_port
from pa_binary import perf_analyzer

from loadgen.config import LoadConfig, Range
from loadgen.csvfmt import read_csv
from saturate.cli import main
from saturate.errors import ConfigError, ToolMissingError
from scans.engines import engine_options
from scans.perf_analyzer.args import PaLauncher, csv_path_in, pa_arguments
from scans.perf_analyzer.engine import PerfAnalyzerEngine, parse_outcome

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "perf_analyzer"
CSVS = sorted(FIX.glob("*.csv"))


def sections(path: Path) -> list[dict[str, str]]:
    """The ``### ...`` wrapped runs of pa_bad_model.txt / pa_stability_fail.txt."""
    runs: list[dict[str, str]] = []
    key = ""
    for line in path.read_text().splitlines():
        if line.startswith("### run") or (line.startswith("### ") and not runs and ":" not in line[:12]):
            runs.append({"stdout": "", "stderr": ""})
            continue
        if line.startswith("### exit code:"):
            runs[-1]["rc"] = line.split(":")[1].strip()
        elif line.startswith("### stdout:"):
            key = "stdout"
        elif line.startswith("### stderr:"):
            key = "stderr"
        elif line.startswith("### "):
            key = ""
        elif key and runs:
            runs[-1][key] += line + "\n"
    return runs


def test_every_fixture_csv_parses_with_its_console() -> None:
    assert len(CSVS) >= 5
    for csv in CSVS:
        txt = csv.with_suffix(".txt").read_text()
        err_file = csv.with_name(csv.stem + ".stderr.txt")
        err = err_file.read_text() if err_file.exists() else ""
        table = read_csv(csv)
        levels = parse_outcome(txt, err, 0, csv.read_text(), batch_size=1)
        recorded = [lv for lv in levels if lv.stable]
        assert len(recorded) == len(table.levels), csv.name
        by_value = {lv.value: lv for lv in recorded}
        for row in table.levels:
            lv = by_value[row.value]
            assert lv.throughput.infer_per_s == row.throughput.infer_per_s
            assert lv.latency.percentiles_ns == row.latency.percentiles_ns
            assert lv.requests is not None and lv.requests.completed > 0, csv.name
            assert lv.latency.count == lv.requests.completed


def test_console_counts_enrich_the_csv_levels() -> None:
    csv = FIX / "pa_grpc_verbose.csv"
    levels = parse_outcome(csv.with_suffix(".txt").read_text(), "", 0, csv.read_text(), batch_size=4)
    assert [lv.concurrency for lv in levels] == [1, 2, 3, 4]
    first = levels[0]
    assert first.batch_size == 4 and first.requests is not None and first.requests.completed == 1122
    assert first.server is not None and first.server.inferences == 4488 and first.server.executions == 1122
    assert first.server.avg_batch == 4.0
    assert first.throughput.requests_per_s == pytest.approx(622.253 / 4)
    rate = FIX / "pa_request_rate.csv"
    rl = parse_outcome(rate.with_suffix(".txt").read_text(), "", 0, rate.read_text())
    assert [lv.mode for lv in rl] == ["request_rate"] * 3 and [lv.request_rate for lv in rl] == [50, 100, 150]
    assert rl[0].latency.avg_ns == 4150_000 and rl[0].latency.std_ns == 642_000


def test_cut_short_sweep_keeps_its_levels_and_flags_the_unstable_one() -> None:
    csv = FIX / "pa_stability_partial.csv"
    err = (FIX / "pa_stability_partial.stderr.txt").read_text()
    levels = parse_outcome(csv.with_suffix(".txt").read_text(), err, 0, csv.read_text())
    assert [(lv.concurrency, lv.stable) for lv in levels] == [(1, True), (2, True), (3, False)]
    bad = levels[2]
    assert bad.stability == "unstable" and not bad.verdict.valid
    assert bad.verdict.reasons[0].startswith(
        "Failed to obtain stable measurement within 3 measurement windows for concurrency 3."
    )


def test_first_level_unstable_no_csv() -> None:
    (run,) = sections(FIX / "pa_stability_fail.txt")
    assert run["rc"] == "2"
    levels = parse_outcome(run["stdout"], run["stderr"], 2, None)
    assert len(levels) == 1 and levels[0].concurrency == 1 and levels[0].stability == "unstable"
    assert "Please try to increase the --measurement-interval" in levels[0].verdict.reasons[0]


def test_bad_model_and_wrong_shape_become_flagged_levels_with_pa_words() -> None:
    runs = sections(FIX / "pa_bad_model.txt")
    assert len(runs) == 3
    for run in runs[:2]:
        (lv,) = parse_outcome(run["stdout"], run["stderr"], int(run["rc"]), None, requested=[1.0])
        assert lv.stability == "failed" and not lv.stable and not lv.verdict.valid
        assert lv.verdict.reasons == [
            "error: failed to get model metadata: Request for unknown model: 'does_not_exist' is not found"
        ]
    (shape,) = parse_outcome(runs[2]["stdout"], runs[2]["stderr"], 99, None, batch_size=4, requested=[1.0])
    assert shape.concurrency == 1 and shape.batch_size == 4 and shape.stability == "failed"
    assert "unexpected shape for input 'pf_points'" in shape.verdict.reasons[0]
    assert shape.verdict.reasons[0].startswith("Thread [0] had error:")


def test_arguments_from_load_config() -> None:
    cfg = LoadConfig(
        model="particlenet", url="10.0.0.5:8001", batch_size=4, concurrency_range=Range(1, 8, 2),
        shapes=(("pf_points", (2, 50)), ("sv_mask", (1, 5))), measurement_interval_ms=2000,
        stability_percentage=25, max_trials=6, percentile=95, async_relaxation=True, verbose_csv=True,
        access_token="tok", csv_file="out.csv",
    )
    assert pa_arguments(cfg) == [
        "-m", "particlenet", "-u", "10.0.0.5:8001", "-i", "grpc", "-b", "4",
        "--concurrency-range", "1:8:2", "--shape", "pf_points:2,50", "--shape", "sv_mask:1,5",
        "--measurement-mode", "time_windows", "-p", "2000", "-s", "25", "-r", "6", "--percentile=95",
        "--async", "-f", "out.csv", "--verbose-csv", "-H", "triton-grpc-protocol-triton-access-token:tok",
    ]
    rate = LoadConfig(model="m", protocol="http", request_rate_range=Range(50, 150, 50),
                      request_distribution="poisson", collect_metrics=True, latency_threshold_ms=20)
    args = pa_arguments(rate, "r.csv", value=100)
    assert args[:6] == ["-m", "m", "-u", "localhost:8000", "-i", "http"]
    i = args.index("--request-rate-range")
    assert args[i: i + 4] == ["--request-rate-range", "100:100:1", "--request-distribution", "poisson"]
    assert args[args.index("-l"): args.index("-l") + 2] == ["-l", "20"]
    assert "--collect-metrics" in args and args[args.index("--metrics-url") + 1] == "localhost:8002/metrics"
    assert csv_path_in(args) == "r.csv" and csv_path_in(["-fx.csv"]) == "x.csv"


# ------------------------------------------------------------------ the real perf_analyzer, no server

# perf_analyzer runs for real here (make perf-analyzer); only apptainer, which cannot run on these
# machines, is a stand-in: it records its argv and execs the tool it was asked for.
APPTAINER = """#!{py}
import os, sys
with open(os.environ["PA_RECORD"], "a") as f:
    f.write("apptainer\\t" + "\\t".join(sys.argv[1:]) + "\\n")
args = sys.argv[2:]
while args[0].startswith("--"):
    args = args[2:] if args[0] == "--bind" else args[1:]
image, tool, rest = args[0], args[1], args[2:]
os.execvp(tool, [tool, *rest])
"""


@pytest.fixture
def apptainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The apptainer stand-in and the real perf_analyzer first on PATH; returns the record file."""
    real = Path(perf_analyzer())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    p = bin_dir / "apptainer"
    p.write_text(APPTAINER.format(py=sys.executable))
    p.chmod(p.stat().st_mode | stat.S_IEXEC)
    record = tmp_path / "argv.tsv"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{real.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PA_RECORD", str(record))
    return record


def _calls(record: Path) -> list[list[str]]:
    return [line.split("\t") for line in record.read_text().splitlines()]


def test_engine_inside_the_image_binds_its_workdir(apptainer: Path, tmp_path: Path) -> None:
    image = tmp_path / "sdk.sif"
    image.write_text("not a real image; the apptainer stand-in never opens it")
    url = f"127.0.0.1:{free_port()}"  # nobody listens: the real perf_analyzer fails, in its own words
    cfg = LoadConfig(model="particlenet_like", url=url, batch_size=4, concurrency_range=Range(1, 1, 1),
                     access_token="s3cret")
    engine = PerfAnalyzerEngine(PaLauncher(image=str(image), gpu="rocm"), tmp_path / "w", echo=None)
    level = asyncio.run(engine.measure(cfg, 1))
    (app,) = _calls(apptainer)
    work = str((tmp_path / "w").resolve())
    assert app[:6] == ["apptainer", "exec", "--rocm", "--bind", work, str(image)]
    assert app[6] == "perf_analyzer" and app[7:] == pa_arguments(cfg, f"{work}/pa_c1_b4.csv", 1)
    assert level.concurrency == 1 and level.stability == "failed" and not level.verdict.valid
    assert level.verdict.reasons[0].startswith("error: failed to get model metadata")
    console = (tmp_path / "w" / "pa_c1_b4.txt").read_text()
    assert "s3cret" not in console and "triton-grpc-protocol-triton-access-token:***" in console


def test_saturate_pa_passes_pa_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"127.0.0.1:{free_port()}"
    rc = main(["pa", "--binary", perf_analyzer(), "--out", str(tmp_path / "o"), "--",
               "-m", "x", "-u", url, "-H", "triton-grpc-protocol-triton-access-token:s3cret"])
    assert rc == 99  # perf_analyzer's own exit code for a failed metadata request
    doc = json.loads((tmp_path / "o" / "pa.json").read_text())
    (lv,) = doc["levels"]
    assert lv["stability"] == "failed" and lv["concurrency"] == 1
    assert lv["verdict"]["reasons"][0].startswith("error: failed to get model metadata")
    for name in ("pa.json", "pa_console.txt"):
        assert "s3cret" not in (tmp_path / "o" / name).read_text()
    assert "s3cret" not in capsys.readouterr().err


def _one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str], needle: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no apptainer or sbatch here
    _one_line_exit_2(["pa", "--binary", "no_such_pa", "--out", str(tmp_path), "--", "-m", "x"], capsys,
                     "no_such_pa not found")
    _one_line_exit_2(["pa", "--image", str(tmp_path / "missing.sif"), "--", "-m", "x"], capsys,
                     "missing.sif not found")
    image = tmp_path / "sdk.sif"
    image.write_text("x")
    _one_line_exit_2(["pa", "--image", str(image), "--", "-m", "x"], capsys, "apptainer not found")
    _one_line_exit_2(["pa"], capsys, "give perf_analyzer's arguments")
    with pytest.raises(ToolMissingError):
        PaLauncher(binary="no_such_pa").command(["-m", "x"])
    with pytest.raises(ConfigError):
        PaLauncher(gpu="intel").command([])  # type: ignore[arg-type]


def test_engine_from_options(apptainer: Path, tmp_path: Path) -> None:
    engine = PerfAnalyzerEngine.from_options(tmp_path / "scan", None, {})
    assert engine.launcher.image is None and engine.workdir == (tmp_path / "scan" / "perf_analyzer").resolve()
    engine = PerfAnalyzerEngine.from_options(None, None, {"dir": str(tmp_path / "d")})
    assert engine.workdir == (tmp_path / "d").resolve()
    image = tmp_path / "sdk.sif"
    image.write_text("x")
    opts = {"image": str(image), "gpu": "nvidia"}
    engine = PerfAnalyzerEngine.from_options(tmp_path, None, opts)
    assert engine.launcher.gpu == "nvidia" and str(engine.workdir) in engine.launcher.binds
    with pytest.raises(ConfigError, match="gpu 'intel'"):
        PerfAnalyzerEngine.from_options(tmp_path, None, {"gpu": "intel"})
    with pytest.raises(ToolMissingError, match="no_such_pa not found"):
        PerfAnalyzerEngine.from_options(tmp_path, None, {"binary": "no_such_pa"})
    assert engine_options("perf_analyzer", ["gpu=rocm"], {"SATURATE_PA_DIR": "d", "SATURATE_PA_GPU": "x"}) \
        == (("dir", "d"), ("gpu", "rocm"))
    with pytest.raises(ConfigError, match="takes image=, gpu=, dir=, binary="):
        engine_options("perf_analyzer", ["colour=red"], {})
