"""The scan-level analysis: the knee (the best level within a latency budget) and the run JSON's
``analysis`` block. Each level's own verdict (what saturated, valid) is loadgen/verdict.py's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from loadgen.result import LevelResult


def level_name(concurrency: int, batch_size: int) -> str:
    """The label of a level in the JSON, the monitor's phase column and the log: ``c4_b16``."""
    return f"c{concurrency}_b{batch_size}"


def knee(levels: Sequence[LevelResult], budget_ms: float | None) -> dict[str, Any] | None:
    """The highest-throughput level whose p95 is within ``budget_ms`` (any p95 when None).

    Valid (stable) levels only, unless none is: then every measured level, and ``valid`` says so.
    """
    measured = [lv for lv in levels if lv.throughput.infer_per_s > 0 and lv.stability != "interrupted"]
    pool = [lv for lv in measured if lv.verdict.valid] or measured
    best: LevelResult | None = None
    for lv in pool:
        p95 = lv.latency.percentiles_ns.get(95)
        if budget_ms is not None and (p95 is None or p95 / 1e6 > budget_ms):
            continue
        if best is None or lv.throughput.infer_per_s > best.throughput.infer_per_s:
            best = lv
    if best is None:
        return None
    p95 = best.latency.percentiles_ns.get(95)
    return {
        "level": level_name(int(best.concurrency or 0), int(best.batch_size or 1)),
        "concurrency": best.concurrency,
        "batch_size": best.batch_size,
        "infer_per_s": round(best.throughput.infer_per_s, 3),
        "p95_ms": None if p95 is None else round(p95 / 1e6, 3),
        "saturated": best.verdict.saturated,
        "valid": best.verdict.valid,
    }


def analysis(levels: Sequence[LevelResult], budget_ms: float | None,
             verdicts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The run JSON's ``analysis`` block: the budget, the knee overall and per batch, the verdicts."""
    batches = sorted({int(lv.batch_size or 1) for lv in levels})
    return {
        "latency_budget_ms": budget_ms,
        "knee": knee(levels, budget_ms),
        "knee_per_batch": {str(b): knee([lv for lv in levels if lv.batch_size == b], budget_ms)
                           for b in batches},
        "verdicts": {name: dict(v) for name, v in verdicts.items()},
    }
