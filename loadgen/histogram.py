"""Mergeable log-linear latency histograms (HdrHistogram's bucket layout, in numpy).

Layout (HdrHistogram, project HdrHistogram/HdrHistogram ``AbstractHistogram``): with ``bits`` = m,
values below 2^m (ns) are counted exactly; a value v ≥ 2^m falls in a bucket of width 2^k where
k = floor(log2 v) - m + 1, so v >> k lies in [2^(m-1), 2^m) and the bucket's width is at most
2^-(m-1) of its lower edge. A percentile is the order statistic perf_analyzer would pick
(``loadgen.stats.percentile_index``) reported as its bucket's midpoint, so it is within
``rel_error = 2^-m`` of the raw value (m = 7: 0.78%, the default; m = 10: 0.098%, HdrHistogram's
"3 significant digits"). Histograms of windows, processes, Slurm ranks or repeated runs merge by
adding counts, and the percentiles of the merge keep that bound against the pooled raw latencies.

Why numpy and not the PyPI ``hdrhistogram`` package (0.10.8), measured with
``python benchmarks/histogram_speed.py 1000000`` (10^6 log-normal latencies, 2-core machine shared
with other jobs): recording is one vectorised ``np.unique`` instead of one Python call per request
(``record_value``): 0.20 s against 1.55 s. The JSON form is 3.3 kB (two readable integer lists, only
the non-empty buckets) against hdrhistogram's 1.7 kB compressed base64 blob, which needs the package
to decode and preallocates 4608 buckets in memory; both depend on the latency spread, not on the
request count. Worst percentile error on that sample: 0.40% here (stated 0.78%), 0.69% there (2
significant digits). Faster, readable and no new dependency outweigh 1.6 kB per level.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loadgen.summaries import LatencySummary

DEFAULT_BITS = 7
I64 = npt.NDArray[np.int64]


def _index(values: I64, bits: int) -> I64:
    v = np.maximum(np.asarray(values, dtype=np.int64), 0)
    half = 1 << (bits - 1)
    # floor(log2 v) for v >= 1 (exact for integers, via frexp's exponent)
    exp = np.frexp(np.maximum(v, 1).astype(np.float64))[1].astype(np.int64) - 1
    # float64 rounding can misplace values just below a power of two above 2^53: fix with integer checks
    k = np.maximum(exp - bits + 1, 0)
    sub = v >> k
    k = np.where(sub >= (1 << bits), k + 1, np.where((sub < half) & (k > 0), k - 1, k))
    sub = v >> k
    big = v >= (1 << bits)
    return np.where(big, (k + 1) * half + (sub - half), v).astype(np.int64)


def _bounds(index: I64, bits: int) -> tuple[I64, I64]:
    """[low, high) of each bucket index."""
    half = 1 << (bits - 1)
    idx = np.asarray(index, dtype=np.int64)
    exact = idx < (1 << bits)
    k = np.maximum(idx // half - 1, 0)
    sub = idx - (k + 1) * half + half
    low = np.where(exact, idx, sub << k)
    width = np.where(exact, 1, np.left_shift(np.int64(1), k))
    return low.astype(np.int64), (low + width).astype(np.int64)


@dataclass(frozen=True)
class Histogram:
    """Counts per non-empty bucket (``index`` sorted ascending, ``count`` > 0) at ``bits`` of precision."""

    bits: int
    index: I64
    count: I64

    @property
    def rel_error(self) -> float:
        """The stated bound: any percentile is within this fraction of the raw order statistic."""
        return float(2.0 ** -self.bits)

    @property
    def total(self) -> int:
        return int(self.count.sum())

    @classmethod
    def empty(cls, bits: int = DEFAULT_BITS) -> Histogram:
        return cls(bits, np.zeros(0, np.int64), np.zeros(0, np.int64))

    @classmethod
    def of(cls, latencies_ns: I64 | Sequence[int], bits: int = DEFAULT_BITS) -> Histogram:
        """The histogram of raw latencies (ns)."""
        if not 2 <= bits <= 20:
            raise ValueError(f"histogram precision bits must be within 2..20, got {bits}")
        idx, cnt = np.unique(_index(np.asarray(latencies_ns, dtype=np.int64), bits), return_counts=True)
        return cls(bits, idx.astype(np.int64), cnt.astype(np.int64))

    def __add__(self, other: Histogram) -> Histogram:
        return merge([self, other])

    def percentile_ns(self, p: float) -> int:
        """The p-th percentile (perf_analyzer's nearest-rank index), as its bucket's midpoint."""
        n = self.total
        if n == 0:
            raise ValueError("percentile of an empty histogram")
        rank = int((p / 100.0) * (n - 1) + 0.5)
        pos = int(np.searchsorted(np.cumsum(self.count), rank, side="right"))
        low, high = _bounds(self.index[pos : pos + 1], self.bits)
        return int((int(low[0]) + int(high[0]) - 1) // 2) if high[0] - low[0] > 1 else int(low[0])

    def percentiles_ns(self, ps: Iterable[float]) -> dict[float, int]:
        return {p: self.percentile_ns(p) for p in ps}

    def mean_ns(self) -> float:
        low, high = _bounds(self.index, self.bits)
        mid = (low + high - 1) / 2.0
        return float((mid * self.count).sum() / max(self.total, 1))

    def to_dict(self) -> dict[str, Any]:
        """Compact JSON: index delta-coded (non-empty buckets only), counts as they are."""
        deltas = np.diff(self.index, prepend=0) if self.index.size else self.index
        return {"bits": self.bits, "rel_error": self.rel_error,
                "index": [int(x) for x in deltas], "count": [int(x) for x in self.count]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Histogram:
        idx = np.cumsum(np.asarray(d.get("index") or [], dtype=np.int64))
        cnt = np.asarray(d.get("count") or [], dtype=np.int64)
        if idx.shape != cnt.shape:
            raise ValueError("histogram index and count differ in length")
        return cls(int(d["bits"]), idx, cnt)


def merge(hists: Iterable[Histogram]) -> Histogram:
    """Add counts bucket by bucket (all histograms must share ``bits``)."""
    hs = list(hists)
    if not hs:
        return Histogram.empty()
    bits = {h.bits for h in hs}
    if len(bits) != 1:
        raise ValueError(f"histograms of different precision cannot merge: bits {sorted(bits)}")
    idx = np.concatenate([h.index for h in hs])
    cnt = np.concatenate([h.count for h in hs])
    uniq, inv = np.unique(idx, return_inverse=True)
    out = np.zeros(uniq.size, np.int64)
    np.add.at(out, inv, cnt)
    return Histogram(hs[0].bits, uniq.astype(np.int64), out)


def level_block(windows: Sequence[I64], bits: int = DEFAULT_BITS) -> dict[str, Any]:
    """The ``histogram`` block of a level: one histogram per merged window and their sum."""
    per = [Histogram.of(w, bits) for w in windows]
    return {"level": merge(per).to_dict() if per else Histogram.empty(bits).to_dict(),
            "windows": [h.to_dict() for h in per]}


def merge_blocks(blocks: Sequence[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """The ``histogram`` block of several levels pooled (ranks, repeats); None unless all have one."""
    hists = [of_level(b) for b in blocks]
    if not hists or any(h is None for h in hists):
        return None
    return {"level": merge(h for h in hists if h is not None).to_dict(), "windows": []}


def summary_of(h: Histogram, percentiles: Iterable[int]) -> LatencySummary:
    """A LatencySummary from a histogram (percentiles within ``h.rel_error``; no std)."""
    if h.total == 0:
        return LatencySummary(percentiles_ns={}, count=0)
    low, high = _bounds(h.index, h.bits)
    return LatencySummary(percentiles_ns={int(p): h.percentile_ns(p) for p in sorted(set(percentiles))},
                          avg_ns=int(h.mean_ns()), min_ns=int(low[0]), max_ns=int(high[-1]) - 1,
                          count=h.total)


def of_level(block: Mapping[str, Any] | None) -> Histogram | None:
    """The level histogram of a level's ``histogram`` block (None when absent)."""
    if not block or not block.get("level"):
        return None
    return Histogram.from_dict(block["level"])
