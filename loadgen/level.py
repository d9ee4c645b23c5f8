"""Assembling a :class:`~loadgen.result.LevelResult` from a level's windows.

Its stability label comes from :mod:`loadgen.stability`, its verdict from :mod:`loadgen.verdict`.
perf_analyzer's ``MergePerfStatusReports``: the merged (last 3) windows' counts and durations are summed,
latencies concatenated and the statistics recomputed; client send/recv are averaged over completed
requests; server deltas are summed. Unlike perf_analyzer, a level that did not stabilise is still
assembled (from its last windows) and kept, flagged, so the run JSON shows what happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from loadgen.result import (
    ClientStats,
    GpuSample,
    GpuSummary,
    LatencySummary,
    LevelResult,
    RequestCounts,
    ServerSummary,
    Stability,
    Throughput,
    Verdict,
    WindowStats,
    WindowSummary,
)
from loadgen.serverstats import merge_deltas, summarize_server
from loadgen.stability import LevelContext, outcome
from loadgen.stats import summarize
from loadgen.verdict import level_verdict


def _loop_lag(windows: Sequence[WindowStats]) -> float | None:
    n = sum(w.loop_lag_samples for w in windows)
    return sum(w.loop_lag_ns_total for w in windows) / n if n else None


def _gpu(windows: Sequence[WindowStats]) -> GpuSummary | None:
    samples: list[GpuSample] = [s for w in windows for s in w.gpu_samples]
    return GpuSummary.merge(samples) if samples else None


def build_level(
    windows: Sequence[WindowStats],
    summaries: Sequence[WindowSummary],
    ctx: LevelContext,
    interrupted: str | None = None,
) -> LevelResult:
    """Merge the windows the rule names (:meth:`StabilityRule.merged`) into the level's result.

    ``summaries`` are the windows' summaries, one each; the stability label comes from
    :func:`loadgen.stability.outcome` over them.
    """
    rule = ctx.rule
    last = rule.merged(windows)
    lat = (
        np.concatenate([w.latencies_ns for w in last]).astype(np.int64, copy=False)
        if last
        else np.zeros(0, np.int64)
    )
    latency = summarize(lat, rule.percentile) or LatencySummary(percentiles_ns={}, count=0)
    svc_parts = [w.service_ns for w in last if w.service_ns is not None]
    service = summarize(np.concatenate(svc_parts), rule.percentile) if svc_parts else None
    merged_latency = float(latency.stabilizing_ns(rule.percentile)) if latency.count else None
    stability, is_stable = outcome(summaries, rule, interrupted, merged_latency)

    dur = sum(w.duration_ns for w in last)
    done = int(lat.size)
    failed = sum(w.failed for w in last)
    errors: dict[str, int] = {}
    for w in last:
        for k, v in w.errors.items():
            errors[k] = errors.get(k, 0) + v
    requests = RequestCounts(
        completed=done,
        failed=failed,
        errors=errors,
        delayed=sum(w.delayed for w in last),
        dropped=sum(w.dropped for w in last),
        sent=sum(w.sent for w in last),
    )
    rates = [w.sent * 1e9 / w.duration_ns for w in last if w.duration_ns > 0]
    throughput = Throughput(
        infer_per_s=done * ctx.batch_size * 1e9 / dur if dur > 0 else 0.0,
        requests_per_s=done * 1e9 / dur if dur > 0 else 0.0,
        send_per_s=sum(rates) / len(rates) if rates else None,
    )
    # The client-side time of a request: from the actual send (service latency) in request-rate mode,
    # so that schedule delays do not leak into Network+Server or response wait.
    client_avg = service.avg_ns if service is not None else latency.avg_ns
    send_ns = sum(w.send_ns_total for w in last) // done if done else 0
    recv_ns = sum(w.recv_ns_total for w in last) // done if done else 0
    req_total = sum(w.request_ns_total for w in last)
    cpu = sum(w.cpu_ns for w in last)
    finished = done + failed
    client = ClientStats(
        send_ns=send_ns,
        recv_ns=recv_ns,
        request_ns=(req_total // done if req_total else client_avg) if done else None,
        cpu_ns_per_request=cpu / finished if finished and cpu else None,
        cpu_util=cpu / dur if dur > 0 and cpu else None,
        processes=ctx.processes,
        loop_lag_ns=_loop_lag(last),
    )
    server: ServerSummary | None = None
    delta = merge_deltas([w.server for w in last])
    if delta is not None and client_avg is not None:
        server = summarize_server(delta, client_avg, send_ns, recv_ns)
    gpu = _gpu(last)
    level = LevelResult(
        mode=ctx.mode,
        concurrency=int(ctx.value) if ctx.mode != "request_rate" else None,
        request_rate=float(ctx.value) if ctx.mode == "request_rate" else None,
        batch_size=ctx.batch_size,
        stable=is_stable,
        stability=stability,
        percentile=rule.percentile,
        windows=list(summaries),
        throughput=throughput,
        latency=latency,
        service_latency=service,
        requests=requests,
        client=client,
        server=server,
        gpu=gpu,
    )
    all_failed = sum(w.failed for w in windows)
    verdict = level_verdict(level, ctx, all_failed, interrupted)  # loadgen/verdict.py: the one rule
    return replace(level, verdict=verdict)


def unmeasured_level(mode: str, value: float, batch_size: int | None, stability: Stability, reason: str,
                     requests: RequestCounts | None = None) -> LevelResult:
    """A level with no numbers (its tool failed, the server was gone): ``stable=False``, invalid,
    ``reason`` as its verdict's. The one builder for them: the server scan's failed levels and the
    perf_analyzer engine's unrecorded ones."""
    rate = mode == "request_rate"
    return LevelResult(
        mode="request_rate" if rate else "concurrency",
        concurrency=None if rate else int(value),
        request_rate=float(value) if rate else None,
        batch_size=batch_size,
        stable=False,
        stability=stability,
        throughput=Throughput(infer_per_s=0.0, requests_per_s=0.0),
        latency=LatencySummary(percentiles_ns={}, count=0),
        client=ClientStats(send_ns=0, recv_ns=0),
        requests=requests,
        verdict=Verdict(valid=False, reasons=[reason]),
    )
