"""Statistics of the direct scan: SEM from n, items/s as total items over total time, batch parsing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scans.direct.timing import summarize_times
from scans.flags import parse_batch_sizes, powers_of_two


def test_summary_by_hand() -> None:
    times = [1_000_000, 2_000_000, 3_000_000, 4_000_000]  # 1..4 ms
    s = summarize_times(times, batch_size=8)
    assert s.n == 4
    assert s.mean_ns == 2_500_000
    std = math.sqrt(sum((t - 2.5e6) ** 2 for t in times) / 3)
    assert s.std_ns == pytest.approx(std)
    assert s.sem_ns == pytest.approx(std / 2)  # sqrt(4), computed from n
    assert s.median_ns == 2_500_000
    assert s.p95_ns == 4_000_000  # nearest rank: floor(0.95*3 + 0.5) = 3
    assert s.percentiles_ns == {50: 3_000_000, 90: 4_000_000, 95: 4_000_000, 99: 4_000_000}
    # 32 items in 10 ms
    assert s.items_per_s == pytest.approx(3200.0)
    assert s.items_per_s_sem == pytest.approx(3200.0 * (std / 2) / 2.5e6)
    assert s.batch_fps == pytest.approx(8 / 2.5e-3)
    assert s.avg_time_ns == 2_500_000


def test_items_per_s_is_not_the_mean_of_ratios() -> None:
    times = [1_000_000, 9_000_000]
    s = summarize_times(times, batch_size=1)
    mean_of_ratios = np.mean([1e9 / t for t in times])  # the seed scans' figure: 555.6/s
    assert s.items_per_s == pytest.approx(200.0)
    assert not math.isclose(s.items_per_s, float(mean_of_ratios), rel_tol=0.1)


def test_sem_shrinks_with_sqrt_n() -> None:
    rng = np.random.default_rng(1)
    small = summarize_times(list(rng.integers(900_000, 1_100_000, 25)), 1)
    big = summarize_times(list(rng.integers(900_000, 1_100_000, 2500)), 1)
    assert big.sem_ns == pytest.approx(big.std_ns / 50)
    assert small.sem_ns == pytest.approx(small.std_ns / 5)
    assert big.sem_ns < small.sem_ns


def test_async_wall_time_sets_throughput() -> None:
    # 4 calls of 2 ms each, two in flight: 4 ms wall
    s = summarize_times([2_000_000] * 4, batch_size=16, wall_ns=4_000_000)
    assert s.items_per_s == pytest.approx(4 * 16 / 4e-3)
    assert s.avg_time_ns == 1_000_000  # DLI average time = wall / iterations
    assert s.median_ns == 2_000_000  # the per-call latency stays 2 ms
    assert s.std_ns == 0.0 and s.items_per_s_sem == 0.0


@given(st.lists(st.integers(min_value=1, max_value=10**10), min_size=2, max_size=200),
       st.integers(min_value=1, max_value=4096))
def test_summary_invariants(times: list[int], batch: int) -> None:
    s = summarize_times(times, batch)
    assert s.min_ns <= s.median_ns <= s.max_ns
    assert s.min_ns <= s.p95_ns <= s.max_ns
    assert s.items_per_s == pytest.approx(len(times) * batch * 1e9 / sum(times))
    assert s.sem_ns == pytest.approx(s.std_ns / math.sqrt(len(times)))


def test_summary_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        summarize_times([], 1)
    with pytest.raises(ValueError):
        summarize_times([1, 2], 0)
    with pytest.raises(ValueError):
        summarize_times([0, 2], 1)


def test_batch_parsing() -> None:
    assert parse_batch_sizes("1,2,4") == [1, 2, 4]
    assert parse_batch_sizes(" 8 , 16") == [8, 16]
    for bad in ("", " , ", "0", "1,-2", "x", "1,,2"):
        with pytest.raises(ValueError):
            parse_batch_sizes(bad)
    assert powers_of_two("1:2048") == [2**i for i in range(12)]
    assert powers_of_two("3:40") == [4, 8, 16, 32]
    for bad in ("0:4", "8:4", "4", "a:b", "5:7"):
        with pytest.raises(ValueError):
            powers_of_two(bad)
