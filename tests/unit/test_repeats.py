"""loadgen.repeats: the t-interval against scipy and by hand, round-robin order, aggregation."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from loadgen.repeats import aggregate, order, t_interval
from loadgen.result import ClientStats, LatencySummary, LevelResult, Throughput


def test_t_interval_matches_scipy_and_hand() -> None:
    xs = [1010.0, 985.0, 1002.0, 990.0, 1013.0]
    got = t_interval(xs)
    lo, hi = stats.t.interval(0.95, len(xs) - 1, loc=stats.tmean(xs), scale=stats.sem(xs))
    assert got["ci_low"] == pytest.approx(lo) and got["ci_high"] == pytest.approx(hi)
    # by hand: mean 1000, s = sqrt(598/4) (deviations 10, -15, 2, -10, 13), t(0.975, 4) = 2.776445
    assert got["mean"] == pytest.approx(1000.0)
    assert got["ci_high"] - 1000.0 == pytest.approx(2.776445 * math.sqrt(598 / 4) / math.sqrt(5), rel=1e-6)


def test_t_interval_one_sample_has_no_interval() -> None:
    assert t_interval([5.0]) == {"mean": 5.0, "std": None, "ci_low": None, "ci_high": None}
    assert t_interval([])["mean"] is None


def test_order_is_round_robin() -> None:
    assert order([1, 2, 4], 2) == [(0, 1), (0, 2), (0, 4), (1, 1), (1, 2), (1, 4)]


def _level(thr: float, p95_ms: float) -> LevelResult:
    pcts = {50: int(p95_ms * 5e5), 95: int(p95_ms * 1e6)}
    lat = LatencySummary(percentiles_ns=pcts, avg_ns=int(p95_ms * 6e5))
    return LevelResult(mode="concurrency", concurrency=2, request_rate=None, batch_size=1, stable=True,
                       throughput=Throughput(thr, thr), latency=lat, client=ClientStats(0, 0))


def test_aggregate_means_and_block() -> None:
    agg = aggregate([_level(100, 10), _level(110, 12), _level(90, 8)])
    assert agg.throughput.infer_per_s == pytest.approx(100.0)
    assert agg.latency.percentiles_ns[95] == 10_000_000
    block = agg.extras["repeats"]
    assert block["n"] == 3 and len(block["trials"]) == 3
    st = block["stats"]["infer_per_s"]
    assert st["ci_low"] < 100 < st["ci_high"]
    assert block["stats"]["p95_us"]["mean"] == pytest.approx(10_000.0)
    d = agg.to_dict()
    assert LevelResult.from_dict(d).extras["repeats"]["n"] == 3
