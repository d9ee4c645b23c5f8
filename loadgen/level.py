"""Assembling a :class:`~loadgen.result.LevelResult` from a level's windows, and its verdict.

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
    Saturation,
    ServerSummary,
    Stability,
    Throughput,
    Verdict,
    WindowStats,
    WindowSummary,
)
from loadgen.serverstats import merge_deltas, summarize_server
from loadgen.stats import percentile_set, summarize

DELAY_PCT_THRESHOLD = 1.0  # PA: warn when more than 1% of requests were sent late
GPU_SATURATED = 0.9  # average utilisation (fraction) that marks a GPU as the limit
QUEUE_SATURATED = 0.5  # server queue time per request, as a fraction of compute time, that marks it


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
    cpu_threshold: float = 0.9

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
    verdict = make_verdict(level, ctx, all_failed, interrupted)
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


def make_verdict(
    level: LevelResult, ctx: LevelContext, failed_in_level: int, interrupted: str | None
) -> Verdict:
    """What limits the level and whether its numbers can be trusted, with the reasons in words.

    saturated: ``client`` when the client used >= ``cpu_threshold`` of a core per process or could not
    keep the schedule (>1% delayed, or drops at the outstanding cap); else ``gpu`` when a GPU averaged
    >= 90% utilisation; else ``server_queue`` when requests queued >= half their compute time; else
    ``none``. valid: measured stable, no failed request, not interrupted, <= 1% delayed.
    """
    reasons: list[str] = []
    valid = level.stability in ("stable", "throughput_only")
    msg = outcome_message(level, ctx, interrupted)
    if msg:
        reasons.append(msg)
    if failed_in_level:
        codes = ", ".join(
            f"{k}: {v}" for k, v in sorted((level.requests.errors if level.requests else {}).items())
        )
        reasons.append(
            f"{failed_in_level} failed requests in this level"
            + (f" (last windows: {codes})" if codes else "")
        )
        valid = False
    saturated: Saturation = "none"
    util = level.client.cpu_util
    if util is not None and util >= ctx.cpu_threshold * max(1, ctx.processes):
        saturated = "client"
        reasons.append(
            f"client CPU at {100 * util / max(1, ctx.processes):.0f}% of a core per process: the client, "
            "not the server, may be the bottleneck (try --processes)"
        )
    req = level.requests
    if req is not None and req.completed + req.failed > 0:
        pct = 100.0 * req.delayed / (req.completed + req.failed)
        if pct > DELAY_PCT_THRESHOLD:
            saturated = "client"
            valid = False
            reasons.append(
                f"{pct:.2f}% of the requests were sent late: the client could not keep up with the rate"
            )
    if req is not None and req.dropped:
        saturated = "client"
        reasons.append(f"{req.dropped} requests dropped at the outstanding-request cap")
    gpu_util = max(level.gpu.util.values()) if level.gpu is not None and level.gpu.util else 0.0
    if saturated == "none" and gpu_util >= GPU_SATURATED:
        saturated = "gpu"
    srv = level.server
    if saturated == "none" and srv is not None:
        compute = srv.compute_input_ns + srv.compute_infer_ns + srv.compute_output_ns
        if compute > 0 and srv.queue_ns >= QUEUE_SATURATED * compute:
            saturated = "server_queue"
    if srv is not None and srv.network_server_ns == 0 and level.latency.count:
        reasons.append(
            "Server average accounted time was larger than client average wait time due to small "
            f"sample size. Increase the measurement interval with `{ctx.rule.window_flag}`."
        )
    return Verdict(saturated=saturated, valid=valid, reasons=reasons)
