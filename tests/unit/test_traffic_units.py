"""Shape distributions, recorded/ramped schedules and the headline: parsing, draws, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from loadgen.clients.base import ModelInfo, RequestTensors, TensorSpec
from loadgen.config import LoadConfig, Range
from loadgen.schedules import parse_ramp, read_intervals
from loadgen.shapes import ShapeDist, parse_dim_dist, parse_shape_dist, read_dims_file, shaped_payloads
from saturate.errors import ConfigError
from scans.report.headline import from_run

PN = ModelInfo("pn", "1", (TensorSpec("pf_points", "FP32", (-1, 2, -1)),
                           TensorSpec("pf_mask", "FP32", (-1, 1, -1)),
                           TensorSpec("sv_points", "FP32", (-1, 2, -1))),
               (TensorSpec("softmax", "FP32", (-1, 8)),), max_batch_size=16)


def _dist(*dims: str, file: str | None = None) -> ShapeDist:
    return ShapeDist(templates=(parse_shape_dist("pf_points:2,P"), parse_shape_dist("pf_mask:1,P"),
                                parse_shape_dist("sv_points:2,S")),
                     dims=tuple(parse_dim_dist(d) for d in dims), dims_file=file)


def _prepare(r: RequestTensors) -> tuple[bytes, int]:
    return b"".join(a.tobytes() for _, _, a in r.inputs), 0


@pytest.mark.parametrize(("text", "kind", "params"), [
    ("P~poisson(40)", "poisson", (40.0,)), ("S ~ uniform(1, 10)", "uniform", (1.0, 10.0)),
    ("P~choice(16,32,64)", "choice", (16.0, 32.0, 64.0)), ("N~const(50)", "const", (50.0,))])
def test_dim_dist_parses(text: str, kind: str, params: tuple[float, ...]) -> None:
    d = parse_dim_dist(text)
    assert (d.kind, d.params) == (kind, params)


@pytest.mark.parametrize("text", ["P=poisson(40)", "P~gauss(1)", "P~poisson(1,2)", "P~uniform(5,1)",
                                  "P~poisson(x)"])
def test_bad_dim_dist_is_one_line(text: str) -> None:
    with pytest.raises(ConfigError, match="--dim-dist"):
        parse_dim_dist(text)


def test_shape_dist_parses_and_rejects() -> None:
    assert parse_shape_dist("pf_points:2,P") == ("pf_points", (2, "P"))
    for bad in ("pf_points", "pf_points:2,-1", "x:2,P-1"):
        with pytest.raises(ConfigError, match="--shape-dist"):
            parse_shape_dist(bad)
    with pytest.raises(ConfigError, match="symbol 'S'"):
        _dist("P~poisson(40)")
    with pytest.raises(ConfigError, match="two distributions"):
        _dist("P~poisson(40)", "S~poisson(5)", "P~const(3)")


def test_draws_are_seeded_shared_and_clipped() -> None:
    d = _dist("P~poisson(40)", "S~poisson(0.5)")
    a, b = d.draw(7, 5000), d.draw(7, 5000)
    assert np.array_equal(a, b) and not np.array_equal(a, d.draw(8, 5000))
    assert a.min() >= 1  # S~poisson(0.5) draws zeros; clipped to 1
    assert abs(a[:, 0].mean() - 40) < 0.5
    shapes = d.shapes(a[0])
    assert shapes["pf_points"][1] == shapes["pf_mask"][1] == a[0, 0]  # P drawn once per request
    assert shapes["sv_points"] == (2, int(a[0, 1]))


def test_dims_file_rows_drawn_jointly(tmp_path: Path) -> None:
    f = tmp_path / "jets.txt"
    f.write_text("# recorded jets\nP S\n30 2\n50,7\n")
    assert read_dims_file(str(f))[0] == ("P", "S")
    rows = _dist(file=str(f)).draw(1, 200)
    assert {tuple(r) for r in rows} == {(30, 2), (50, 7)}
    f.write_text("P S\n30\n")
    with pytest.raises(ConfigError, match="--dims-file"):
        _dist(file=str(f))


def test_payloads_one_per_distinct_shape_within_the_budget() -> None:
    d = _dist("P~choice(10,20)", "S~choice(3,4)")
    shaped = shaped_payloads(PN, d, {}, 2, 0, _prepare, draws=400)
    assert len(shaped.distinct) == 4 and shaped.cycle == 400 and not shaped.truncated
    assert len({id(p) for p in shaped.payloads}) == 4  # the sequence holds references, not copies
    small = shaped_payloads(PN, d, {}, 2, 0, _prepare, draws=400, cache_bytes=len(shaped.distinct[0][0]) + 1)
    assert small.truncated and len(small.distinct) == 1 and small.cycle >= 1


def test_intervals_file_and_ramp(tmp_path: Path) -> None:
    f = tmp_path / "iv.txt"
    f.write_text("1000\n3000\n\n2000\n")
    s = read_intervals(str(f))
    assert s.offsets().tolist() == [1_000_000, 4_000_000, 6_000_000]
    assert s.period_ns == 6_000_000 and s.mean_rate == pytest.approx(500)
    f.write_text("10\nabc\n")
    with pytest.raises(ConfigError, match="line 2"):
        read_intervals(str(f))
    r = parse_ramp("100:1000:2s")
    off = r.offsets()
    assert len(off) == 1100 and np.all(np.diff(off) > 0)  # (100+1000)/2 * 2 s
    gaps = np.diff(off)
    assert gaps[0] == pytest.approx(1e7, rel=0.03) and gaps[-1] == pytest.approx(1e6, rel=0.03)
    assert r.rate_at(1.0) == pytest.approx(550)
    assert parse_ramp("10:20:500ms").duration_s == 0.5
    with pytest.raises(ConfigError, match="START:END:DURATION"):
        parse_ramp("100:1000")


def test_config_refuses_processes_with_drawn_shapes() -> None:
    with pytest.raises(ConfigError, match="--processes"):
        LoadConfig(model="m", processes=2, concurrency_range=Range(2, 2, 1),
                   shape_dist=_dist("P~poisson(4)", "S~poisson(2)"))


@pytest.mark.parametrize("args", [
    ("--dim-dist", "P~gauss(3)"), ("--shape-dist", "pf_points:2,P"),
    ("--request-intervals", "/nonexistent/iv.txt"), ("--request-rate-ramp", "1:2"),
    ("--request-rate-ramp", "1:2:3s", "--concurrency-range", "2")])
def test_load_flags_fail_with_one_line(args: tuple[str, ...]) -> None:
    res = run_cli("load", "-m", "m", "-u", "127.0.0.1:1", *args, timeout=60)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_headline_of_a_scan_document() -> None:
    def level(c: int, stable: bool, ips: float) -> dict[str, object]:
        return {"mode": "concurrency", "concurrency": c, "batch_size": 16, "stable": stable,
                "stability": "stable" if stable else "unstable", "client": {"cpu_us_per_request": 80.0},
                "throughput": {"infer_per_s": ips}}

    doc = {"levels": [level(1, True, 100.0), level(2, True, 180.0), level(4, False, 190.0)],
           "analysis": {"latency_budget_ms": 50.0,
                        "knee": {"level": "c2_b16", "concurrency": 2, "batch_size": 16, "infer_per_s": 180.0,
                                 "p95_ms": 31.5, "saturated": "server_queue", "valid": True},
                        "verdicts": {
                            "c1_b16": {"saturated": "none", "valid": True, "reasons": [], "evidence": {}},
                            "c2_b16": {"saturated": "server_queue", "valid": True,
                                       "reasons": ["requests queue 900 µs for 800 µs of compute"],
                                       "evidence": {"client_cpu_pct_per_process": 12.0, "gpu_util_pct": 93.0,
                                                    "sm_active_pct": 41.0}},
                            "c4_b16": {"saturated": "gpu", "valid": False, "reasons": ["unstable"]}}}}
    h = from_run(json.loads(json.dumps(doc)), "scan.json")
    assert h is not None
    text = " ".join(h.sentences())
    assert "Best within the 50 ms p95 budget: 180 infer/s at batch 16, concurrency 2 (p95 31.5 ms)." in text
    assert "Saturated first: server_queue at c2_b16: requests queue 900 µs for 800 µs of compute." in text
    assert "80 µs CPU per request (12% of a core per process)" in text
    assert "utilisation 93%, SM activity 41%" in text
    assert "1 of 3 levels not valid: c4_b16 (unstable)." in text
    assert h.to_dict()["all_valid"] is False


def test_live_view_on_a_terminal_and_quiet() -> None:
    import io

    from rich.console import Console

    from loadgen.live import LiveView
    from loadgen.result import WindowStats
    from loadgen.runner import WindowProgress
    from loadgen.windows import window_summary

    lat = np.full(50, 2_000_000, dtype=np.int64)
    w = WindowStats(start_ns=0, end_ns=500_000_000, latencies_ns=lat, service_ns=None, failed=0, errors={},
                    delayed=0, dropped=0, send_ns_total=0, recv_ns_total=0, cpu_ns=0, sent=50)
    s = window_summary(w, 1, None)
    p = WindowProgress(4, 1, 3, s, False, "[concurrency 4] Pass [1/3] plain line")
    buf = io.StringIO()
    view = LiveView(console=Console(file=buf, force_terminal=True, width=160))
    with view:
        view(p)
    assert view.text(p).startswith("window 1/3: 100.0 infer/s (level so far 100.0 req/s), p50 2000 us")
    assert "window 1/3" in buf.getvalue() and "stable not yet" in buf.getvalue()
    plain = io.StringIO()
    with LiveView(console=Console(file=plain, force_terminal=False)) as v:
        v(p)
    assert plain.getvalue().strip() == p.line
    silent = io.StringIO()
    with LiveView(quiet=True, console=Console(file=silent, force_terminal=True)) as v:
        v(p)
    assert silent.getvalue() == ""


def test_scan_server_refuses_drawn_shapes_with_perf_analyzer(tmp_path: Path) -> None:
    res = run_cli("scan", "server", "-u", "127.0.0.1:1", "--engine", "perf_analyzer", "--shape-dist",
                  "pf_points:2,P", "--dim-dist", "P~poisson(40)", "--out", str(tmp_path / "o"), timeout=60)
    assert res.returncode == 2 and "--engine saturate" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
