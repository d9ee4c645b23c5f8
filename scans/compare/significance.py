"""Level matching and the change of each metric with its 95% interval and significance.

Levels match on (mode, batch, concurrency or request rate); a level whose batch is unknown (a
perf_analyzer CSV without a ``b<N>`` name) matches on (mode, value) when that is unique.

Change of a metric = B / A - 1 (headline values: the means over repeats where there are repeats).
Its interval is Welch's (unequal variances, Welch-Satterthwaite degrees of freedom, ``scipy.stats.t``)
on the difference of means, divided by A's value. Samples: the per-repeat values when both levels
have ≥ 2 repeats (``loadgen.repeats``; independent trials, the basis to trust), else the level's
last 3 measurement windows (``basis: windows``; adjacent windows share the machine's state, so this
interval is narrower than the run-to-run spread), else none (no interval, significance unknown).
Significant = the interval excludes 0. Throughput up, latency down is ``improved``; the opposite
``regressed``; not significant ``same``; no interval ``unknown``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats as sps

from loadgen.result import LevelResult

METRICS: tuple[str, ...] = ("throughput", "p50", "p95", "p99")
CONFIDENCE = 0.95
STABILITY_WINDOW = 3
Key = tuple[str, int | None, float]


def key_of(level: LevelResult) -> Key:
    return (level.mode, level.batch_size, level.value)


def label(k: Key) -> str:
    mode, batch, value = k
    what = f"c{value:g}" if mode == "concurrency" else f"r{value:g}"
    return f"{what}_b{batch if batch is not None else '?'}"


def match(a: Sequence[LevelResult], b: Sequence[LevelResult]) -> list[tuple[Key, LevelResult, LevelResult]]:
    """Pairs of levels of A and B in A's order (failed levels — no throughput — left out)."""
    def ok(lv: LevelResult) -> bool:
        return lv.stability != "interrupted" and lv.throughput.infer_per_s > 0

    full = {key_of(lv): lv for lv in b if ok(lv)}
    loose: dict[tuple[str, float], list[LevelResult]] = {}
    for lv in full.values():
        loose.setdefault((lv.mode, lv.value), []).append(lv)
    out = []
    for lv in a:
        if not ok(lv):
            continue
        k = key_of(lv)
        other = full.get(k)
        if other is None:
            cands = loose.get((lv.mode, lv.value), [])
            if len(cands) == 1 and (lv.batch_size is None or cands[0].batch_size is None):
                other = cands[0]
        if other is not None:
            out.append((k if k[1] is not None else key_of(other), lv, other))
    return out


def headline(level: LevelResult, metric: str) -> float | None:
    if metric == "throughput":
        return level.throughput.infer_per_s
    v = level.latency.percentiles_ns.get(int(metric[1:]))
    return None if v is None else float(v)


def samples(level: LevelResult, metric: str) -> tuple[list[float], str | None]:
    """Independent-ish samples of a metric: per repeat (``repeats``) or per window (``windows``)."""
    rep = level.extras.get("repeats") or {}
    trials = rep.get("trials") or []
    col, scale = ("infer_per_s", 1.0) if metric == "throughput" else (f"{metric}_us", 1000.0)
    vals = [float(t[col]) * scale for t in trials if t.get(col) is not None]
    if len(vals) >= 2:
        return vals, "repeats"
    wins = level.windows[-STABILITY_WINDOW:]
    if metric == "throughput":
        vals = [w.infer_per_s for w in wins]
    else:
        p = int(metric[1:])
        vals = [float(w.latency.percentiles_ns[p]) for w in wins
                if w.latency is not None and p in w.latency.percentiles_ns]
    return (vals, "windows") if len(vals) >= 2 else ([], None)


def _mv(xs: Sequence[float]) -> tuple[float, float, int]:
    n = len(xs)
    m = sum(xs) / n
    return m, sum((x - m) ** 2 for x in xs) / (n - 1), n


def welch(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """(mean(b) - mean(a), and its two-sided Welch interval) for samples of ≥ 2 each."""
    ma, va, na = _mv(a)
    mb, vb, nb = _mv(b)
    diff = mb - ma
    se2 = va / na + vb / nb
    if se2 <= 0:
        return diff, diff, diff
    df = se2 ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    half = float(sps.t.ppf(0.5 + confidence / 2, df)) * math.sqrt(se2)
    return diff, diff - half, diff + half


@dataclass(frozen=True)
class Change:
    metric: str
    a: float | None
    b: float | None
    rel: float | None  # B/A - 1
    ci_low: float | None  # of rel
    ci_high: float | None
    basis: str | None  # repeats | windows | None
    status: str  # improved | regressed | same | unknown

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "a": self.a, "b": self.b, "rel": self.rel, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "basis": self.basis, "status": self.status}


def change(a: LevelResult, b: LevelResult, metric: str) -> Change:
    va, vb = headline(a, metric), headline(b, metric)
    if va is None or vb is None or va <= 0:
        return Change(metric, va, vb, None, None, None, None, "unknown")
    rel = vb / va - 1.0
    sa, basis_a = samples(a, metric)
    sb, basis_b = samples(b, metric)
    if not sa or not sb:
        return Change(metric, va, vb, rel, None, None, None, "unknown")
    basis = "repeats" if basis_a == basis_b == "repeats" else "windows"
    diff, lo, hi = welch(sa, sb)
    lo_rel, hi_rel = rel + (lo - diff) / va, rel + (hi - diff) / va
    if lo > 0 or hi < 0:
        better = (diff > 0) == (metric == "throughput")
        status = "improved" if better else "regressed"
    else:
        status = "same"
    return Change(metric, va, vb, rel, lo_rel, hi_rel, basis, status)


@dataclass(frozen=True)
class LevelChange:
    key: Key
    changes: dict[str, Change]

    @property
    def name(self) -> str:
        return label(self.key)

    def deltas(self) -> dict[str, float | None]:
        """Relative changes by gate metric name (``throughput`` is ``infer_per_s`` in loadgen.gates)."""
        out = {("infer_per_s" if m == "throughput" else m): c.rel for m, c in self.changes.items()}
        return out

    def to_dict(self) -> dict[str, Any]:
        mode, batch, value = self.key
        return {"level": self.name, "mode": mode, "batch_size": batch, "value": value,
                "changes": {m: c.to_dict() for m, c in self.changes.items()}}


def compare_runs(a: Sequence[LevelResult], b: Sequence[LevelResult]) -> list[LevelChange]:
    return [LevelChange(k, {m: change(la, lb, m) for m in METRICS}) for k, la, lb in match(a, b)]
