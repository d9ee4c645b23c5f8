"""``saturate sweep SPEC``: argparse → spec + overrides → plan → dry-run print or run."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from saturate.errors import ConfigError
from scans.sweep.spec import apply_overrides, expand, load_spec
from scans.sweep.sweep import RERUN, RESULTS_NAME, SweepOptions, read_results, run_sweep, should_run


def add_sweep(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the top-level ``sweep`` command."""
    p = sub.add_parser(
        "sweep",
        help="run an experiment spec (parameters x variables, ${} references) and log JSON lines",
        description="Expand a YAML/JSON spec into the Cartesian product of its variables, run each "
        "experiment (saturate scan direct|multiproc|server or load) in its own subprocess with a timeout, "
        f"and append one JSON line per experiment to OUT/{RESULTS_NAME}. Finished experiments are skipped "
        "on a re-run.",
    )
    p.add_argument("spec", type=Path, help="experiment spec, YAML or JSON")
    p.add_argument("--out", type=Path, required=True, help=f"sweep directory ({RESULTS_NAME}, runs/<id>/)")
    p.add_argument("-P", dest="params", action="append", default=[], metavar="NAME=VALUE",
                   help="set a parameter for every experiment (replaces a variable of that name)")
    p.add_argument("-V", dest="variables", action="append", default=[], metavar="NAME=V1,V2",
                   help="set a variable's values (a new one varies fastest)")
    p.add_argument("--dry-run", action="store_true", help="print the expanded plan and run nothing")
    p.add_argument("--rerun", default="onfail", choices=RERUN,
                   help="experiments already in the results: never, onfail (default) or always run again")
    p.add_argument("--timeout", type=float, default=None, help="seconds per experiment (default: the spec's)")
    p.set_defaults(func=run_sweep_cli)


def run_sweep_cli(args: argparse.Namespace) -> int:
    if args.timeout is not None and args.timeout <= 0:
        raise ConfigError(f"--timeout {args.timeout:g} must be positive seconds")
    spec = apply_overrides(load_spec(args.spec), args.params, args.variables)
    plan = expand(spec, args.out)
    opts = SweepOptions(command=spec.command, timeout_s=args.timeout or spec.timeout_s, rerun=args.rerun)
    if args.dry_run:
        previous = read_results(args.out / RESULTS_NAME)
        todo = 0
        for exp in plan:
            run = should_run(previous.get(exp.id), opts.rerun)
            todo += run
            mark = "run " if run else "skip"
            print(f"{exp.index:>4} {exp.id} {mark} saturate {shlex.join(exp.argv)}")
        print(f"{len(plan)} experiments, {todo} to run, timeout {opts.timeout_s:g} s each "
              f"({spec.command}; variables: {', '.join(spec.variables) or 'none'})")
        return 0
    records = run_sweep(plan, args.out, opts)
    failed = [r for r in records if r["status"] != "ok"]
    print(f"sweep: {len(records)} run, {len(failed)} failed, {len(plan) - len(records)} skipped; "
          f"results in {args.out / RESULTS_NAME}", file=sys.stderr, flush=True)
    return 1 if failed else 0
