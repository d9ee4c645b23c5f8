"""loadgen.histogram: bucket layout, error bound, merge of shards against pooled raw latencies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from loadgen.histogram import Histogram, level_block, merge, merge_blocks, summary_of
from loadgen.stats import as_sorted, percentile_index

PS = (1, 10, 25, 50, 75, 90, 95, 99, 99.9)


def _raw_p(sorted_ns: np.ndarray, p: float) -> int:
    return int(sorted_ns[percentile_index(p, sorted_ns.size)])


@pytest.mark.parametrize("bits", [4, 7, 10])
def test_every_value_within_the_stated_error(bits: int) -> None:
    v = np.unique(np.concatenate([np.arange(0, 5000), np.geomspace(5000, 2**50, 4000).astype(np.int64)]))
    for x in v[:: max(1, v.size // 2000)]:
        h = Histogram.of([int(x)], bits)
        got = h.percentile_ns(50)
        assert abs(got - int(x)) <= h.rel_error * int(x), (bits, int(x), got)


def test_merge_of_four_shards_matches_pooled_raw_within_error() -> None:
    rng = np.random.default_rng(7)
    shards = [rng.lognormal(np.log(m), s, n).astype(np.int64) for m, s, n in
              ((2e6, 0.3, 40_000), (2.5e6, 0.5, 25_000), (1.5e6, 0.2, 60_000), (9e6, 0.8, 5_000))]
    merged = merge(Histogram.of(s) for s in shards)
    pooled = as_sorted(np.concatenate(shards))
    assert merged.total == pooled.size
    for p in PS:
        raw = _raw_p(pooled, p)
        assert abs(merged.percentile_ns(p) - raw) <= merged.rel_error * raw, p
    # merging is exactly the histogram of the pooled values
    direct = Histogram.of(pooled)
    assert np.array_equal(direct.index, merged.index) and np.array_equal(direct.count, merged.count)


def test_json_round_trip_is_compact_and_exact() -> None:
    lat = np.random.default_rng(1).lognormal(np.log(3e6), 0.4, 1_000_000).astype(np.int64)
    h = Histogram.of(lat)
    text = json.dumps(h.to_dict())
    back = Histogram.from_dict(json.loads(text))
    assert np.array_equal(back.index, h.index) and np.array_equal(back.count, h.count)
    assert len(text) < 8000  # a million requests in a few kB


def test_level_block_and_summary() -> None:
    w1 = np.array([1_000_000, 2_000_000, 3_000_000], np.int64)
    w2 = np.array([4_000_000], np.int64)
    block = level_block([w1, w2])
    assert len(block["windows"]) == 2
    both = merge_blocks([block, level_block([w2])])
    assert both is not None
    s = summary_of(Histogram.from_dict(both["level"]), (50, 95))
    assert s.count == 5
    assert abs(s.percentiles_ns[50] - 3_000_000) <= 3_000_000 / 128
    assert merge_blocks([block, None]) is None


def test_different_precisions_do_not_merge() -> None:
    with pytest.raises(ValueError, match="different precision"):
        merge([Histogram.of([5], 7), Histogram.of([5], 8)])
    with pytest.raises(ValueError):
        Histogram.empty().percentile_ns(50)


def test_saturate_merge_of_four_ranks_from_histograms_alone(tmp_path: Path) -> None:
    """Four rank JSONs with no .npz: ``saturate merge`` pools their histograms; percentiles within error."""
    import dataclasses

    from loadgen.result import ClientStats, LatencySummary, LevelResult, RunResult, Throughput
    from saturate.cli import main

    rng = np.random.default_rng(3)
    raws = []
    for r in range(4):
        lat = rng.lognormal(np.log(2e6 * (1 + r / 3)), 0.4, 20_000 + 5_000 * r).astype(np.int64)
        raws.append(lat)
        lv = LevelResult(mode="concurrency", concurrency=2, request_rate=None, batch_size=1, stable=True,
                         throughput=Throughput(1000.0, 1000.0), latency=LatencySummary(percentiles_ns={}),
                         client=ClientStats(0, 0), percentile=95)
        half = lat.size // 2
        lv = dataclasses.replace(lv, extras={"histogram": level_block([lat[:half], lat[half:]])})
        RunResult(env={"host": f"node{r}"}, levels=[lv]).write(tmp_path / f"rank{r}.json")
    out = tmp_path / "merged.json"
    assert main(["merge", "-o", str(out), *(str(tmp_path / f"rank{r}.json") for r in range(4))]) == 0
    merged = RunResult.read(out).levels[0]
    pooled = as_sorted(np.concatenate(raws))
    rel = Histogram.from_dict(merged.extras["histogram"]["level"]).rel_error
    assert merged.latency.count == pooled.size and merged.throughput.infer_per_s == 4000.0
    for p in (50, 90, 95, 99):
        raw = _raw_p(pooled, p)
        # JSON keeps µs (truncated): allow the stated error plus 1 µs
        assert abs(merged.latency.percentiles_ns[p] - raw) <= rel * raw + 1000, p
