"""``saturate demo``: the whole path on this machine, in a few minutes.

1. direct scan of the model in-process (batch 1 and 16, a few dozen trials): the ceiling;
2. serve the model (``saturate serve`` subprocess on free loopback ports, always stopped) and scan it:
   concurrency 1, 2, 4, 8 x batch 1, 16 with short windows, the monitor beside it;
3. ``saturate report`` on the directory: PNGs and one report.html, whose path is printed.

The directory is the demo's own (marked by a ``.saturate-demo`` file): a rerun replaces its results.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgen.config import LoadConfig
from saturate.errors import ConfigError
from scans.direct import DirectConfig, run_direct_scan
from scans.report import ReportConfig, make_report
from scans.server_cli import parse_concurrency
from scans.server_scan import ScanConfig, ServerScan
from scans.serverproc import ServeConfig, zoo_shapes
from scans.stats import parse_batch_sizes
from servers.backends import BACKENDS
from servers.models import get_spec

MARKER = ".saturate-demo"
RESULTS = ("scan.json", "direct.json", "direct.csv", "monitor.csv", "scan.log", "server.log", "report.html")


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("demo-results")
    model: str = "particlenet"
    backend: str = "torch"
    device: str = "auto"
    concurrencies: tuple[int, ...] = (1, 2, 4, 8)
    batch_sizes: tuple[int, ...] = (1, 16)
    interval_ms: int = 1000
    max_trials: int = 5
    direct_trials: int = 30
    latency_budget_ms: float = 250.0

    def __post_init__(self) -> None:
        get_spec(self.model)
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}; choose one of: {', '.join(BACKENDS)}")
        if self.interval_ms < 100 or self.max_trials < 3 or self.direct_trials < 2:
            raise ConfigError("the demo needs -p >= 100 ms, -r >= 3 and --direct-trials >= 2")


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def prepare_out(out: Path) -> None:
    """Create the demo directory, or clear the results of an earlier demo in it (nothing else)."""
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ConfigError(f"{out} is not empty and not a demo directory; give an empty or new --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("results of saturate demo; a rerun replaces them\n")
    for name in RESULTS:
        (out / name).unlink(missing_ok=True)
    for csv in out.glob("b*.csv"):
        csv.unlink()
    shutil.rmtree(out / "plots", ignore_errors=True)


def say(text: str) -> None:
    print(f"saturate demo: {text}", file=sys.stderr, flush=True)


def run_demo(cfg: DemoConfig) -> int:
    """Direct scan, server scan, report; prints report.html's path on stdout. Returns the exit code."""
    t0 = time.monotonic()
    device = resolve_device(cfg.device)
    prepare_out(cfg.out)
    batches = ",".join(map(str, cfg.batch_sizes))
    say(f"1/3 direct scan of {cfg.model} ({cfg.backend}/{device}), batch {batches}")
    run_direct_scan(DirectConfig(model=cfg.model, backend=cfg.backend, device=device,
                                 batch_sizes=cfg.batch_sizes, trials=cfg.direct_trials, warmup_trials=3,
                                 warmup_ns=300_000_000), cfg.out)
    say(f"2/3 server scan: concurrency {','.join(map(str, cfg.concurrencies))} x batch {batches}, "
        f"{cfg.interval_ms} ms windows, at most {cfg.max_trials} per level")
    scan = ScanConfig(
        out=cfg.out, load=LoadConfig(model=cfg.model, measurement_interval_ms=cfg.interval_ms,
                                     max_trials=cfg.max_trials, shapes=zoo_shapes(cfg.model)),
        concurrencies=cfg.concurrencies, batch_sizes=cfg.batch_sizes, latency_budget_ms=cfg.latency_budget_ms,
        # max batch = the largest scanned batch: the batcher merges small requests but never several
        # big ones into one execution that outlasts a short window
        serve=ServeConfig(model=cfg.model, backend=cfg.backend, device=device, max_queue_delay_us=200,
                          max_batch=max(cfg.batch_sizes)),
    )
    code = ServerScan(scan).run()
    if code:
        return code
    say("3/3 report")
    html = make_report(ReportConfig(source=cfg.out, out=cfg.out,
                                    title=f"saturate demo: {cfg.model} on {cfg.backend}/{device}"))
    html = html.resolve()
    say(f"done in {time.monotonic() - t0:.0f} s; open {html}")
    print(html)
    return 0


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
