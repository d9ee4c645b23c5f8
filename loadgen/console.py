"""Console output shaped like perf_analyzer's (perf_analyzer src/perf_analyzer.cc and
src/inference_profiler.cc ``Report*``; the run in its docs/quick_start.md).

Functions return text; the runner prints reports on stdout and progress lines on stderr. Lines that
perf_analyzer prints keep its wording and spacing (including the trailing space after ``Client:``);
what we add (failures, client CPU, delays, verdict reasons) follows in the same style.
"""

from __future__ import annotations

from collections.abc import Iterable

from loadgen.csvfmt import fmt_g
from loadgen.result import LevelResult, WindowSummary


def settings_banner(
    *,
    batch_size: int,
    mode: str,
    limit: float,
    latency_threshold_ms: float = 0,
    percentile: int | None = None,
    count_windows: bool = False,
    interval_ms: int = 5000,
    request_count: int = 50,
    distribution: str = "constant",
    warmup_requests: int = 0,
    processes: int = 1,
    synchronous: bool = False,
) -> str:
    """perf_analyzer's ``*** Measurement Settings ***`` block (``limit``: end of the range; 0 = none).

    We stabilise on latency **and** throughput (throughput alone only as the flagged fallback), so the
    banner says so instead of perf_analyzer's async "throughput".
    """
    lines = ["*** Measurement Settings ***", f"  Batch size: {batch_size}", "  Service Kind: TRITON"]
    if warmup_requests > 0:
        lines.append(f"  Sending {warmup_requests} warmup request{'s' if warmup_requests > 1 else ''}")
    lines.append(f'  Using "{"count_windows" if count_windows else "time_windows"}" mode for stabilization')
    metric = "latency and throughput"
    lines.append(f"  Stabilizing using {'average' if percentile is None else f'p{percentile}'} {metric}")
    if count_windows:
        lines.append(f"  Minimum number of samples in each window: {request_count}")
    else:
        lines.append(f"  Measurement window: {interval_ms} msec")
    if limit != 1:
        lines.append(f"  Latency limit: {fmt_g(latency_threshold_ms)} msec")
        if limit != 0 and mode == "concurrency":
            lines.append(f"  Concurrency limit: {int(limit)} concurrent requests")
        elif limit != 0:
            lines.append(f"  Request Rate limit: {fmt_g(limit)} requests per seconds")
    if mode == "request_rate":
        kind = "poisson" if distribution == "poisson" else "uniform"
        lines.append(f"  Using {kind} distribution on request generation")
    # `synchronous`: the closed loop blocks one thread per request (--driver native-sync or threads), as
    # perf_analyzer's default mode does; else one loop keeps them all in flight, as its --async
    lines.append(f"  Using {'synchronous' if synchronous else 'asynchronous'} calls for inference")
    if processes > 1:
        lines.append(f"  Using {processes} client processes")
    return "\n".join(lines) + "\n"


def level_header(mode: str, value: float) -> str:
    """The line perf_analyzer prints when a level starts."""
    if mode == "request_rate":
        return f"Request Rate: {fmt_g(value)} inference requests per second"
    return f"Request concurrency: {int(value)}"


def _pct(level: LevelResult) -> list[str]:
    return [f"    p{p} latency: {ns // 1000} usec" for p, ns in sorted(level.latency.percentiles_ns.items())]


def level_report(level: LevelResult, *, protocol: str = "grpc", collect_metrics: bool = False) -> str:
    """The per-level block (``  Client: `` … ``  Server: `` … metrics), plus our additions."""
    lat, c, req = level.latency, level.client, level.requests
    out = ["  Client: ", f"    Request count: {lat.count or 0}"]
    if req is not None and level.mode == "request_rate" and req.completed:
        delayed_pct = 100.0 * req.delayed / req.completed
        if delayed_pct > 1.0:
            out.append(f"    Avg send request rate: {level.throughput.send_per_s or 0.0:.2f} infer/sec")
            out.append(
                "    [WARNING] saturate was not able to keep up with the desired request rate. "
                f"{delayed_pct:.2f}% of the requests were delayed. "
            )
    out.append(f"    Throughput: {fmt_g(level.throughput.infer_per_s)} infer/sec")
    if level.percentile is None and lat.avg_ns is not None:
        std = "n/a" if lat.std_ns is None else str(lat.std_ns // 1000)
        out.append(f"    Avg latency: {lat.avg_ns // 1000} usec (standard deviation {std} usec)")
    out += _pct(level)
    if c.request_ns is not None:
        s_r = c.send_ns // 1000 + c.recv_ns // 1000
        if protocol == "http":
            detail = f"send/recv {s_r} usec + response wait {c.response_wait_us} usec"
            out.append(f"    Avg HTTP time: {c.request_ns // 1000} usec ({detail})")
        else:
            detail = f"(un)marshal request/response {s_r} usec + response wait {c.response_wait_us} usec"
            out.append(f"    Avg gRPC time: {c.request_ns // 1000} usec ({detail})")
    out += _ours(level)
    srv = level.server
    if srv is not None:
        out.append("  Server: ")
        if not srv.success_count:
            out.append("    Request count: 0")
        else:
            out += [
                f"    Inference count: {srv.inferences}",
                f"    Execution count: {srv.executions}",
                f"    Successful request count: {srv.success_count}",
                f"    Avg request latency: {(srv.request_ns or 0) // 1000} usec (overhead "
                f"{(srv.overhead_ns or 0) // 1000} usec + queue {srv.queue_ns // 1000} usec + compute input "
                f"{srv.compute_input_ns // 1000} usec + compute infer {srv.compute_infer_ns // 1000} usec + "
                f"compute output {srv.compute_output_ns // 1000} usec)",
            ]
    if collect_metrics:
        g = level.gpu
        out.append("  Server Prometheus Metrics: ")
        out.append("    Avg GPU Utilization:")
        out += [f"      {k} : {fmt_g(v * 100.0)}%" for k, v in (g.util if g else {}).items()]
        out.append("    Avg GPU Power Usage:")
        out += [f"      {k} : {fmt_g(v)} watts" for k, v in (g.power_w if g else {}).items()]
        out.append("    Max GPU Memory Usage:")
        out += [f"      {k} : {v} bytes" for k, v in (g.mem_used_bytes if g else {}).items()]
        out.append("    Total GPU Memory:")
        out += [f"      {k} : {v} bytes" for k, v in (g.mem_total_bytes if g else {}).items()]
    out += [f"  [WARNING] {r}" for r in level.verdict.reasons]
    return "\n".join(out) + "\n"


def _ours(level: LevelResult) -> list[str]:
    """Lines perf_analyzer does not print: failures, schedule delays, service latency, client CPU."""
    out: list[str] = []
    req, c = level.requests, level.client
    if req is not None and req.failed:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(req.errors.items()))
        out.append(f"    Failed requests: {req.failed}" + (f" ({codes})" if codes else ""))
    if req is not None and level.mode == "request_rate":
        out.append(f"    Delayed requests: {req.delayed}, dropped: {req.dropped}")
    svc = level.service_latency
    if svc is not None and svc.avg_ns is not None:
        out.append(
            f"    Service latency (from actual send): avg {svc.avg_ns // 1000} usec, "
            + ", ".join(f"p{p} {ns // 1000} usec" for p, ns in sorted(svc.percentiles_ns.items()))
        )
    if c.cpu_ns_per_request is not None:
        util = "" if c.cpu_util is None else f" ({100 * c.cpu_util:.1f}% of a core"
        util += "" if not util else (f" over {c.processes} processes)" if c.processes > 1 else ")")
        out.append(f"    Client CPU: {c.cpu_ns_per_request / 1000:.1f} usec per request{util}")
    if c.own_latency_ns is not None and c.loop_lag_ns is not None:
        out.append(f"    Client's own share of latency: {c.own_latency_ns / 1000:.0f} usec "
                   f"(CPU per request + {c.loop_lag_ns / 1000:.0f} usec event-loop wait)")
    if level.stability not in ("stable", "throughput_only"):
        out.append(f"    Level {level.stability.replace('_', ' ')}: not recorded as a result")
    return out


def summary_table(levels: Iterable[LevelResult], percentile: int | None = None) -> str:
    """perf_analyzer's closing table, in measurement order (only the CSV is sorted)."""
    head = "Average" if percentile is None else f"p{percentile}"
    lines = [f"Inferences/Second vs. Client {head} Batch Latency"]
    for lv in levels:
        lead = (
            f"Request Rate: {fmt_g(lv.value)}"
            if lv.mode == "request_rate"
            else f"Concurrency: {lv.concurrency}"
        )
        lat = lv.latency.stabilizing_ns(percentile) // 1000 if lv.latency.count or lv.latency.avg_ns else 0
        lines.append(f"{lead}, throughput: {fmt_g(lv.throughput.infer_per_s)} infer/sec, latency {lat} usec")
    return "\n".join(lines) + "\n"


def progress_line(
    w: WindowSummary,
    index: int,
    *,
    level: str,
    max_trials: int,
    percentile: int | None = None,
    stable: bool = False,
) -> str:
    """One line per window (for stderr), like perf_analyzer's ``-v`` pass line plus state."""
    head = f"[{level}] Pass [{index}/{max_trials}]"
    if w.latency is None or w.completed == 0:
        body = f"no completed requests in {(w.end_ns - w.start_ns) / 1e9:.2f} s"
    elif percentile is None:
        std = "n/a" if w.latency.std_ns is None else str(w.latency.std_ns // 1000)
        body = (
            f"throughput: {fmt_g(w.infer_per_s)} infer/sec. Avg latency: "
            f"{(w.latency.avg_ns or 0) // 1000} usec (std {std} usec)."
        )
    else:
        p_us = w.latency.p(percentile) // 1000
        body = f"throughput: {fmt_g(w.infer_per_s)} infer/sec. p{percentile} latency: {p_us} usec."
    extra = f" {w.failed} failed." if w.failed else ""
    return f"{head} {body}{extra}{' stable' if stable else ''}"
