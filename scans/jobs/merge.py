"""``saturate merge``: several client ranks' results of one load → one run.

Each rank is a run JSON (``saturate load --json``) with its raw latencies beside it
(``--latency-file``, same stem ``.npz``: per level i ``L{i}`` int64 ns, ``D{i}`` duration ns,
``B{i}`` batch size), or a directory of such files (one per level, taken in natural name order).
Level i of every rank merges into level i of the result: counts and throughputs are **summed**,
the concurrency (or request rate) is the sum of the ranks' shares, and the latency statistics come
from the ranks' raw latencies pooled — never averages of averages. Without the .npz, the levels'
histograms (``loadgen.histogram``, in every run JSON) merge by adding counts and give the
percentiles within their stated error; the merged level carries the pooled histogram either way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from loadgen.histogram import Histogram, merge_blocks, summary_of
from loadgen.result import (
    ClientStats,
    I64Array,
    LatencySummary,
    LevelResult,
    RequestCounts,
    RunResult,
    Saturation,
    Stability,
    Throughput,
    Verdict,
)
from loadgen.stability import merged
from loadgen.stats import percentile_set, summarize
from saturate.errors import ConfigError

#: Ranks whose measured spans overlap less than this fraction did not load the server together.
MIN_OVERLAP = 0.9
_EPOCH_NS = 10**18  # window edges above this are wall-clock (time_ns) and comparable across hosts


@dataclass(frozen=True)
class RankRun:
    """One rank: its source files, its levels and each level's raw latencies."""

    source: str
    runs: list[RunResult]
    levels: list[LevelResult]
    latencies: list[I64Array]


def _natural(path: Path) -> list[object]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def load_rank(path: Path) -> RankRun:
    """Read a rank from a run JSON (+ its .npz) or a directory of them (one rank, levels in order)."""
    files = sorted(path.glob("*.json"), key=_natural) if path.is_dir() else [path]
    if not files:
        raise ConfigError(f"{path}: no run JSON files in this directory")
    runs: list[RunResult] = []
    levels: list[LevelResult] = []
    lats: list[I64Array] = []
    for f in files:
        if not f.is_file():
            raise ConfigError(f"{f}: no such file")
        try:
            run = RunResult.read(f)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{f}: not a saturate run JSON ({type(exc).__name__}: {exc})") from None
        npz = f.with_suffix(".npz")
        if not npz.is_file() and run.levels and all(lv.extras.get("histogram") for lv in run.levels):
            lats += [np.zeros(0, np.int64) for _ in run.levels]  # the histograms carry the latencies
            runs.append(run)
            levels += run.levels
            continue
        if not npz.is_file():
            raise ConfigError(
                f"{f}: no latency file {npz.name} beside it; rerun saturate load with --latency-file"
            )
        with np.load(npz) as data:
            for i in range(len(run.levels)):
                if f"L{i}" not in data:
                    raise ConfigError(f"{npz}: no array L{i} for level {i}")
                lats.append(np.asarray(data[f"L{i}"], dtype=np.int64))
        runs.append(run)
        levels += run.levels
    return RankRun(str(path), runs, levels, lats)


def _span(level: LevelResult, same_clock: bool) -> tuple[int, int] | None:
    wins = merged(level.windows)  # the windows the level reports (loadgen/stability.py)
    if not wins or (min(w.start_ns for w in wins) < _EPOCH_NS and not same_clock):
        return None
    return min(w.start_ns for w in wins), max(w.end_ns for w in wins)


def _overlap(levels: Sequence[LevelResult], same_clock: bool) -> float | None:
    """Common fraction of the ranks' measured spans (last 3 windows); None when clocks differ."""
    spans = [_span(lv, same_clock) for lv in levels]
    if any(s is None for s in spans):
        return None
    starts = [s[0] for s in spans if s is not None]
    ends = [s[1] for s in spans if s is not None]
    common = min(ends) - max(starts)
    longest = max(e - s for s, e in zip(starts, ends, strict=True))
    return max(0.0, common / longest) if longest > 0 else None


def _wavg(values: Sequence[int | float | None], weights: Sequence[int]) -> float | None:
    pairs = [(v, w) for v, w in zip(values, weights, strict=True) if v is not None and w > 0]
    total = sum(w for _, w in pairs)
    return sum(float(v) * w for v, w in pairs) / total if total else None


def merge_level(
    levels: Sequence[LevelResult], latencies: Sequence[I64Array], same_clock: bool = False
) -> LevelResult:
    """One level from the ranks' same level (see module doc).

    ``same_clock``: the ranks ran on one host, so their monotonic window edges can be compared and a
    level whose ranks measured together less than MIN_OVERLAP of the time is flagged invalid.
    """
    first = levels[0]
    for lv in levels[1:]:
        if lv.mode != first.mode or lv.batch_size != first.batch_size:
            raise ConfigError(
                f"ranks disagree on level {first.value:g}: mode/batch {lv.mode}/{lv.batch_size} vs "
                f"{first.mode}/{first.batch_size}; merge results of the same scan only"
            )
    pooled = np.concatenate(list(latencies)) if latencies else np.zeros(0, np.int64)
    latency = summarize(pooled, first.percentile) or LatencySummary(percentiles_ns={}, count=0)
    hist = merge_blocks([lv.extras.get("histogram") for lv in levels])
    if pooled.size == 0 and hist is not None:  # no raw latencies: the pooled histogram (within its error)
        latency = summary_of(Histogram.from_dict(hist["level"]), percentile_set(first.percentile))
    pairs = zip(levels, latencies, strict=True)
    done = [lv.requests.completed if lv.requests else int(lat.size) for lv, lat in pairs]
    reqs = [lv.requests or RequestCounts(completed=d) for lv, d in zip(levels, done, strict=True)]
    errors: dict[str, int] = {}
    for r in reqs:
        for k, n in r.errors.items():
            errors[k] = errors.get(k, 0) + n
    sent = [r.sent for r in reqs]
    requests = RequestCounts(
        completed=sum(r.completed for r in reqs),
        failed=sum(r.failed for r in reqs),
        errors=errors,
        delayed=sum(r.delayed for r in reqs),
        dropped=sum(r.dropped for r in reqs),
        sent=None if any(s is None for s in sent) else sum(s for s in sent if s is not None),
    )
    batch = first.batch_size or 1
    rps = [lv.throughput.requests_per_s for lv in levels]
    sends = [lv.throughput.send_per_s for lv in levels]
    throughput = Throughput(
        infer_per_s=sum(lv.throughput.infer_per_s for lv in levels),
        requests_per_s=sum(r if r is not None else lv.throughput.infer_per_s / batch
                           for r, lv in zip(rps, levels, strict=True)),
        send_per_s=None if any(s is None for s in sends) else sum(s for s in sends if s is not None),
    )
    cl = [lv.client for lv in levels]
    utils = [c.cpu_util for c in cl]
    client = ClientStats(
        send_ns=int(_wavg([c.send_ns for c in cl], done) or 0),
        recv_ns=int(_wavg([c.recv_ns for c in cl], done) or 0),
        request_ns=None if (req := _wavg([c.request_ns for c in cl], done)) is None else int(req),
        cpu_ns_per_request=_wavg([c.cpu_ns_per_request for c in cl], done),
        cpu_util=None if all(u is None for u in utils) else sum(u or 0.0 for u in utils),
        processes=sum(c.processes for c in cl),
    )
    unstable = [lv for lv in levels if not lv.stable]
    stability: Stability = unstable[0].stability if unstable else (
        "throughput_only" if any(lv.stability == "throughput_only" for lv in levels) else "stable")
    reasons = [f"rank {i}: {r}" for i, lv in enumerate(levels) for r in lv.verdict.reasons]
    overlap = _overlap(levels, same_clock)
    valid = all(lv.verdict.valid for lv in levels)
    if overlap is not None and overlap < MIN_OVERLAP:
        valid = False
        reasons.append(f"ranks measured together only {100 * overlap:.0f}% of the time: start them together "
                       "(--start-at) or lengthen the level period")
    sats = [lv.verdict.saturated for lv in levels]
    saturated: Saturation = "client" if "client" in sats else sats[0]
    rate = first.mode == "request_rate"
    return LevelResult(
        mode=first.mode,
        concurrency=None if rate else sum(lv.concurrency or 0 for lv in levels),
        request_rate=sum(lv.request_rate or 0.0 for lv in levels) if rate else None,
        batch_size=first.batch_size,
        stable=not unstable,
        stability=stability,
        percentile=first.percentile,
        windows=sorted((w for lv in levels for w in lv.windows), key=lambda w: w.start_ns),
        throughput=throughput,
        latency=latency,
        requests=requests,
        client=client,
        server=next((lv.server for lv in levels if lv.server is not None), None),
        gpu=next((lv.gpu for lv in levels if lv.gpu is not None), None),
        verdict=Verdict(saturated=saturated, valid=valid, reasons=reasons),
        extras={} if hist is None else {"histogram": hist},
    )


def merge_ranks(ranks: Sequence[RankRun]) -> RunResult:
    """Level i of every rank → level i of one run; the ranks must have as many levels each."""
    if not ranks:
        raise ConfigError("give at least one rank result to merge")
    counts = {len(r.levels) for r in ranks}
    if len(counts) != 1:
        detail = ", ".join(f"{r.source}: {len(r.levels)}" for r in ranks)
        raise ConfigError(f"ranks have different numbers of levels ({detail}); merge complete ranks only")
    hosts = {r.runs[0].env.get("host") for r in ranks}
    same_clock = len(hosts) == 1 and None not in hosts
    levels = [
        merge_level([r.levels[i] for r in ranks], [r.latencies[i] for r in ranks], same_clock)
        for i in range(len(ranks[0].levels))
    ]
    base = ranks[0].runs[0]
    config = dict(base.config)
    config.pop("concurrency_range", None)
    config.pop("request_rate_range", None)
    config.update({"merged_ranks": len(ranks), "merged_from": [r.source for r in ranks]})
    env = dict(base.env)
    env["rank_hosts"] = [r.runs[0].env.get("host") for r in ranks]
    tool = {**base.tool, "merged_by": "saturate merge"}
    return RunResult(tool=tool, env=env, config=config, levels=[replace(lv) for lv in levels])
