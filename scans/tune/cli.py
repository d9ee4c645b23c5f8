"""``saturate tune``: argparse → :class:`~scans.tune.runner.TuneConfig` → the tune, then the report."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from loadgen.config import LoadConfig, Range, parse_shape
from saturate.errors import ConfigError
from scans.tune import output
from scans.tune.runner import TuneConfig, Tuner
from scans.tune.search import SearchRule
from scans.tune.serving import zoo_shapes
from scans.tune.space import TuneSpace
from scans.tune.strategy import STRATEGIES
from scans.tune.validity import TailRule


def int_list(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected integers like 1,2,4") from None


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``1h`` → seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if m is None or float(m.group(1)) <= 0:
        raise ConfigError(f"--time-budget {text!r}: expected a duration like 90s, 30m or 1h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def add_tune(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "tune",
        help="best serving configuration (instances, batching, queue delay, client batch and concurrency) "
        "within a latency budget",
        description="Start the zoo model's server once per candidate configuration (or tune only the client "
        "against -u URL), search the highest-throughput concurrency within the p95 budget per client batch "
        "(double, then bisect), and write OUT/tune.json, OUT/pareto.png, OUT/report.html and the winning "
        "`saturate serve` command.",
    )
    g = p.add_argument_group("model and server")
    g.add_argument("-m", "--model", default="particlenet", help="zoo model (default particlenet)")
    g.add_argument("--backend", default="torch", help="backend of the started servers (default torch)")
    g.add_argument("--device", default="cpu", help="cpu or cuda:N (default cpu)")
    g.add_argument(
        "-u", "--url", default=None, help="HOST:PORT of a running server: tune only the client side"
    )
    g.add_argument("-i", "--protocol", default="grpc", choices=("grpc", "http"), help="default grpc")
    g.add_argument("--access-token", default=None, help="with -u: the server's token")
    g.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra `saturate serve` argument for every candidate (repeat), e.g. --serve-arg=--compile",
    )
    g = p.add_argument_group("search space")
    g.add_argument("--latency-budget-ms", type=float, required=True, help="tail-latency budget in ms")
    g.add_argument("--batch-sizes", default="1", help="client batch sizes (default 1)")
    g.add_argument("--instances", default="1,2", help="model instances (default 1,2)")
    g.add_argument("--max-queue-delay-us", default="0,1000", help="dynamic batcher delays (default 0,1000)")
    g.add_argument("--preferred-batch", default="none", help="auto | none | LIST (default none)")
    g.add_argument(
        "--max-batch", type=int, default=None, help="Triton max_batch_size (default max(64, batches))"
    )
    g.add_argument("--search", default="grid", choices=STRATEGIES, help="grid (every candidate) or quick")
    g.add_argument("--max-candidates", type=int, default=None, help="measure at most N candidates")
    g.add_argument("--time-budget", default=None, help="start no candidate after this long, e.g. 30m")
    g.add_argument("--max-concurrency", type=int, default=256, help="concurrency search cap (default 256)")
    g.add_argument(
        "--min-gain",
        type=float,
        default=0.05,
        help="doubling stops when throughput rises less than this fraction (default 0.05)",
    )
    g.add_argument(
        "--confirm-runs",
        type=int,
        default=3,
        metavar="N",
        help="after the search, measure the winning point (and the defaults' best) N more times on a fresh "
        "server and report the median (default 3; 0: no confirmation)",
    )
    g = p.add_argument_group("measurement (as saturate load / perf_analyzer)")
    g.add_argument("--percentile", type=int, default=95, help="tail percentile of the budget (default 95)")
    g.add_argument(
        "--tail-confidence", type=float, default=0.95, help="confidence of a tail claim (default 0.95)"
    )
    g.add_argument(
        "--tail-margin",
        type=float,
        default=None,
        metavar="POINTS",
        help="margin of a tail claim in percentile points (default (100-percentile)/4)",
    )
    g.add_argument("-p", "--measurement-interval", type=int, default=2000, metavar="MS", help="default 2000")
    g.add_argument("-s", "--stability-percentage", type=float, default=10.0, help="default 10")
    g.add_argument("-r", "--max-trials", type=int, default=6, help="windows per level at most (default 6)")
    g.add_argument(
        "--warmup-request-count",
        type=int,
        default=50,
        help="requests sent and dropped per candidate and batch (default 50)",
    )
    g.add_argument("--shape", action="append", default=[], metavar="NAME:d,d", help="variable input dims")
    g = p.add_argument_group("output")
    g.add_argument("--out", required=True, type=Path, help="result directory")
    g.add_argument(
        "--resume", action="store_true", help="skip the candidates OUT/tune.json holds as measured"
    )
    p.set_defaults(func=run_tune)


def tune_config(args: argparse.Namespace) -> TuneConfig:
    """The :class:`TuneConfig` of parsed arguments (bad values → one-line ConfigError, nothing measured)."""
    if args.max_candidates is not None and args.max_candidates < 1:
        raise ConfigError("--max-candidates must be at least 1")
    if args.confirm_runs < 0:
        raise ConfigError(f"--confirm-runs {args.confirm_runs}: expected 0 (no confirmation) or more runs")
    space = TuneSpace(
        batch_sizes=int_list(args.batch_sizes, "--batch-sizes"),
        instances=int_list(args.instances, "--instances") if args.url is None else (1,),
        max_queue_delay_us=int_list(args.max_queue_delay_us, "--max-queue-delay-us")
        if args.url is None
        else (0,),
        preferred=args.preferred_batch.strip(),
        max_batch=args.max_batch,
        external=args.url is not None,
    )
    rule = SearchRule(
        budget_ms=args.latency_budget_ms, max_concurrency=args.max_concurrency, min_gain=args.min_gain
    )
    tail = TailRule(
        percentile=args.percentile, confidence=args.tail_confidence, margin_points=args.tail_margin
    )
    if args.url is None:
        from servers.backends import BACKENDS
        from servers.models import get_spec

        get_spec(args.model)
        if args.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {args.backend!r}; choose one of: {', '.join(BACKENDS)}")
    load = LoadConfig(
        model=args.model,
        url=args.url or "",
        protocol=args.protocol,
        access_token=args.access_token,
        concurrency_range=Range(1, 1, 1),
        measurement_interval_ms=args.measurement_interval,
        stability_percentage=args.stability_percentage,
        max_trials=args.max_trials,
        percentile=args.percentile,
        warmup_request_count=args.warmup_request_count,
        shapes=tuple(parse_shape(s) for s in args.shape) or zoo_shapes(args.model),
    )
    load.validate()
    return TuneConfig(
        out=args.out,
        load=load,
        space=space,
        rule=rule,
        tail=tail,
        backend=args.backend,
        device=args.device,
        search=args.search,
        max_candidates=args.max_candidates,
        time_budget_s=None if args.time_budget is None else parse_duration(args.time_budget),
        resume=args.resume,
        serve_extra=tuple(args.serve_arg),
        confirm_runs=args.confirm_runs,
    )


def run_tune(args: argparse.Namespace) -> int:
    return tune_and_report(tune_config(args))


def tune_and_report(cfg: TuneConfig) -> int:
    """Run the tune, write the Pareto PNG and report.html, print the ranked table and the winner."""
    tuner = Tuner(cfg)
    code = tuner.run()
    png = output.pareto_png(tuner.doc)
    if png is not None:
        (cfg.out / output.PNG_NAME).write_bytes(png)
    from scans.report.build import ReportConfig, make_report

    html = make_report(ReportConfig(source=cfg.out, out=cfg.out, title=f"saturate tune: {cfg.load.model}"))
    print(output.summary_text(tuner.doc))
    print(f"report: {html}")
    return code


def register(sub: argparse._SubParsersAction[Any]) -> None:
    add_tune(sub)
