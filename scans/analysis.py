"""What saturates a server-scan level, with the numbers behind it, and the knee of the scan.

:func:`decide` looks at one level (loadgen's measurement: client CPU, server queue and compute time)
together with what the monitor saw during it (:class:`Usage`: GPU utilisation, SM activity, host
CPU) and names the limit, in the order that makes the other numbers meaningful:

1. ``client``: the load generator used >= 80% of a core per process (or could not keep its schedule,
   as loadgen already judged) — the server was not pushed to its limit;
2. ``gpu``: a GPU averaged >= 90% utilisation during the level (monitor or Triton metrics);
   SM activity, where the monitor has it, is evidence beside it (busy but few SMs active → small
   kernels);
3. ``server_queue``: requests waited in the server queue >= half their compute time — the server
   (its model instances / batching) is the limit;
4. ``none``: nothing is saturated yet; more load would give more throughput.

:func:`knee` picks the highest-throughput level whose p95 stays within a latency budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loadgen.result import LevelResult, Saturation, Verdict

CLIENT_CPU = 0.8  # fraction of a core per client process
GPU_UTIL = 90.0  # percent
QUEUE_SHARE = 0.5  # queue time / compute time
LOW_SM_ACTIVE = 50.0  # percent: a busy GPU with fewer active SMs than this runs small kernels


@dataclass(frozen=True)
class Usage:
    """Monitor means over one level (percent; None where no source had the value)."""

    gpu_util_pct: float | None = None
    gpu_util_max_pct: float | None = None
    sm_active_pct: float | None = None
    gpu_mem_used_mib: float | None = None
    host_cpu_pct: float | None = None
    process_cpu_pct: float | None = None  # the server's processes (monitor --pids), percent of one core
    samples: int = 0


@dataclass(frozen=True)
class LevelVerdict:
    """The verdict of one level and its evidence (numbers with units in the key names)."""

    saturated: Saturation
    valid: bool
    reasons: list[str]
    evidence: dict[str, float | None] = field(default_factory=dict)

    def verdict(self) -> Verdict:
        return Verdict(saturated=self.saturated, valid=self.valid, reasons=list(self.reasons))

    def to_dict(self) -> dict[str, Any]:
        return {"saturated": self.saturated, "valid": self.valid, "reasons": list(self.reasons),
                "evidence": dict(self.evidence)}


def _r(x: float | None, digits: int = 3) -> float | None:
    return None if x is None or math.isnan(x) else round(x, digits)


def evidence(level: LevelResult, usage: Usage | None) -> dict[str, float | None]:
    """The numbers a verdict rests on, in µs and percent."""
    srv = level.server
    compute = None if srv is None else srv.compute_input_ns + srv.compute_infer_ns + srv.compute_output_ns
    triton_util = None
    if level.gpu is not None and level.gpu.util:
        triton_util = 100.0 * max(level.gpu.util.values())
    u = usage or Usage()
    cpu = level.client.cpu_util
    return {
        "infer_per_s": _r(level.throughput.infer_per_s),
        "client_cpu_pct_per_process": None if cpu is None else _r(100 * cpu / max(1, level.client.processes)),
        "server_queue_us": None if srv is None else _r(srv.queue_ns / 1e3),
        "server_compute_us": None if compute is None else _r(compute / 1e3),
        "queue_over_compute": None if not compute or srv is None else _r(srv.queue_ns / compute),
        "avg_batch": None if srv is None else _r(srv.avg_batch),
        "gpu_util_pct": _r(u.gpu_util_pct if u.gpu_util_pct is not None else triton_util),
        "sm_active_pct": _r(u.sm_active_pct),
        "host_cpu_pct": _r(u.host_cpu_pct),
        "server_process_cpu_pct": _r(u.process_cpu_pct),
    }


def decide(level: LevelResult, usage: Usage | None = None) -> LevelVerdict:
    """The saturation verdict of one level; keeps loadgen's validity and its reasons."""
    ev = evidence(level, usage)
    reasons = list(level.verdict.reasons)
    saturated: Saturation = "none"
    cpu = ev["client_cpu_pct_per_process"]
    if level.verdict.saturated == "client" or (cpu is not None and cpu >= 100 * CLIENT_CPU):
        saturated = "client"
        if not any(r.startswith("client") for r in reasons) and cpu is not None:
            reasons.append(f"client CPU at {cpu:.0f}% of a core per process: the client limits this level")
    gpu = ev["gpu_util_pct"]
    sm = ev["sm_active_pct"]
    if saturated == "none" and gpu is not None and gpu >= GPU_UTIL:
        saturated = "gpu"
        text = f"GPU busy {gpu:.0f}% of the time (>= {GPU_UTIL:.0f}%)"
        if sm is not None:
            text += f", SM activity {sm:.0f}%"
            if sm < LOW_SM_ACTIVE:
                text += ": small kernels leave SMs idle, larger batches may still gain"
        reasons.append(text)
    ratio = ev["queue_over_compute"]
    if saturated == "none" and ratio is not None and ratio >= QUEUE_SHARE:
        saturated = "server_queue"
        reasons.append(
            f"requests queue {ev['server_queue_us']:.0f} µs for {ev['server_compute_us']:.0f} µs of compute "
            f"(x{ratio:.2f}, avg batch {ev['avg_batch']}): the server's instances/batching are the limit"
        )
    host = ev["host_cpu_pct"]
    if saturated != "client" and gpu is None and host is not None and host >= GPU_UTIL:
        reasons.append(f"host CPU busy {host:.0f}%: with no GPU the server computes on the CPU it shares "
                       "with the client")
    return LevelVerdict(saturated=saturated, valid=level.verdict.valid, reasons=reasons, evidence=ev)


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
