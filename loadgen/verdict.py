"""The one verdict of a level: what saturated first, whether its numbers can be trusted, and why.

Every caller feeds it what it knows. ``loadgen.level.build_level`` calls :func:`level_verdict` with the
level alone (client CPU, its schedule, Triton's statistics and GPU metrics); the scans call
:func:`decide` again once the monitor's :class:`Usage` of the level is known, so the same rule decides
with more evidence instead of a second rule overwriting the first.

The rule, in the order that makes the other numbers meaningful (thresholds named once, as fractions):

1. ``client``: the load generator used >= ``CLIENT_CPU`` of a core per process, sent more than
   ``DELAYED_SHARE`` of its requests late, or dropped requests at its outstanding cap — the server was
   not pushed to its limit;
2. ``gpu``: a GPU was busy >= ``GPU_BUSY`` of the level (monitor, else Triton's metrics); SM activity,
   where the monitor has it, is evidence beside it (busy but < ``LOW_SM_ACTIVE`` → small kernels);
3. ``server_queue``: requests waited in the server queue >= ``QUEUE_SHARE`` of their compute time — the
   server's instances / batching are the limit;
4. ``none``: nothing is saturated yet; more load would give more throughput.

Valid: measured stable (or throughput-only), no failed request, not interrupted, at most
``DELAYED_SHARE`` sent late (perf_analyzer src/inference_profiler.cc warns above 1 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from loadgen.result import LevelResult, Saturation, Verdict
from loadgen.stability import LevelContext, outcome_message

CLIENT_CPU = 0.8  # of a core, per client process
DELAYED_SHARE = 0.01  # of the requests sent late
GPU_BUSY = 0.9  # of the level's time
QUEUE_SHARE = 0.5  # queue time over compute time
LOW_SM_ACTIVE = 0.5  # active SMs of a busy GPU below which its kernels are small
HOST_BUSY = 0.9  # host CPU with no GPU: the server computes on the cores it shares with the client


@dataclass(frozen=True)
class Usage:
    """Monitor means over one level, in percent as the monitor reports them (None: no source had it)."""

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


def _delayed_share(level: LevelResult) -> float:
    """The share of the level's requests sent late (0 when it counted none)."""
    req = level.requests
    if req is None or req.completed + req.failed == 0:
        return 0.0
    return req.delayed / (req.completed + req.failed)


def _client(level: LevelResult, ev: dict[str, float | None]) -> list[str]:
    """Why the client is the limit (empty: it is not)."""
    out: list[str] = []
    cpu = ev["client_cpu_pct_per_process"]
    if cpu is not None and cpu >= 100 * CLIENT_CPU:
        out.append(f"client CPU at {cpu:.0f}% of a core per process: the client, not the server, may be "
                   "the bottleneck (try --processes)")
    share = _delayed_share(level)
    if share > DELAYED_SHARE:
        out.append(f"{100 * share:.2f}% of the requests were sent late: the client could not keep up "
                   "with the rate")
    req = level.requests
    if req is not None and req.dropped:
        out.append(f"{req.dropped} requests dropped at the outstanding-request cap")
    return out


def _server(ev: dict[str, float | None]) -> tuple[Saturation, str | None]:
    """GPU, then server queue, from the evidence: the limit and the sentence that explains it."""
    gpu, sm = ev["gpu_util_pct"], ev["sm_active_pct"]
    if gpu is not None and gpu >= 100 * GPU_BUSY:
        text = f"GPU busy {gpu:.0f}% of the time (>= {100 * GPU_BUSY:.0f}%)"
        if sm is not None:
            text += f", SM activity {sm:.0f}%"
            if sm < 100 * LOW_SM_ACTIVE:
                text += ": small kernels leave SMs idle, larger batches may still gain"
        return "gpu", text
    ratio = ev["queue_over_compute"]
    if ratio is not None and ratio >= QUEUE_SHARE:
        return "server_queue", (
            f"requests queue {ev['server_queue_us']:.0f} µs for {ev['server_compute_us']:.0f} µs of compute "
            f"(x{ratio:.2f}, avg batch {ev['avg_batch']}): the server's instances/batching are the limit")
    return "none", None


def level_verdict(level: LevelResult, ctx: LevelContext, failed_in_level: int,
                  interrupted: str | None) -> Verdict:
    """The verdict from the level alone (loadgen): validity with its reasons, client warnings, the limit."""
    reasons: list[str] = []
    valid = level.stability in ("stable", "throughput_only")
    msg = outcome_message(level, ctx, interrupted)
    if msg:
        reasons.append(msg)
    if failed_in_level:
        errors = level.requests.errors if level.requests else {}
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
        reasons.append(f"{failed_in_level} failed requests in this level"
                       + (f" (last windows: {codes})" if codes else ""))
        valid = False
    ev = evidence(level, None)
    client = _client(level, ev)
    reasons += client
    if _delayed_share(level) > DELAYED_SHARE:
        valid = False
    saturated: Saturation = "client" if client else _server(ev)[0]
    srv = level.server
    if srv is not None and srv.network_server_ns == 0 and level.latency.count:
        reasons.append("Server average accounted time was larger than client average wait time due to small "
                       f"sample size. Increase the measurement interval with `{ctx.rule.window_flag}`.")
    return Verdict(saturated=saturated, valid=valid, reasons=reasons)


def decide(level: LevelResult, usage: Usage | None = None) -> LevelVerdict:
    """The verdict again with the monitor's usage of the level (scans): validity and reasons kept, the
    limit decided by the same rule with the GPU/host evidence, the sentence that explains it added."""
    ev = evidence(level, usage)
    reasons = list(level.verdict.reasons)
    client = level.verdict.saturated == "client" or bool(_client(level, ev))
    saturated: Saturation = "client"
    if client:
        cpu = ev["client_cpu_pct_per_process"]
        if not any(r.startswith("client") for r in reasons) and cpu is not None:
            reasons.append(f"client CPU at {cpu:.0f}% of a core per process: the client limits this level")
    else:
        saturated, text = _server(ev)
        if text:
            reasons.append(text)
    host = ev["host_cpu_pct"]
    if not client and ev["gpu_util_pct"] is None and host is not None and host >= 100 * HOST_BUSY:
        reasons.append(f"host CPU busy {host:.0f}%: with no GPU the server computes on the CPU it shares "
                       "with the client")
    return LevelVerdict(saturated=saturated, valid=level.verdict.valid, reasons=reasons, evidence=ev)
