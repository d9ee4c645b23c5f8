"""Direct-scan results on disk: ``direct.json`` (schema ``saturate.run/1``, levels with mode ``direct``)
and ``direct.csv`` (one row per batch size).

A direct level carries the standard level keys (built with :class:`loadgen.result.LevelResult`, so
any reader of the run JSON can load it: concurrency = batches in flight, no network, no server) plus a
``direct`` block with what only a direct scan has: mean/SEM/std/median/p95 in µs, items/s and its SEM,
the DLI figures, peak device memory, and the status (``ok`` or ``oom``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loadgen.extras_csv import write_extra_csv
from loadgen.repeats import aggregate
from loadgen.result import (
    SCHEMA,
    ClientStats,
    LatencySummary,
    LevelResult,
    RequestCounts,
    Throughput,
    Verdict,
    write_json_atomic,
)
from saturate.atomic import write_atomic
from saturate.version import saturate_version
from scans.direct.timing import TimingSummary

JSON_NAME = "direct.json"
CSV_NAME = "direct.csv"
CSV_HEADER: tuple[str, ...] = (
    "batch_size", "mode", "in_flight", "status", "trials", "mean_us", "sem_us", "std_us", "median_us",
    "p95_us", "items_per_s", "items_per_s_sem", "avg_time_us", "fps", "batch_fps", "peak_mem_bytes",
)


@dataclass(frozen=True)
class DirectLevel:
    """One batch size of a direct scan; ``summary`` is None when it ran out of memory."""

    batch_size: int
    mode: str
    in_flight: int
    summary: TimingSummary | None = None
    status: str = "ok"
    error: str | None = None
    peak_mem_bytes: int | None = None
    rss_bytes: int | None = None
    warmup_trials: int = 0
    warmup_ns: int = 0
    trials: tuple[DirectLevel, ...] = ()  # --repeats: every repeat of this batch size (loadgen.repeats)

    def direct_block(self) -> dict[str, Any]:
        block: dict[str, Any] = {
            "mode": self.mode,
            "in_flight": self.in_flight,
            "status": self.status,
            "error": self.error,
            "warmup_trials": self.warmup_trials,
            "warmup_seconds": round(self.warmup_ns / 1e9, 6),
            "peak_mem_bytes": self.peak_mem_bytes,
            "rss_bytes": self.rss_bytes,
        }
        if self.summary is not None:
            block |= self.summary.to_dict()
            block["fps"] = self.summary.items_per_s  # DLI: FPS = n·b / total time
        return block

    def to_dict(self) -> dict[str, Any]:
        """The level as the run JSON keeps it (standard keys + ``direct``)."""
        s = self.summary
        if s is None:
            latency = LatencySummary(percentiles_ns={})
            throughput = Throughput(infer_per_s=0.0, requests_per_s=0.0)
            completed = 0
        else:
            latency = LatencySummary(
                percentiles_ns=dict(s.percentiles_ns),
                avg_ns=int(s.mean_ns), std_ns=int(s.std_ns), min_ns=int(s.min_ns), max_ns=int(s.max_ns),
                count=s.n,
            )
            throughput = Throughput(infer_per_s=s.items_per_s, requests_per_s=s.items_per_s / self.batch_size)
            completed = s.n
        level = LevelResult(
            mode="direct",
            concurrency=self.in_flight,
            request_rate=None,
            batch_size=self.batch_size,
            stable=s is not None,
            stability="stable" if s is not None else "interrupted",
            throughput=throughput,
            latency=latency,
            client=ClientStats(send_ns=0, recv_ns=0),
            requests=RequestCounts(completed=completed, failed=0 if s is not None else 1,
                                   errors={} if s is not None else {"OUT_OF_MEMORY": 1}),
            verdict=Verdict(valid=s is not None,
                            reasons=[] if s is not None else [f"out of memory: {self.error}"]),
        )
        d = level.to_dict()
        if self.trials:  # the means over repeats, every trial and the intervals (loadgen.repeats)
            each = [LevelResult.from_dict(replace(t, trials=()).to_dict()) for t in self.trials]
            d = aggregate(each).to_dict()
        d["direct"] = self.direct_block()
        return d


def run_document(env: dict[str, Any], config: dict[str, Any], levels: list[DirectLevel]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "tool": {"name": "saturate", "version": saturate_version(), "command": "scan direct"},
        "env": env,
        "config": config,
        "levels": [lv.to_dict() for lv in levels],
    }


def csv_text(levels: list[DirectLevel]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for lv in levels:
        row = {"batch_size": lv.batch_size} | lv.direct_block()
        w.writerow(["" if row.get(k) is None else row[k] for k in CSV_HEADER])
    return buf.getvalue()


def write_outputs(
    out_dir: Path, env: dict[str, Any], config: dict[str, Any], levels: list[DirectLevel]
) -> None:
    """Rewrite ``direct.json`` (atomically) and ``direct.csv`` with every level so far."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / JSON_NAME, run_document(env, config, levels))
    write_atomic(out_dir / CSV_NAME, csv_text(levels))
    write_extra_csv(out_dir / CSV_NAME, [LevelResult.from_dict(lv.to_dict()) for lv in levels])
