"""Record/merge speed and JSON size of loadgen.histogram (numpy) against the PyPI ``hdrhistogram``.

    python benchmarks/histogram_speed.py [N]       # hdrhistogram is optional (pip install hdrhistogram)

Prints, for N log-normal latencies (~2 ms median): seconds to record, bytes of the JSON encoding,
and the worst relative percentile error against the raw values.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from loadgen.histogram import Histogram
from loadgen.stats import as_sorted, percentile_index


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=1_000_000, help="latencies (default 1e6)")
    n = parser.parse_args().n
    lat = np.random.default_rng(0).lognormal(np.log(2e6), 0.5, n).astype(np.int64)
    raw = as_sorted(lat)
    ps = (50, 90, 95, 99, 99.9)
    t0 = time.perf_counter()
    h = Histogram.of(lat)
    t1 = time.perf_counter()
    size = len(json.dumps(h.to_dict()))
    err = max(abs(h.percentile_ns(p) - raw[percentile_index(p, n)]) / raw[percentile_index(p, n)] for p in ps)
    print(f"numpy     n={n}: record {t1 - t0:.3f} s, json {size} B, max rel err {err:.4%} "
          f"(stated {h.rel_error:.4%})")
    try:
        from hdrh.histogram import HdrHistogram
    except ImportError:
        print("hdrhistogram: not installed")
        return
    hh = HdrHistogram(1, 3_600_000_000_000, 2)
    t0 = time.perf_counter()
    for v in lat.tolist():
        hh.record_value(v)
    t1 = time.perf_counter()
    enc = hh.encode()
    err = max(abs(hh.get_value_at_percentile(p) - raw[percentile_index(p, n)]) / raw[percentile_index(p, n)]
              for p in ps)
    print(f"hdrhistogram n={n}: record {t1 - t0:.3f} s, encoded {len(enc)} B, counts array "
          f"{hh.counts_len} buckets, max rel err {err:.4%}")


if __name__ == "__main__":
    main()
