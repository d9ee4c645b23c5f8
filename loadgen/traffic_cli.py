"""`saturate load` flags for drawn shapes, recorded/ramped schedules and the live view
(`loadgen.shapes`, `loadgen.schedules`, `loadgen.live`), turned into LoadConfig keywords."""

from __future__ import annotations

import argparse
from typing import Any

from loadgen.config import Range
from loadgen.schedules import parse_ramp, read_intervals
from loadgen.shapes import ShapeDist, parse_dim_dist, parse_shape_dist
from saturate.errors import ConfigError


def traffic_flags(p: argparse.ArgumentParser) -> None:
    """Add --shape-dist, --dim-dist, --dims-file, --request-intervals, --request-rate-ramp, --quiet."""
    shape_dist_flags(p)
    a = p.add_argument
    a("--request-intervals", default=None, metavar="FILE",
      help="replay perf_analyzer's interval file (one interval in us a line) open-loop")
    a("--request-rate-ramp", default=None, metavar="START:END:DURATION",
      help="raise the offered rate linearly, e.g. 100:1000:60s; reports latency against offered rate")
    a("-q", "--quiet", action="store_true", help="no live progress (the level reports stay)")


def shape_dist_flags(p: argparse._ActionsContainer) -> None:
    """The shape-distribution flags (shared by `saturate load` and the scans)."""
    a = p.add_argument
    a("--shape-dist", action="append", default=[], metavar="NAME:D1,SYM",
      help="dims of an input with symbols for drawn dims, e.g. pf_points:2,P (repeat)")
    a("--dim-dist", action="append", default=[], metavar="SYM~DIST",
      help="distribution of a symbol: P~poisson(40), S~uniform(1,10), P~choice(16,32), P~const(50)")
    a("--dims-file", default=None, metavar="FILE", help="rows of symbol values to draw from (header 'P S')")


def shape_dist_from_args(args: argparse.Namespace) -> ShapeDist | None:
    if not (args.shape_dist or args.dim_dist or args.dims_file):
        return None
    return ShapeDist(templates=tuple(parse_shape_dist(s) for s in args.shape_dist),
                     dims=tuple(parse_dim_dist(d) for d in args.dim_dist), dims_file=args.dims_file)


def traffic_settings(args: argparse.Namespace) -> dict[str, Any]:
    """LoadConfig keywords: shape_dist, schedule (with the matching request-rate level), quiet."""
    out: dict[str, Any] = {"shape_dist": shape_dist_from_args(args), "quiet": args.quiet}
    if args.request_intervals and args.request_rate_ramp:
        raise ConfigError("give either --request-intervals or --request-rate-ramp, not both")
    if args.request_intervals or args.request_rate_ramp:
        if args.concurrency_range or args.request_rate_range:
            raise ConfigError("--request-intervals/--request-rate-ramp set the schedule themselves; "
                              "drop --concurrency-range/--request-rate-range")
        sched = read_intervals(args.request_intervals) if args.request_intervals else parse_ramp(
            args.request_rate_ramp)
        out["schedule"] = sched
        out["request_rate_range"] = Range(sched.mean_rate, sched.mean_rate, 1)
    return out
