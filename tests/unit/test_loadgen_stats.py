"""perf_analyzer's latency statistics: percentile index, integer mean, sample std, merge invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from loadgen.stats import mean_std_ns, merge_sorted, percentile_index, percentile_set, summarize

lat_lists = st.lists(st.integers(min_value=1, max_value=10**10), min_size=1, max_size=300)


def test_percentile_index_known_values() -> None:
    # floor(p/100*(n-1) + 0.5): nearest rank, halves round up, no interpolation
    assert percentile_index(50, 1) == 0
    assert percentile_index(50, 2) == 1  # 0.5 + 0.5
    assert percentile_index(50, 4) == 2  # 1.5 + 0.5
    assert percentile_index(90, 10) == 8  # 8.1 + 0.5
    assert percentile_index(95, 10) == 9  # 8.55 + 0.5
    assert percentile_index(99, 100) == 98  # 98.01 + 0.5
    assert percentile_index(99, 1000) == 989  # 989.01 + 0.5
    with pytest.raises(ValueError):
        percentile_index(50, 0)


def test_percentile_set_inserts_extra_in_sorted_place() -> None:
    assert percentile_set() == (50, 90, 95, 99)
    assert percentile_set(85) == (50, 85, 90, 95, 99)
    assert percentile_set(95) == (50, 90, 95, 99)
    with pytest.raises(ValueError):
        percentile_set(100)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(min_value=1, max_value=5000), p=st.integers(min_value=1, max_value=99))
@example(n=426, p=58)  # 0.58 * 425 = 246.49999999999997 in doubles: index 246, as perf_analyzer computes it
def test_percentile_index_matches_numpy_nearest_off_ties(n: int, p: int) -> None:
    """Away from exact .5 ties, PA's index is numpy's 'nearest' rank. On exact ties PA's double
    arithmetic (``p / 100.0 * (n - 1) + 0.5``) rounds up unless the product lands just below the half."""
    idx = percentile_index(p, n)
    assert 0 <= idx < n
    h = p / 100.0 * (n - 1)
    data = np.arange(n, dtype=np.int64)
    nearest = int(np.percentile(data, p, method="nearest"))
    if abs(h - math.floor(h) - 0.5) > 1e-9:
        assert idx == nearest
    else:
        assert idx in (math.floor(h), math.floor(h) + 1)


def test_mean_std_like_perf_analyzer() -> None:
    lat = np.array([1000, 2000, 4000], dtype=np.int64)
    avg, std = mean_std_ns(lat)
    assert avg == 2333  # integer mean
    # deviations from the integer mean: -1333, -333, 1667; sum sq = 4666667 -> //2 = 2333333 -> isqrt
    assert std == math.isqrt((1333**2 + 333**2 + 1667**2) // 2) == 1527
    assert mean_std_ns(np.array([5], dtype=np.int64)) == (5, None)


def test_std_exact_for_huge_sums() -> None:
    """Σd² beyond int64 (PA's uint64 would wrap) stays exact."""
    lat = np.array([0, 8 * 10**9] * 5, dtype=np.int64)  # d = ±4e9 ns, Σd² = 1.6e20 > 2**63
    avg, std = mean_std_ns(lat)
    assert avg == 4 * 10**9
    n = lat.size
    assert std == math.isqrt(n * 16 * 10**18 // (n - 1))


@settings(max_examples=100, deadline=None)
@given(lat_lists)
def test_std_matches_numpy_sample_std(values: list[int]) -> None:
    arr = np.array(values, dtype=np.int64)
    avg, std = mean_std_ns(arr)
    assert avg == sum(values) // len(values)
    if len(values) == 1:
        assert std is None
    else:
        exact = math.isqrt(sum((v - avg) ** 2 for v in values) // (len(values) - 1))
        assert std == exact
        assert abs(std - float(np.std(arr, ddof=1))) <= 1 + 1e-9 * float(np.std(arr, ddof=1)) + abs(
            avg - float(np.mean(arr))
        )


@settings(max_examples=100, deadline=None)
@given(lat_lists, st.integers(min_value=1, max_value=99))
def test_summary_percentiles_are_sorted_elements(values: list[int], extra: int) -> None:
    s = summarize(values, extra)
    assert s is not None
    srt = sorted(values)
    assert s.count == len(values) and s.min_ns == srt[0] and s.max_ns == srt[-1]
    ps = sorted(s.percentiles_ns)
    assert ps == sorted({50, 90, 95, 99, extra})
    for p in ps:
        assert s.percentiles_ns[p] == srt[percentile_index(p, len(values))]
    vals = [s.percentiles_ns[p] for p in ps]
    assert vals == sorted(vals)


@settings(max_examples=60, deadline=None)
@given(st.lists(lat_lists, min_size=1, max_size=4), st.randoms(use_true_random=False))
def test_merge_is_order_independent_and_pools(parts: list[list[int]], rnd: object) -> None:
    arrays = [np.array(p, dtype=np.int64) for p in parts]
    shuffled = list(arrays)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    merged = merge_sorted(arrays)
    assert merged.tolist() == sorted(v for p in parts for v in p)
    assert summarize(merged, presorted=True) == summarize(np.concatenate(shuffled))


def test_summary_of_nothing_is_none() -> None:
    assert summarize([]) is None
