"""``saturate pa -- <perf_analyzer args>``: run perf_analyzer raw (PATH or the SDK image) and parse it."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
from pathlib import Path
from typing import Any

from loadgen.result import LevelResult, RunResult
from saturate.errors import ConfigError
from saturate.version import saturate_version
from scans.perf_analyzer.args import GPU_FLAGS, PaLauncher, csv_path_in
from scans.perf_analyzer.engine import run_pa
from scans.perf_analyzer.export import attach_export, read_profile_export, write_latency_file


def add_pa(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the ``pa`` subcommand."""
    p = sub.add_parser(
        "pa",
        help="run perf_analyzer (from PATH or inside the Triton SDK image) and parse its CSV",
        description="Run perf_analyzer with the arguments after '--', stream its console, parse its CSV "
        "(and its failure messages) into saturate's level results. Without -f among its arguments the "
        "CSV goes to OUT/pa.csv. Exit code: perf_analyzer's.",
    )
    p.add_argument("--image", default=None, metavar="SDK.sif", help="run inside this Apptainer image")
    p.add_argument("--gpu", default="none", choices=tuple(GPU_FLAGS),
                   help="apptainer GPU flag: nvidia (--nv), rocm (--rocm) or none (default)")
    p.add_argument("--bind", action="append", default=[], metavar="DIR", help="extra apptainer --bind")
    p.add_argument("--binary", default="perf_analyzer", help="perf_analyzer executable (default from PATH)")
    p.add_argument("--apptainer", default="apptainer", help="apptainer executable (default from PATH)")
    p.add_argument("--out", type=Path, default=None, help="directory for the CSV, console log and JSON")
    p.add_argument("--json", dest="json_file", type=Path, default=None,
                   help="write the parsed levels as a saturate.run/1 JSON here (default OUT/pa.json)")
    p.add_argument("pa_args", nargs=argparse.REMAINDER, help="perf_analyzer's own arguments, after '--'")
    p.set_defaults(func=run_pa_cli)


def _flag(args: list[str], *names: str) -> str | None:
    for i, a in enumerate(args):
        for n in names:
            if a == n and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
    return None


def _requested(text: str | None, integer: bool) -> list[float]:
    if not text:
        return [1.0]
    try:
        return [float(int(text.split(":")[0]) if integer else float(text.split(":")[0]))]
    except ValueError:
        return [1.0]


def describe(level: LevelResult) -> str:
    """One console line per level."""
    what = f"concurrency {level.concurrency}" if level.mode == "concurrency" else f"rate {level.value:g}"
    if not level.stable:
        return f"{what}: {level.stability}: {'; '.join(level.verdict.reasons)}"
    p = level.latency.percentiles_ns
    lat = ", ".join(f"p{q} {v / 1000:.0f} us" for q, v in sorted(p.items()) if q in (50, 99))
    return f"{what}: {level.throughput.infer_per_s:.6g} infer/s, {lat}"


def run_pa_cli(args: argparse.Namespace) -> int:
    pa_args = [a for a in args.pa_args]
    if pa_args and pa_args[0] == "--":
        pa_args = pa_args[1:]
    if not pa_args:
        raise ConfigError(
            "give perf_analyzer's arguments after '--', e.g. saturate pa -- -m MODEL -u HOST:8001"
        )
    out = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="saturate-pa-"))
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    csv = csv_path_in(pa_args)
    if csv is None:
        csv = str(out / "pa.csv")
        pa_args += ["-f", csv]
    csv_abs = Path(csv).resolve()
    binds = tuple(dict.fromkeys([str(out), str(csv_abs.parent), *args.bind]))
    launcher = PaLauncher(image=args.image, gpu=args.gpu, binary=args.binary, apptainer=args.apptainer,
                          binds=binds if args.image else ())
    rate = _flag(pa_args, "--request-rate-range")
    mode = "request_rate" if rate is not None else "concurrency"
    batch = _flag(pa_args, "-b", "--batch-size")
    requested = _requested(rate if rate is not None else _flag(pa_args, "--concurrency-range"), rate is None)
    outcome = asyncio.run(run_pa(
        launcher, pa_args, str(csv_abs), mode=mode, batch_size=int(batch) if batch and batch.isdigit() else 1,
        requested=requested, console_file=out / "pa_console.txt",
    ))
    levels = outcome.levels
    json_file = args.json_file if args.json_file is not None else out / "pa.json"
    export = _flag(pa_args, "--profile-export-file")
    pct_flag = _flag(pa_args, "--percentile")
    pct = int(pct_flag) if pct_flag and pct_flag.isdigit() else None
    if pct is not None:  # the latency perf_analyzer stabilised on, as the engine records it
        levels = [dataclasses.replace(lv, percentile=pct) for lv in levels]
    if export is not None and Path(export).is_file():  # raw latencies: pa.npz beside pa.json, for merge
        levels, lats, durs = attach_export(levels, read_profile_export(export), pct)
        write_latency_file(Path(json_file).with_suffix(".npz"), lats, durs,
                           [lv.batch_size or 1 for lv in levels])
    run = RunResult(
        tool={"name": "perf_analyzer", "via": "saturate pa", "saturate_version": saturate_version()},
        config={"engine": "perf_analyzer", "argv": outcome.argv, "exit_code": outcome.returncode,
                "mode": mode, "profile_export_file": export},
        levels=levels,
    )
    run.write(json_file)
    for lv in levels:
        print(describe(lv))
    print(f"saturate pa: perf_analyzer exit {outcome.returncode}; {len(levels)} levels; "
          f"CSV {csv_abs}; JSON {json_file}", file=sys.stderr)
    return outcome.returncode
