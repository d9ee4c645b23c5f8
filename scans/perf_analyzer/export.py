"""perf_analyzer's ``--profile-export-file`` JSON → the per-request latency arrays saturate keeps.

The export (perf_analyzer src/profile_data_exporter.cc) holds, per experiment (``{"mode":
"concurrency"|"request_rate", "value": V}``), every request of the final measurement windows with its
send ``timestamp`` and ``response_timestamps`` (ns since the epoch), and the ``window_boundaries``.
A request's latency is its last response minus its send time (perf_analyzer's own definition, also
for request-rate mode: from the actual send); a request without a response counts as failed.

:func:`read_profile_export` gives one :class:`ExportExperiment` per level, :func:`export_level` the
level's statistics computed by :mod:`loadgen.stats` exactly as for a saturate run (windows where
requests complete, throughput over the boundaries' span), and :func:`write_latency_file` the
``--latency-file`` ``.npz`` (``L{i}`` ns, ``D{i}`` duration ns, ``B{i}`` batch size) that
``saturate merge`` reads beside a run JSON.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from loadgen.histogram import level_block
from loadgen.result import (
    ClientStats,
    I64Array,
    LatencySummary,
    LevelResult,
    RequestCounts,
    Throughput,
    WindowSummary,
)
from loadgen.stats import summarize
from saturate.atomic import atomic_file
from saturate.errors import ConfigError


@dataclass(frozen=True)
class ExportExperiment:
    """One level of a profile export: its raw latencies (ns, completion order) and window edges."""

    mode: str
    value: float
    latencies_ns: I64Array
    completed_at_ns: I64Array
    failed: int
    boundaries_ns: tuple[int, ...]

    @property
    def duration_ns(self) -> int:
        b = self.boundaries_ns
        return b[-1] - b[0] if len(b) >= 2 else 0


def _experiment(doc: dict[str, Any]) -> ExportExperiment:
    exp = doc.get("experiment") or {}
    sent: list[int] = []
    done: list[int] = []
    failed = 0
    for req in doc.get("requests") or []:
        responses = req.get("response_timestamps") or []
        if not responses:
            failed += 1
            continue
        sent.append(int(req["timestamp"]))
        done.append(int(responses[-1]))
    start, end = np.asarray(sent, np.int64), np.asarray(done, np.int64)
    order = np.argsort(end, kind="stable")
    return ExportExperiment(
        mode=str(exp.get("mode", "concurrency")),
        value=float(exp.get("value", 0)),
        latencies_ns=(end - start)[order],
        completed_at_ns=end[order],
        failed=failed,
        boundaries_ns=tuple(int(b) for b in doc.get("window_boundaries") or []),
    )


def read_profile_export(path: str | os.PathLike[str]) -> list[ExportExperiment]:
    """The experiments of a perf_analyzer profile export, in file order (one-line error if unreadable)."""
    try:
        doc = json.loads(Path(path).read_text())
        return [_experiment(e) for e in doc["experiments"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a perf_analyzer profile export ({exc})") from None


def _windows(exp: ExportExperiment, batch_size: int, percentile: int | None) -> list[WindowSummary]:
    out: list[WindowSummary] = []
    b = exp.boundaries_ns
    for lo, hi in itertools.pairwise(b):
        sel = (exp.completed_at_ns >= lo) & (exp.completed_at_ns < hi)
        lat = exp.latencies_ns[sel]
        n = int(lat.size)
        out.append(WindowSummary(start_ns=lo, end_ns=hi, completed=n, failed=0,
                                 infer_per_s=n * batch_size * 1e9 / (hi - lo) if hi > lo else 0.0,
                                 latency=summarize(lat, percentile)))
    return out


def export_level(
    exp: ExportExperiment, batch_size: int = 1, percentile: int | None = None,
    base: LevelResult | None = None,
) -> LevelResult:
    """The level's latency, counts, windows and throughput from the export's raw timestamps.

    ``base`` (the level read from perf_analyzer's CSV and console) keeps everything the export lacks
    (server statistics, stability, verdict); without one the level is built from the export alone.
    """
    lat = summarize(exp.latencies_ns, percentile) or LatencySummary(percentiles_ns={}, count=0)
    n = int(exp.latencies_ns.size)
    dur = exp.duration_ns
    infer = n * batch_size * 1e9 / dur if dur > 0 else 0.0
    tput = Throughput(infer_per_s=infer, requests_per_s=infer / batch_size if batch_size else None)
    counts = RequestCounts(completed=n, failed=exp.failed)
    windows = _windows(exp, batch_size, percentile)
    if base is None:
        rate = exp.mode == "request_rate"
        base = LevelResult(
            mode="request_rate" if rate else "concurrency", concurrency=None if rate else int(exp.value),
            request_rate=exp.value if rate else None, batch_size=batch_size, stable=True,
            throughput=tput, latency=lat, client=ClientStats(send_ns=0, recv_ns=0),
        )
    per_window = [exp.latencies_ns[(exp.completed_at_ns >= lo) & (exp.completed_at_ns < hi)]
                  for lo, hi in itertools.pairwise(exp.boundaries_ns)] or [exp.latencies_ns]
    extras = {**base.extras, "histogram": level_block(per_window)}  # merges like a saturate level's
    return replace(base, latency=lat, requests=counts, windows=windows, throughput=tput, extras=extras,
                   percentile=percentile if percentile is not None else base.percentile)


def attach_export(
    levels: Sequence[LevelResult], experiments: Sequence[ExportExperiment], percentile: int | None = None
) -> tuple[list[LevelResult], list[I64Array], list[int]]:
    """Each level with its experiment's numbers (matched by mode and value), its raw latencies and
    measured duration; a level the export lacks (perf_analyzer did not record it) keeps its own
    numbers and gets an empty array."""
    out: list[LevelResult] = []
    lats: list[I64Array] = []
    durs: list[int] = []
    for lv in levels:
        exp = next((e for e in experiments if e.mode == lv.mode and abs(e.value - lv.value) < 1e-6), None)
        if exp is None or not lv.stable:
            out.append(lv)
            lats.append(np.zeros(0, np.int64))
            durs.append(0)
            continue
        out.append(export_level(exp, lv.batch_size or 1, percentile, base=lv))
        lats.append(exp.latencies_ns)
        durs.append(exp.duration_ns)
    return out, lats, durs


def write_latency_file(
    path: str | os.PathLike[str], latencies: Sequence[I64Array], durations_ns: Sequence[int],
    batch_sizes: Sequence[int],
) -> None:
    """``saturate load --latency-file``'s format, written atomically."""
    arrays: dict[str, I64Array] = {}
    for i, (lat, dur, b) in enumerate(zip(latencies, durations_ns, batch_sizes, strict=True)):
        arrays[f"L{i}"] = np.asarray(lat, np.int64)
        arrays[f"D{i}"] = np.array(dur, np.int64)
        arrays[f"B{i}"] = np.array(b, np.int64)
    with atomic_file(path, "wb") as f:
        np.savez(f, **arrays)
