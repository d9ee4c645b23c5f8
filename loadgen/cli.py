"""`saturate load`: perf_analyzer-compatible flags, plus --processes, --json, --access-token,
--seed, --max-outstanding and --continue-on-unstable."""

from __future__ import annotations

import argparse
from typing import Any

from loadgen import eventloop
from loadgen.config import DRIVERS, SENDERS, LoadConfig, parse_range, parse_shape
from loadgen.traffic_cli import traffic_flags, traffic_settings
from saturate.errors import ConfigError


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the `load` subcommand."""
    p = sub.add_parser(
        "load", help="perf_analyzer-compatible load against a KServe v2 / Triton server",
        description="Drive a Triton (KServe v2) server at a sweep of concurrencies or request rates and "
        "report throughput, latency percentiles, server-side time and client cost per level.")
    a = p.add_argument
    a("-m", "--model-name", dest="model", required=True, help="model to load")
    a("-x", "--model-version", default="", help="model version (default: the server's choice)")
    a("-u", "--url", default="", help="HOST:PORT (default localhost:8001 for grpc, localhost:8000 for http)")
    a("-i", "--protocol", choices=("grpc", "http"), default="grpc")
    a("-b", "--batch-size", type=int, default=1, help="inferences per request (default 1)")
    a("--concurrency-range", metavar="START:END:STEP", help="closed-loop levels (default 1)")
    a("--request-rate-range", metavar="START:END:STEP", help="open-loop levels in requests/s")
    a("--request-distribution", choices=("constant", "poisson"), default="constant")
    a("--shape", action="append", default=[], metavar="NAME:D1,D2", help="dims of a variable input (repeat)")
    a("--input-data", default="random", help="random | zero | FILE.json (perf_analyzer format)")
    a("-p", "--measurement-interval", type=int, default=5000, metavar="MS", help="window, ms (default 5000)")
    a("--measurement-mode", choices=("time_windows", "count_windows"), default="time_windows")
    a("--measurement-request-count", type=int, default=50, help="requests per count window (default 50)")
    a("-s", "--stability-percentage", type=float, default=10.0, help="max/min spread, %% (default 10)")
    a("-r", "--max-trials", type=int, default=10, help="most windows per level (default 10)")
    a("--percentile", type=int, default=None, help="stabilize on pN latency instead of the average")
    a("-l", "--latency-threshold", type=int, default=0, metavar="MS", help="stop the sweep above this")
    a("--warmup-request-count", type=int, default=0, help="requests sent and discarded before measuring")
    a("-a", "--async", dest="async_relaxation", action="store_true",
      help="perf_analyzer async rule: accept a level whose throughput alone is stable after -r windows")
    a("-f", "--filename", dest="csv_file", default=None, help="write the perf_analyzer CSV here")
    a("--verbose-csv", action="store_true", help="add Avg latency, request/response, response wait columns")
    a("--collect-metrics", action="store_true", help="scrape GPU metrics from Triton's /metrics")
    a("--metrics-url", default=None, help="default <host of -u>:8002/metrics")
    a("--metrics-interval", type=int, default=1000, metavar="MS")
    a("--processes", default="1", metavar="K|auto",
      help="worker processes sharing the load (default 1); auto: add one while the client limits")
    a("--event-loop", choices=("uvloop", "asyncio"), default="uvloop",
      help="event loop of the load generator (default uvloop)")
    a("--driver", choices=DRIVERS, default="auto",
      help="closed loop: native (N gRPC calls in flight in C on one completion queue, as perf_analyzer's "
      "async mode), native-sync (one C thread per call, as its sync mode), threads (blocking sends on "
      "Python threads) or the event loop; auto (default): where the C loops can run (gRPC, the native "
      "sender built, no --shape-dist) native-sync for a model with dynamic batching and native otherwise, "
      "else threads up to 4 in flight. Against a dynamic batcher, native resends a returned batch's "
      "requests together and gets larger batches (and more throughput) than perf_analyzer; native-sync "
      "gets its sync mode's batches")
    a("--sender", choices=SENDERS, default="auto",
      help="the threaded driver's gRPC sender: native (saturate's C-core extension, `make native`) or "
      "python (grpcio); auto: native when built (default)")
    a("--json", dest="json_file", default=None, help="write the run JSON here (after every level)")
    a("--latency-file", default=None, metavar="FILE.npz",
      help="raw latencies (ns) of each level's merged windows, for `saturate merge`")
    a("--start-at", type=float, default=None, metavar="UNIX_SECONDS",
      help="wait until this wall-clock time before the warm-up (several clients starting together)")
    a("--access-token", default=None, help="Triton access token (sent on every call)")
    a("--request-timeout", type=float, default=30.0, metavar="S",
      help="deadline of each request, s (gRPC and HTTP alike; past it the request counts as failed, "
      "DEADLINE_EXCEEDED; 0 = none; default 30)")
    a("--seed", type=int, default=0, help="seed of random input data and Poisson schedules")
    a("--max-outstanding", type=int, default=0, help="open loop: cap on requests in flight (0 = none)")
    a("--continue-on-unstable", action="store_true", help="go on with the sweep after an unstable level")
    a("-v", "--verbose", action="store_true", help="print every window's numbers")
    traffic_flags(p)
    a("--repeats", type=int, default=1, metavar="N",
      help="measure every level N times, round-robin; mean and 95%% t-interval per level (default 1)")
    a("--slo", action="append", default=[], metavar="EXPR",
      help="gate, e.g. 'p95 < 20ms' or 'throughput > 1000': exit 1 when a level fails it (repeat)")
    p.set_defaults(func=run_load)


def config_from_args(args: argparse.Namespace) -> LoadConfig:
    """Build the frozen LoadConfig from parsed flags (raises ConfigError on bad values)."""
    traffic = traffic_settings(args)
    return LoadConfig(
        model=args.model, url=args.url, protocol=args.protocol, model_version=args.model_version,
        batch_size=args.batch_size,
        concurrency_range=parse_range(args.concurrency_range, "--concurrency-range", True)
        if args.concurrency_range else None,
        request_rate_range=parse_range(args.request_rate_range, "--request-rate-range", False)
        if args.request_rate_range else traffic.pop("request_rate_range", None),
        request_distribution=args.request_distribution, shapes=tuple(parse_shape(s) for s in args.shape),
        input_data=args.input_data, measurement_interval_ms=args.measurement_interval,
        measurement_mode=args.measurement_mode, measurement_request_count=args.measurement_request_count,
        stability_percentage=args.stability_percentage, max_trials=args.max_trials,
        percentile=args.percentile,
        latency_threshold_ms=args.latency_threshold, warmup_request_count=args.warmup_request_count,
        async_relaxation=args.async_relaxation, csv_file=args.csv_file, verbose_csv=args.verbose_csv,
        collect_metrics=args.collect_metrics, metrics_url=args.metrics_url,
        metrics_interval_ms=args.metrics_interval, processes=_processes(args.processes),
        processes_auto=args.processes == "auto", event_loop=args.event_loop, json_file=args.json_file,
        latency_file=args.latency_file, start_at=args.start_at, driver=args.driver, sender=args.sender,
        access_token=args.access_token, request_timeout_s=args.request_timeout, seed=args.seed,
        max_outstanding=args.max_outstanding,
        continue_on_unstable=args.continue_on_unstable, verbose=args.verbose,
        repeats=args.repeats, slo=tuple(args.slo), **traffic)


def run_load(args: argparse.Namespace) -> int:
    """`saturate load`: returns 0, 2 (first level unstable, as perf_analyzer) or 1 (server lost)."""
    cfg = config_from_args(args)
    from loadgen.runner import run

    return eventloop.run(run(cfg), cfg.event_loop)


def _processes(value: str) -> int:
    if value == "auto":
        return 1
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"--processes takes a number or auto, not {value!r}") from None
