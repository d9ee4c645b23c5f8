"""``saturate demo``: argparse → :class:`~scans.demo.steps.DemoConfig` (or the tune demo) → the run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from saturate.errors import ConfigError
from scans.demo.steps import DemoConfig, prepare_out, resolve_device, run_demo
from scans.flags import parse_batch_sizes, parse_concurrency
from servers.backends import BACKENDS


def add_demo(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole path on this machine: direct scan, served model scan, monitor, report",
        description="Direct-scan the model, serve it (GPU when present, else CPU) on free loopback ports, "
        "scan concurrency x batch with the monitor beside it, and write report.html; prints its path.",
    )
    p.add_argument("--out", type=Path, default=Path("demo-results"), help="result directory (demo-results)")
    p.add_argument("--model", default="particlenet", help="zoo model (default particlenet)")
    p.add_argument("--backend", default="torch", help=f"{' | '.join(BACKENDS)} (default torch)")
    p.add_argument("--device", default="auto", help="auto (cuda:0 when present, else cpu), cpu, cuda:N")
    p.add_argument("--concurrency", default="1,2,4,8", help="server scan concurrencies (default 1,2,4,8)")
    p.add_argument("--batch-sizes", default="1,16", help="batch sizes of both scans (default 1,16)")
    p.add_argument("-p", "--measurement-interval", type=int, default=1000, metavar="MS",
                   help="server scan window in ms (default 1000)")
    p.add_argument("-r", "--max-trials", type=int, default=5, help="windows per level at most (default 5)")
    p.add_argument("--direct-trials", type=int, default=30, help="direct scan trials per batch (default 30)")
    p.add_argument("--latency-budget-ms", type=float, default=250.0,
                   help="p95 budget that defines the knee (default 250)")
    p.add_argument("--tune", action="store_true",
                   help="instead: a small `saturate tune` (3 candidates, quick search) into OUT/tune")
    p.set_defaults(func=run_demo_cmd)


def run_demo_cmd(args: argparse.Namespace) -> int:
    try:
        batches = tuple(parse_batch_sizes(args.batch_sizes))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.tune:  # issue #16: too long to fit in the demo's budget on the CPU (see scans/tune/demo.py)
        from scans.tune.demo import DemoTune, run_demo_tune

        prepare_out(args.out)
        return run_demo_tune(DemoTune(out=args.out, model=args.model, backend=args.backend,
                                      device=resolve_device(args.device),
                                      latency_budget_ms=args.latency_budget_ms))
    return run_demo(DemoConfig(
        out=args.out, model=args.model, backend=args.backend, device=args.device,
        concurrencies=parse_concurrency(args.concurrency), batch_sizes=batches,
        interval_ms=args.measurement_interval, max_trials=args.max_trials, direct_trials=args.direct_trials,
        latency_budget_ms=args.latency_budget_ms,
    ))
