"""Drawn shapes, a replayed interval file and a ramp against one real PyTriton ParticleNet server (CPU)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import ServerProcess, run_cli, start_server
from scipy import stats

pytestmark = pytest.mark.integration

PN_DIST = ("--shape-dist", "pf_points:2,P", "--shape-dist", "pf_features:20,P", "--shape-dist", "pf_mask:1,P",
           "--shape-dist", "sv_points:2,S", "--shape-dist", "sv_features:11,S", "--shape-dist", "sv_mask:1,S",
           "--dim-dist", "P~poisson(40)", "--dim-dist", "S~poisson(5)")
FIXED = ("--shape", "pf_points:2,40", "--shape", "pf_features:20,40", "--shape", "pf_mask:1,40",
         "--shape", "sv_points:2,5", "--shape", "sv_features:11,5", "--shape", "sv_mask:1,5")


@pytest.fixture(scope="module")
def pn() -> Iterator[ServerProcess]:
    server = start_server("particlenet", extra=("--max-batch", "16"))
    yield server
    server.stop()



def _chi_square_p(hist: dict[str, int], pmf: np.ndarray, lo: int = 1) -> float:
    """p-value of the sent histogram against a Poisson pmf clipped at `lo`, bins of expected >= 5."""
    n = sum(hist.values())
    values = np.arange(len(pmf))
    expected = pmf * n
    expected[lo] += expected[:lo].sum()  # draws below `lo` are clipped up to it
    observed = np.array([hist.get(str(v), 0) for v in values], dtype=float)
    observed[-1] += sum(c for v, c in hist.items() if int(v) >= len(pmf))
    bins_o, bins_e, acc_o, acc_e = [], [], 0.0, 0.0
    for o, e in zip(observed[lo:], expected[lo:], strict=True):
        acc_o, acc_e = acc_o + o, acc_e + e
        if acc_e >= 5:
            bins_o.append(acc_o)
            bins_e.append(acc_e)
            acc_o = acc_e = 0.0
    bins_o[-1] += acc_o
    bins_e[-1] += acc_e
    e = np.array(bins_e) * (sum(bins_o) / sum(bins_e))
    return float(stats.chisquare(np.array(bins_o), e).pvalue)


def test_poisson_shapes_sent_and_served(pn: ServerProcess, tmp_path: Path) -> None:
    js = tmp_path / "shapes.json"
    res = run_cli("load", "-m", "particlenet", "-u", pn.grpc_url, "--seed", "7", "--concurrency-range", "4",
                  "-p", "1500", "-s", "80", "-r", "3", "--continue-on-unstable", "--json", str(js), *PN_DIST,
                  "--quiet", timeout=180)
    assert res.returncode == 0, res.stderr
    level = json.loads(js.read_text())["levels"][0]
    shapes = level["traffic"]["shapes"]
    assert shapes["symbols"] == ["P", "S"] and shapes["sent"] >= 100
    hist_p, hist_s = shapes["histogram"]["P"], shapes["histogram"]["S"]
    assert len(hist_p) > 15 and len(hist_s) > 5 and shapes["distinct_shapes"] > 50
    k = np.arange(80)
    assert _chi_square_p(hist_p, stats.poisson(40).pmf(k)) > 0.001
    assert _chi_square_p(hist_s, stats.poisson(5).pmf(k[:20])) > 0.001
    # Triton served them: no failures, and its statistics count what this level completed
    assert level["requests"]["failed"] == 0
    server = level["server"]
    assert server["executions"] > 0
    # different shapes cannot share a batch: the batcher ran close to one request per execution
    assert server["avg_batch"] < 2.5


def test_replayed_intervals_follow_the_file(pn: ServerProcess, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    intervals = rng.integers(5_000, 35_000, size=200)  # µs, mean 20 ms -> 50 requests/s
    path = tmp_path / "intervals.txt"
    path.write_text("".join(f"{v}\n" for v in intervals))
    js = tmp_path / "intervals.json"
    res = run_cli("load", "-m", "particlenet", "-u", pn.grpc_url, "--request-intervals", str(path), *FIXED,
                  "-p", "1000", "-s", "80", "-r", "3", "--continue-on-unstable", "--json", str(js), "--quiet",
                  timeout=180)
    assert res.returncode == 0, res.stderr
    level = json.loads(js.read_text())["levels"][0]
    sched = level["traffic"]["schedule"]
    assert sched["kind"] == "intervals" and sched["intervals"] == 200
    assert sched["mean_rate"] == pytest.approx(200 / (intervals.sum() / 1e6))
    lag = sched["send_lag"]
    print(f"replayed intervals: late>1ms share {lag['late_share']:.3f}, lag p50 {lag['lag_p50_us']:.0f} us, "
          f"p99 {lag['lag_p99_us']:.0f} us")
    assert lag["requests"] > 50
    assert lag["lag_p50_us"] < 50_000  # the sends follow the file (a loose bound for a shared CI core)
    seconds = sum(w["end_ns"] - w["start_ns"] for w in level["windows"][-3:]) / 1e9
    sent_rate = level["requests"]["completed"] / seconds
    assert sent_rate == pytest.approx(sched["mean_rate"], rel=0.35)


def test_ramp_reports_latency_against_offered_rate(pn: ServerProcess, tmp_path: Path) -> None:
    js = tmp_path / "ramp.json"
    res = run_cli("load", "-m", "particlenet", "-u", pn.grpc_url, "--request-rate-ramp", "10:60:6s", *FIXED,
                  "-p", "1000", "--json", str(js), timeout=120)
    assert res.returncode == 0, res.stderr
    doc = json.loads(js.read_text())
    assert doc["schema"] == "saturate.ramp/1"
    points = doc["points"]
    assert len(points) == 6
    offered = [p["offered_rps"] for p in points]
    assert offered == sorted(offered) and offered[0] < 20 < 50 < offered[-1]
    assert all(p["completed"] > 0 and p["latency_us"]["p50"] > 0 for p in points)
    assert "ramp t=" in res.stderr
