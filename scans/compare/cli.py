"""``saturate compare A B [C …] [--out DIR] [--fail-on EXPR …]``: B, C… against the baseline A."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from loadgen import gates as gate_mod
from scans.compare.output import console_table, document, write_all
from scans.compare.runfiles import load_run
from scans.compare.significance import LevelChange, compare_runs


def add_compare(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("compare", help="change of throughput and p50/p95/p99 per level, B vs A, with gates",
                       description="Match levels of result files or directories (saturate JSON or "
                       "perf_analyzer CSVs) on batch and concurrency/rate; per level the change against the "
                       "first (the baseline) with its 95%% interval where repeats exist.")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="baseline first, then the others")
    p.add_argument("--out", type=Path, default=None, help="write compare.json/.csv/.png here")
    p.add_argument("--fail-on", action="append", default=[], metavar="EXPR",
                   help="gate on a change, e.g. 'throughput < -5%%' or 'p95 > +10%%': exit 1 when it holds")
    p.set_defaults(func=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from saturate.errors import ConfigError

    gates = gate_mod.parse_all(args.fail_on, "--fail-on", relative=True)  # before anything is read
    if len(args.runs) < 2:
        raise ConfigError("give at least two runs: the baseline A and B (saturate compare A B)")
    base, *rest = [load_run(p) for p in args.runs]
    others: list[tuple[str, list[LevelChange]]] = []
    failures: list[gate_mod.Failure] = []
    for run in rest:
        rows = compare_runs(base.levels, run.levels)
        others.append((run.label, rows))
        print(console_table(base.label, run.label, rows), flush=True)
        prefix = f"{run.label}: " if len(rest) > 1 else ""
        failures += gate_mod.check_fail_on(gates, [(prefix + r.name, r.deltas()) for r in rows])
    verdict = gate_mod.verdict(gates, failures)
    if args.out is not None:
        write_all(args.out, document(base.label, others, verdict), others)
    for f in failures:
        print(f"saturate compare: {f.line()}", file=sys.stderr)
    if gates and not failures:
        print(f"saturate compare: all {len(gates)} gates passed", file=sys.stderr)
    return 1 if failures else 0
