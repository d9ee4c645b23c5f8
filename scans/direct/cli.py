"""``saturate scan direct``: argparse → :class:`~scans.direct.direct_scan.DirectConfig` → the scan."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from loadgen.traffic_cli import shape_dist_flags, shape_dist_from_args
from saturate.errors import ConfigError
from scans.direct.direct_scan import MODES, DirectConfig, run_direct_scan
from scans.flags import batch_sizes_from
from servers.backends import BACKENDS
from servers.backends.base import PRECISIONS
from servers.models import get_spec


def add_direct(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "direct",
        help="in-process inference over batch sizes: latency mean ± SEM, median, p95, items/s ± SEM",
        description="Time a zoo model in-process through the servers backends (device-synchronised) "
        "over batch sizes; writes OUT/direct.json (saturate.run/1) and OUT/direct.csv after every batch.",
    )
    p.add_argument("--model", default="particlenet", help="particlenet or mlp (default particlenet)")
    p.add_argument("--backend", default="torch", help=f"one of {', '.join(BACKENDS)} (default torch)")
    p.add_argument("--device", default="cpu", help="cpu or cuda:N (ROCm GPUs are cuda:N too)")
    p.add_argument("--precision", default="fp32", help=f"one of {', '.join(PRECISIONS)} (default fp32)")
    p.add_argument("--model-file", default=None, help="state_dict/TorchScript/ONNX file, not seeded weights")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--batch-sizes", default=None, help="comma list, e.g. 1,2,4 (default 1,2,4,…,256)")
    group.add_argument("--batch-range", default=None, help="LO:HI, the powers of two between, e.g. 1:2048")
    p.add_argument("--trials", type=int, default=100, help="timed calls per batch size (default 100)")
    p.add_argument("--repeats", type=int, default=1, metavar="N",
                   help="measure every batch size N times, round-robin; mean and 95%% interval (default 1)")
    p.add_argument("--warmup-trials", type=int, default=10, help="untimed calls first (default 10)")
    p.add_argument("--warmup-seconds", type=float, default=1.0,
                   help="warm up at least this long too (default 1.0; both limits must be reached)")
    p.add_argument("--mode", default="sync", choices=MODES, help="sync or async (--in-flight)")
    p.add_argument("--in-flight", type=int, default=None, help="batches in flight in async mode (default 2)")
    p.add_argument("--points", type=int, default=None, help="ParticleNet PF candidates P (default 100)")
    p.add_argument("--svs", type=int, default=None, help="ParticleNet secondary vertices S (default 10)")
    p.add_argument("--input-pool", type=int, default=4, help="input sets cycled per batch (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic inputs (default 0)")
    shape_dist_flags(p)
    p.add_argument("--out", required=True, type=Path, help="result directory (created)")
    p.set_defaults(func=run_direct)


def direct_config(args: argparse.Namespace) -> DirectConfig:
    """The :class:`DirectConfig` for parsed ``scan direct`` arguments (bad values → ConfigError)."""
    batches = batch_sizes_from(args.batch_range, args.batch_sizes, DirectConfig.batch_sizes)
    get_spec(args.model)  # unknown model → one line before anything loads
    if args.backend not in BACKENDS:
        raise ConfigError(f"unknown backend {args.backend!r}; choose one of: {', '.join(BACKENDS)}")
    sizes: dict[str, int] = {}
    if args.points is not None:
        sizes["P"] = args.points
    if args.svs is not None:
        sizes["S"] = args.svs
    if args.warmup_seconds < 0:
        raise ConfigError("--warmup-seconds must not be negative")
    in_flight = args.in_flight if args.in_flight is not None else (2 if args.mode == "async" else 1)
    return DirectConfig(
        model=args.model, backend=args.backend, device=args.device, precision=args.precision,
        model_file=args.model_file, batch_sizes=tuple(batches), trials=args.trials,
        warmup_trials=args.warmup_trials, warmup_ns=int(args.warmup_seconds * 1e9), mode=args.mode,
        in_flight=in_flight, sizes=sizes, input_pool=args.input_pool, seed=args.seed,
        shape_dist=shape_dist_from_args(args), repeats=args.repeats,
    )


def run_direct(args: argparse.Namespace) -> int:
    cfg = direct_config(args)
    levels = run_direct_scan(cfg, args.out)
    done = [lv for lv in levels if lv.summary is not None]
    print(f"scan direct: {len(done)} of {len(cfg.batch_sizes)} batch sizes done; "
          f"results in {args.out / 'direct.json'}", file=sys.stderr)
    from scans.report.headline import terminal_lines

    for line in terminal_lines(args.out / "direct.json"):
        print(f"scan direct: {line}", file=sys.stderr)
    return 0
