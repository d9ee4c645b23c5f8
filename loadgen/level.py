"""Assembling a :class:`~loadgen.result.LevelResult` from a level's windows (its verdict: loadgen.verdict).

perf_analyzer's ``MergePerfStatusReports``: the last 3 windows' counts and durations are summed,
latencies concatenated and the statistics recomputed; client send/recv are averaged over completed
requests; server deltas are summed. Unlike perf_analyzer, a level that did not stabilise is still
assembled (from its last windows) and kept, flagged, so the run JSON shows what happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from loadgen.result import (
    ClientStats,
    GpuSample,
    GpuSummary,
    LatencySummary,
    LevelResult,
    Mode,
    RequestCounts,
    ServerSummary,
    Stability,
    Throughput,
    WindowStats,
    WindowSummary,
)
from loadgen.serverstats import merge_deltas, summarize_server
from loadgen.stats import percentile_set, summarize
from loadgen.verdict import level_verdict


@dataclass(frozen=True)
class StabilityRule:
    """The knobs of the stability rule (``-s``, ``-r``, ``--percentile``, ``--latency-threshold``)."""

    stability_pct: float = 10.0
    max_trials: int = 10
    percentile: int | None = None
    latency_threshold_ms: float = 0.0  # 0: no limit
    throughput_relaxation: bool = True
    count_windows: bool = False  # only changes the advice in messages (-p vs --measurement-request-count)
    stability_window: int = 3

    def __post_init__(self) -> None:
        if self.stability_pct < 0:
            raise ValueError("stability percentage must be >= 0")
        if self.max_trials < 1:
            raise ValueError("max trials must be >= 1")
        if self.stability_window < 1:
            raise ValueError("stability window must be >= 1")
        percentile_set(self.percentile)  # validates 1..99

    @property
    def window_flag(self) -> str:
        return "--measurement-request-count" if self.count_windows else "--measurement-interval"


@dataclass(frozen=True)
class LevelContext:
    rule: StabilityRule
    mode: Mode
    value: float
    batch_size: int = 1
    processes: int = 1

    def describe(self) -> str:
        """'concurrency 4' or 'request rate 150'."""
        if self.mode == "request_rate":
            return f"request rate {self.value:g}"
        return f"{self.mode} {int(self.value)}"


def _outcome(
    windows: Sequence[WindowStats],
    ctx: LevelContext,
    stable: bool,
    throughput_stable: bool,
    over_threshold: bool,
    interrupted: str | None,
) -> tuple[Stability, bool]:
    rule = ctx.rule
    if interrupted is not None:
        return "interrupted", False
    if not windows or any(w.completed == 0 for w in windows[-rule.stability_window :]):
        return "empty_window", False
    if stable:
        return "stable", True
    ended = over_threshold or len(windows) >= rule.max_trials
    if rule.throughput_relaxation and throughput_stable and ended:
        return "throughput_only", True
    if over_threshold:
        return "over_latency_threshold", False
    return "unstable", False


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
    *,
    stable: bool,
    throughput_stable: bool,
    over_threshold: bool,
    interrupted: str | None = None,
) -> LevelResult:
    """Merge the last ``stability_window`` windows into the level's result (see module doc)."""
    rule = ctx.rule
    stability, is_stable = _outcome(windows, ctx, stable, throughput_stable, over_threshold, interrupted)
    last = list(windows[-rule.stability_window :])
    lat = (
        np.concatenate([w.latencies_ns for w in last]).astype(np.int64, copy=False)
        if last
        else np.zeros(0, np.int64)
    )
    latency = summarize(lat, rule.percentile) or LatencySummary(percentiles_ns={}, count=0)
    svc_parts = [w.service_ns for w in last if w.service_ns is not None]
    service = summarize(np.concatenate(svc_parts), rule.percentile) if svc_parts else None
    if (
        is_stable
        and rule.latency_threshold_ms
        and latency.count
        and latency.stabilizing_ns(rule.percentile) // 1_000_000 >= rule.latency_threshold_ms
    ):
        stability = "over_latency_threshold"

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


def outcome_message(level: LevelResult, ctx: LevelContext, interrupted: str | None = None) -> str | None:
    """perf_analyzer's words for a level that is not recorded as stable; None when it is."""
    rule = ctx.rule
    if level.stability == "interrupted":
        return f"Level {ctx.describe()} ended early: {interrupted or 'interrupted'}"
    if level.stability == "empty_window":
        return (
            "No valid requests recorded within a measurement window. "
            f"Please use a larger time window ({rule.window_flag})."
        )
    if level.stability == "unstable":
        return (
            f"Failed to obtain stable measurement within {len(level.windows)} measurement windows for "
            f"{ctx.describe()}. Please try to increase the {rule.window_flag}."
        )
    if level.stability == "over_latency_threshold":
        return f"Measured latency went over the set limit of {rule.latency_threshold_ms:g} msec."
    if level.stability == "throughput_only":
        return (
            "Request latency is not stabilizing (throughput alone is stable). Please try lowering the load."
        )
    return None
