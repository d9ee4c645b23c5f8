"""Repeated trials (``--repeats N``): interleaved order, per-level mean and 95% confidence intervals.

Order: round-robin, every level once per round (``c1 c2 c4 | c1 c2 c4 | …``), so a slow drift of the
machine (thermal, other tenants, a growing queue) spreads over all levels instead of biasing one.

Interval: a Student t-interval over the N repeats, mean ± t(0.975, N-1)·s/√N with s the sample
standard deviation (``scipy.stats.t``). Chosen over a bootstrap over requests: requests of one
window are strongly correlated (a slow second slows every request in it), so resampling them
treats one run as thousands of independent draws and gives intervals far narrower than the spread
between runs; the repeats are the independent units. N = 1 gives no interval (null, never zero
width); N = 2 is valid but wide (t = 12.7). The level's headline numbers (throughput, latency
percentiles and average) are the means over repeats; ``repeats`` keeps every trial's values.

JSON per level, ``repeats``: ``{"n", "confidence", "method", "trials": [{"infer_per_s",
"requests_per_s", "p50_us", …, "avg_us"}], "stats": {"infer_per_s": {"mean", "std", "ci_low",
"ci_high"}, "p50_us": {…}, …}}``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from loadgen.histogram import merge_blocks
from loadgen.result import LatencySummary, LevelResult, Throughput, Verdict

CONFIDENCE = 0.95
T = TypeVar("T")


def t_interval(samples: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, float | None]:
    """Mean, sample std and the two-sided t-interval of ``samples`` (interval None for fewer than 2)."""
    xs = [float(x) for x in samples if math.isfinite(float(x))]
    if not xs:
        return {"mean": None, "std": None, "ci_low": None, "ci_high": None}
    n = len(xs)
    mean = sum(xs) / n
    if n < 2:
        return {"mean": mean, "std": None, "ci_low": None, "ci_high": None}
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    from scipy import stats as sps  # here, not at the top: ~0.6 s of start-up CPU that runs without
                                    # --repeats (most) would count in the client CPU they report

    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def order(values: Sequence[T], repeats: int) -> list[tuple[int, T]]:
    """(repeat, value) in measuring order: round-robin over the levels."""
    return [(r, v) for r in range(repeats) for v in values]


def trial_values(level: LevelResult) -> dict[str, float | None]:
    """One trial's numbers: throughputs, each percentile and the average latency (µs)."""
    out: dict[str, float | None] = {"infer_per_s": level.throughput.infer_per_s,
                                    "requests_per_s": level.throughput.requests_per_s}
    for p, ns in sorted(level.latency.percentiles_ns.items()):
        out[f"p{p}_us"] = ns / 1000.0
    out["avg_us"] = None if level.latency.avg_ns is None else level.latency.avg_ns / 1000.0
    return out


def aggregate(trials: Sequence[LevelResult], confidence: float = CONFIDENCE) -> LevelResult:
    """One level from its repeats: means as the headline, every trial and the intervals in ``repeats``."""
    last = trials[-1]
    rows = [trial_values(t) for t in trials]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    st = {k: t_interval([v for r in rows if (v := r.get(k)) is not None], confidence) for k in keys}
    block = {"n": len(trials), "confidence": confidence, "method": "t", "trials": rows, "stats": st}

    def mean_ns(key: str) -> int | None:
        m = st.get(key, {}).get("mean")
        return None if m is None else round(m * 1000)

    mins = [t.latency.min_ns for t in trials if t.latency.min_ns is not None]
    maxs = [t.latency.max_ns for t in trials if t.latency.max_ns is not None]
    pcts = {p: mean_ns(f"p{p}_us") for p in last.latency.percentiles_ns}
    latency = LatencySummary(
        percentiles_ns={p: v for p, v in pcts.items() if v is not None}, avg_ns=mean_ns("avg_us"),
        std_ns=last.latency.std_ns, min_ns=min(mins, default=None), max_ns=max(maxs, default=None),
        count=sum(t.latency.count or 0 for t in trials))
    rps = st.get("requests_per_s", {}).get("mean")
    thr = Throughput(infer_per_s=float(st["infer_per_s"]["mean"] or 0.0),
                     requests_per_s=None if rps is None else float(rps),
                     send_per_s=last.throughput.send_per_s)
    unstable = [t for t in trials if not t.stable]
    reasons = list(dict.fromkeys(f"repeat {i + 1}: {r}" for i, t in enumerate(trials)
                                 for r in t.verdict.reasons))
    verdict = Verdict(saturated=last.verdict.saturated, valid=all(t.verdict.valid for t in trials),
                      reasons=reasons)
    extras = dict(last.extras)
    extras["repeats"] = block
    hist = merge_blocks([t.extras.get("histogram") for t in trials])
    if hist is not None:
        extras["histogram"] = hist
    else:
        extras.pop("histogram", None)
    return dataclasses.replace(
        last, stable=not unstable, stability=unstable[0].stability if unstable else last.stability,
        throughput=thr, latency=latency, windows=[w for t in trials for w in t.windows],
        verdict=verdict, extras=extras)


class Trials:
    """The trials measured so far per level key, and their aggregate."""

    def __init__(self) -> None:
        self.by_key: dict[Any, list[LevelResult]] = {}

    def add(self, key: Any, level: LevelResult) -> LevelResult:
        self.by_key.setdefault(key, []).append(level)
        return aggregate(self.by_key[key])


def interval_text(
    level: LevelResult, key: str = "infer_per_s", fmt: Callable[[float], str] = "{:.1f}".format
) -> str:
    """``1234.5 [1200.1, 1268.9]`` for the console; the mean alone when there is no interval."""
    st = ((level.extras.get("repeats") or {}).get("stats") or {}).get(key) or {}
    if st.get("mean") is None:
        return ""
    if st.get("ci_low") is None:
        return fmt(st["mean"])
    return f"{fmt(st['mean'])} [{fmt(st['ci_low'])}, {fmt(st['ci_high'])}]"


async def more_rounds(cfg: Any, session: Any, writer: Any, trials: Trials) -> bool:
    """``saturate load --repeats N``: rounds 2..N over the levels round 1 measured, each result
    rewritten as the aggregate of its trials. False when the server was lost (the level is flagged)."""
    values = list(trials.by_key)
    for r in range(1, cfg.repeats):
        for i, value in enumerate(values):
            what = f"concurrency {int(value)}" if cfg.mode == "concurrency" else f"rate {value:g}/s"
            print(f"Repeat {r + 1}/{cfg.repeats}: {what}", flush=True)
            level = await session.measure(value)
            agg = trials.add(value, level)
            writer.put(i, agg, session.merged_windows, accumulate=True)
            print(f"  Throughput: {interval_text(agg)} infer/sec (mean [95% CI] over "
                  f"{len(trials.by_key[value])} repeats)", flush=True)
            if level.stability == "interrupted":
                return False
    return True
