"""``saturate scan server``: argparse → :class:`~scans.server.server_scan.ScanConfig` → the scan."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from loadgen.config import LoadConfig, Range, parse_shape
from loadgen.traffic_cli import shape_dist_flags, shape_dist_from_args
from saturate.errors import ConfigError
from scans.engines import ENGINES, engine_options
from scans.flags import batch_sizes_from, parse_concurrency
from scans.server.server_scan import ScanConfig, ServerScan
from scans.server.serverproc import ServeConfig, zoo_shapes
from servers.backends import BACKENDS


def add_server(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "server",
        help="concurrency x batch grid against a Triton server, monitor beside it, one result per level",
        description="Measure every (batch size, concurrency) level against a server (-u) or one started "
        "from the zoo (--serve), with the monitor beside it. OUT gets scan.json (saturate.run/1, "
        "rewritten after every level), b<N>.csv per batch size, monitor.csv and scan.log.",
    )
    g = p.add_argument_group("server")
    g.add_argument("-m", "--model", default="particlenet", help="model name (default particlenet)")
    g.add_argument("-u", "--url", default=None, help="HOST:PORT of a running server (not with --serve)")
    g.add_argument("-i", "--protocol", default="grpc", choices=("grpc", "http"), help="default grpc")
    g.add_argument("--access-token", default=None, help="the server's token (for its statistics)")
    g.add_argument("--serve", action="store_true", help="start the zoo model's server here and stop it after")
    g.add_argument("--backend", default="torch", help=f"with --serve: {' | '.join(BACKENDS)} (default torch)")
    g.add_argument("--device", default="cpu", help="with --serve: cpu or cuda:N (default cpu)")
    g.add_argument("--max-batch", type=int, default=1024, help="with --serve: max batch (default 1024)")
    g.add_argument("--max-queue-delay-us", type=int, default=0,
                   help="with --serve: batcher delay (default 0)")
    g.add_argument("--instances", type=int, default=1, help="with --serve: model instances (default 1)")
    g = p.add_argument_group("grid")
    g.add_argument("--concurrency", default="1,2,4,8",
                   help="list 1,2,4,8 or range a:b[:step] (default 1,2,4,8)")
    grp = g.add_mutually_exclusive_group()
    grp.add_argument("--batch-sizes", default=None, help="comma list, e.g. 1,16 (default 1)")
    grp.add_argument("--batch-range", default=None, help="LO:HI, the powers of two between, e.g. 1:64")
    g.add_argument("--engine", default="saturate", choices=ENGINES, help="what measures a level")
    g.add_argument("--engine-option", action="append", default=[], metavar="KEY=VALUE",
                   help="perf_analyzer engine: image=SDK.sif, gpu=none|nvidia|rocm, binary=PATH, dir=DIR "
                   "(recorded in scan.json; SATURATE_PA_IMAGE/_GPU/_DIR fill the keys not given)")
    g = p.add_argument_group("measurement (as saturate load / perf_analyzer)")
    g.add_argument("-p", "--measurement-interval", type=int, default=5000, metavar="MS", help="window ms")
    g.add_argument("-s", "--stability-percentage", type=float, default=10.0, help="default 10")
    g.add_argument("-r", "--max-trials", type=int, default=10, help="windows per level at most (default 10)")
    g.add_argument("--percentile", type=int, default=None, help="stabilise on pN latency, not the average")
    g.add_argument("--warmup-request-count", type=int, default=0, help="requests per batch size, dropped")
    g.add_argument("--shape", action="append", default=[], metavar="NAME:d,d",
                   help="variable input dims (default: a zoo model's default sizes)")
    g.add_argument("--processes", type=int, default=1, help="client processes (default 1)")
    shape_dist_flags(g)
    g.add_argument("--latency-budget-ms", type=float, default=None,
                   help="the knee is the best throughput with p95 within this (default: no budget)")
    g = p.add_argument_group("output")
    g.add_argument("--out", required=True, type=Path, help="result directory")
    g.add_argument("--resume", action="store_true", help="skip the levels OUT/scan.json already holds")
    g.add_argument("--no-monitor", action="store_true", help="do not run the utilization monitor")
    g.add_argument("--monitor-interval", type=float, default=0.25, help="seconds (default 0.25)")
    g.add_argument("--monitor-source", default="auto", help="monitor sources (default auto)")
    g = p.add_argument_group("repeats and gates")
    g.add_argument("--repeats", type=int, default=1, metavar="N",
                   help="measure the grid N times, round-robin; mean and 95%% interval per level")
    g.add_argument("--slo", action="append", default=[], metavar="EXPR",
                   help="gate, e.g. 'p95 < 20ms': exit 1 when a level fails it (repeat the flag)")
    p.set_defaults(func=run_server)


def scan_config(args: argparse.Namespace) -> ScanConfig:
    """The :class:`ScanConfig` of parsed ``scan server`` arguments (bad values → one-line ConfigError)."""
    batches = batch_sizes_from(args.batch_range, args.batch_sizes, [1])
    concurrency = parse_concurrency(args.concurrency)
    serve = None
    if args.serve:
        if args.url is not None:
            raise ConfigError("give either -u URL (a running server) or --serve, not both")
        if args.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {args.backend!r}; choose one of: {', '.join(BACKENDS)}")
        serve = ServeConfig(model=args.model, backend=args.backend, device=args.device,
                            max_batch=args.max_batch, max_queue_delay_us=args.max_queue_delay_us,
                            instances=args.instances)
    elif args.url is None:
        raise ConfigError("give -u HOST:PORT of a running server, or --serve to start one here")
    shape_dist = shape_dist_from_args(args)
    if shape_dist is not None and args.engine != "saturate":
        raise ConfigError("--shape-dist/--dim-dist/--dims-file need --engine saturate "
                          "(perf_analyzer can only cycle the shapes of an --input-data file)")
    low = min(concurrency)  # LoadConfig checks e.g. --processes against the smallest level
    load = LoadConfig(
        model=args.model, url=args.url or "", protocol=args.protocol, access_token=args.access_token,
        concurrency_range=Range(low, low, 1),
        measurement_interval_ms=args.measurement_interval, stability_percentage=args.stability_percentage,
        max_trials=args.max_trials, percentile=args.percentile,
        warmup_request_count=args.warmup_request_count,
        shapes=tuple(parse_shape(s) for s in args.shape) or zoo_shapes(args.model), processes=args.processes,
        shape_dist=shape_dist,
        repeats=args.repeats, slo=tuple(args.slo),
    )
    sources = tuple(s.strip() for s in args.monitor_source.split(",") if s.strip())
    return ScanConfig(out=args.out, load=load, concurrencies=concurrency, batch_sizes=tuple(batches),
                      engine=args.engine, engine_options=engine_options(args.engine, args.engine_option),
                      latency_budget_ms=args.latency_budget_ms, resume=args.resume,
                      monitor=not args.no_monitor, monitor_interval_s=args.monitor_interval,
                      monitor_sources=sources, serve=serve)


def run_server(args: argparse.Namespace) -> int:
    return ServerScan(scan_config(args)).run()
