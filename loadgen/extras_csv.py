"""The CSV's extra file: what perf_analyzer's CSV has no column for, one row per level.

``results.csv`` (byte-compatible with perf_analyzer) gets ``results.extra.csv`` beside it: the level
(mode, concurrency, request rate, batch), the repeats and the 95% interval of throughput and each
percentile (``loadgen.repeats``), and the energy (``loadgen.energy``). A missing value is an empty
cell, never 0.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadgen.result import LevelResult
from saturate.atomic import atomic_file

PERCENTILES = (50, 90, 95, 99)


def extra_path(csv_path: str | os.PathLike[str]) -> Path:
    p = Path(csv_path)
    return p.with_name(f"{p.stem}.extra.csv")


def _cell(v: Any) -> str:
    if v is None:
        return ""
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def header() -> list[str]:
    cols = ["mode", "concurrency", "request_rate", "batch_size", "stable", "repeats",
            "infer_per_s", "infer_per_s_ci_low", "infer_per_s_ci_high"]
    for p in PERCENTILES:
        cols += [f"p{p}_us", f"p{p}_us_ci_low", f"p{p}_us_ci_high"]
    return [*cols, "power_w", "infer_per_j", "j_per_infer", "energy_source"]


def row(level: LevelResult) -> list[str]:
    rep = level.extras.get("repeats") or {}
    st = rep.get("stats") or {}
    en = level.extras.get("energy") or {}

    def ci(key: str, headline: float | None) -> list[Any]:
        s = st.get(key) or {}
        return [s.get("mean", headline) if s else headline, s.get("ci_low"), s.get("ci_high")]

    out: list[Any] = [level.mode, level.concurrency, level.request_rate, level.batch_size,
                      int(level.stable), rep.get("n", 1)]
    out += ci("infer_per_s", level.throughput.infer_per_s)
    for p in PERCENTILES:
        ns = level.latency.percentiles_ns.get(p)
        out += ci(f"p{p}_us", None if ns is None else ns / 1000.0)
    out += [en.get("power_w"), en.get("infer_per_j"), en.get("j_per_infer"), en.get("source")]
    return [_cell(v) for v in out]


def write_extra_csv(csv_path: str | os.PathLike[str], levels: Sequence[LevelResult]) -> Path:
    """Write the extra file beside ``csv_path`` (atomically) and return its path."""
    target = extra_path(csv_path)
    with atomic_file(target, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header())
        for lv in levels:
            w.writerow(row(lv))
    return target
