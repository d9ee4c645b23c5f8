"""``saturate job render|submit`` (Slurm templates) and ``saturate merge`` (client ranks → one run)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from saturate.atomic import write_atomic
from saturate.errors import ConfigError
from scans.jobs.merge import load_rank, merge_ranks
from scans.jobs.slurm import ALIASES, DEFAULTS, REQUIRED, TEMPLATES, parse_params, render, submit
from scans.perf_analyzer.cli import add_pa

_PARAMS_HELP = (
    "parameters (--param KEY=VALUE): required "
    + ", ".join(REQUIRED)
    + "; optional (default): "
    + ", ".join(f"{k} ({v or 'empty'})" for k, v in DEFAULTS.items() if not k.endswith("saturate"))
    + ", host_saturate (this python -m saturate), saturate (saturate inside image, else host_saturate)"
)


def register_batch(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``pa``, ``job`` and ``merge`` to the front door."""
    add_pa(sub)
    add_job(sub)
    add_merge(sub)


def add_job(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "job",
        help="render or submit the Slurm job templates (server → ready → scan → monitor)",
        description="Templates: scan (a; one job: server, monitor, scan), server and client (b; two jobs "
        "meeting through a rendezvous file; pair submits both), multinode (c; srun ranks from one start "
        "time, then saturate merge). Aliases a, b, c. " + _PARAMS_HELP,
    )
    inner = p.add_subparsers(dest="job_command", metavar="render|submit", parser_class=type(p))
    choices = (*TEMPLATES, *ALIASES)
    r = inner.add_parser("render", help="print the job script(s)")
    r.add_argument("template", choices=choices)
    r.add_argument("-P", "--param", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("-o", "--output", type=Path, default=None,
                   help="write here instead of stdout (a directory for pair)")
    r.set_defaults(func=run_render)
    s = inner.add_parser("submit", help="write the script(s) into OUT and sbatch them")
    s.add_argument("template", choices=choices)
    s.add_argument("-P", "--param", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--wait", action="store_true", help="wait for the (last) job; exit with its exit code")
    s.add_argument("--sbatch-arg", action="append", default=[], metavar="ARG", help="extra sbatch option")
    s.set_defaults(func=run_submit)
    p.set_defaults(func=lambda _a: _help(p))


def _help(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def run_render(args: argparse.Namespace) -> int:
    scripts = render(args.template, parse_params(args.param))
    if args.output is None:
        for i, job in enumerate(scripts):
            if i:
                print(f"# ---- {job.name}.sbatch ----")
            sys.stdout.write(job.text)
        return 0
    if len(scripts) > 1 or args.output.is_dir():
        args.output.mkdir(parents=True, exist_ok=True)
        for job in scripts:
            write_atomic(args.output / f"{job.name}.sbatch", job.text)
            print(args.output / f"{job.name}.sbatch")
        return 0
    write_atomic(args.output, scripts[0].text)
    print(args.output)
    return 0


def run_submit(args: argparse.Namespace) -> int:
    jobs = submit(args.template, parse_params(args.param), wait=args.wait, sbatch_args=args.sbatch_arg)
    for name, job_id, _ in jobs:
        print(f"{name} {job_id}")
    return jobs[-1][2] if args.wait else 0


def add_merge(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "merge",
        help="combine client ranks' results (run JSON + --latency-file) into one run",
        description="Level i of every rank becomes level i of one run: counts and throughput summed, "
        "concurrency summed, latency percentiles from the pooled raw latencies (never averages of "
        "averages). A RANK is a run JSON with its .npz beside it, or a directory of them (one per level).",
    )
    p.add_argument("ranks", nargs="+", type=Path, metavar="RANK")
    p.add_argument("-o", "--output", type=Path, required=True, help="merged run JSON to write")
    p.set_defaults(func=run_merge)


def run_merge(args: argparse.Namespace) -> int:
    ranks = [load_rank(p) for p in args.ranks]
    if len({str(p.resolve()) for p in args.ranks}) != len(args.ranks):
        raise ConfigError("the same rank was given twice; give each rank's result once")
    run = merge_ranks(ranks)
    run.write(args.output)
    for lv in run.levels:
        what = f"concurrency {lv.concurrency}" if lv.mode == "concurrency" else f"rate {lv.value:g}"
        p99 = lv.latency.percentiles_ns.get(99)
        tail = f", p99 {p99 / 1000:.0f} us" if p99 is not None else ""
        print(f"{what}: {lv.throughput.infer_per_s:.6g} infer/s from {len(ranks)} ranks{tail}")
    print(f"saturate merge: {len(run.levels)} levels -> {args.output}", file=sys.stderr)
    return 0
