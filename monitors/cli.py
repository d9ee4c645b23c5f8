"""``saturate monitor`` (sample to CSV) and ``saturate monitor summarize FILE`` (table + PNG)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from types import FrameType
from typing import Any

from monitors.config import ALL_SOURCES, MonitorConfig, parse_int_list, parse_sources
from monitors.monitor import Monitor
from monitors.writers import check_writable_dir
from saturate.atomic import write_atomic
from saturate.errors import ConfigError


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``monitor`` (and its ``summarize``) to the front door."""
    p = sub.add_parser(
        "monitor",
        help="sample GPU/CPU/memory utilization into a CSV (sidecar)",
        description="Sample GPU, CPU and memory utilization into a tidy CSV, one row per sample per "
        "device, flushed per row. SIGTERM/SIGINT finish the current row and exit 0. Phases: write the "
        "phase label into --phase-file (first line); SIGUSR1 forces a re-read.",
    )
    p.add_argument("--interval", type=float, default=0.25, metavar="SECONDS",
                   help="sampling period, >= 0.05 (default 0.25, as the studies' loop)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this long (default: until SIGTERM/SIGINT)")
    p.add_argument("--out", default="monitor.csv", metavar="FILE", help="CSV to write ('-' = stdout)")
    p.add_argument("--format", default="tidy", metavar="tidy|seed",
                   help="tidy long CSV (default) or the studies' five seed columns")
    p.add_argument("--source", default="auto", metavar="NAME[,NAME]",
                   help=f"one or more of {', '.join(ALL_SOURCES)}; host is always added (default auto)")
    p.add_argument("--gpus", default=None, metavar="0,1", help="GPU indices to sample (default all)")
    p.add_argument("--pid", action="append", type=int, default=[], metavar="PID",
                   help="also sample CPU and RSS of this process and its children (repeatable)")
    p.add_argument("--metrics-url", default=None, metavar="URL",
                   help="Triton metrics endpoint for --source triton, e.g. http://127.0.0.1:8002/metrics")
    p.add_argument("--phase-file", default=None, metavar="FILE",
                   help="file whose first line is the current phase label, checked every tick")
    p.add_argument("--pid-file", default=None, metavar="FILE",
                   help="written with this PID once the first row is on disk (ready handshake); "
                   "removed at exit")
    p.add_argument("--no-gpm", action="store_true", help="do not sample NVML GPM metrics")
    p.set_defaults(func=run_monitor)

    inner = p.add_subparsers(dest="monitor_command", metavar="summarize", parser_class=type(p))
    s = inner.add_parser("summarize", help="per-phase mean/max table and a PNG timeline of a monitor CSV")
    s.add_argument("file", metavar="FILE", help="CSV written by saturate monitor (tidy or seed)")
    s.add_argument("--png", default=None, metavar="FILE", help="timeline PNG (default FILE with .png)")
    s.add_argument("--no-png", action="store_true", help="print the table only")
    s.set_defaults(func=run_summarize)


def config_from_args(args: argparse.Namespace) -> MonitorConfig:
    return MonitorConfig(
        out=args.out,
        interval_s=args.interval,
        duration_s=args.duration,
        sources=parse_sources(args.source),
        format=args.format,
        gpus=None if args.gpus is None else parse_int_list(args.gpus, "--gpus"),
        pids=tuple(args.pid),
        metrics_url=args.metrics_url,
        phase_file=args.phase_file,
        pid_file=args.pid_file,
        gpm=not args.no_gpm,
    )


def _write_pid_file(path: str) -> None:
    """Atomically: a reader never sees an empty or partial PID file."""
    write_atomic(os.path.abspath(path), f"{os.getpid()}\n")


def run_monitor(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if cfg.pid_file:
        check_writable_dir(cfg.pid_file)
    mon = Monitor(cfg)
    stopping: list[int] = []

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)
        mon.request_stop()

    def on_usr1(signum: int, frame: FrameType | None) -> None:
        mon.reread_phase_file()

    previous = {sig: signal.signal(sig, on_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, on_usr1)
    try:
        mon.start()
        if cfg.pid_file:
            _write_pid_file(cfg.pid_file)
        print(f"saturate monitor: sampling pid={os.getpid()} interval={cfg.interval_s:g}s out={cfg.out}",
              file=sys.stderr, flush=True)
        while not mon.wait(0.5):
            pass
        stats = mon.stop()
    finally:
        mon.request_stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if cfg.pid_file:
            with contextlib.suppress(OSError):
                os.remove(cfg.pid_file)
    why = f" (stopped by {signal.Signals(stopping[0]).name})" if stopping else ""
    print(f"saturate monitor: {stats.ticks} samples, {stats.rows} rows, {stats.missed} missed ticks, "
          f"{stats.rate_hz:.2f} Hz -> {cfg.out}{why}", file=sys.stderr)
    return 0


def run_summarize(args: argparse.Namespace) -> int:
    from monitors.summarize import format_table, load, plot, summary

    series = load(args.file)
    if not series.t:
        raise ConfigError(f"{args.file} has no data rows; let the monitor run for at least one interval")
    print(format_table(summary(series)))
    if not args.no_png:
        png = args.png or (os.path.splitext(args.file)[0] + ".png")
        try:
            plot(series, png, os.path.basename(args.file))
        except OSError as exc:
            raise ConfigError(f"cannot write {png}: {exc.strerror or exc}; pass --png with a writable path") \
                from None
        print(f"timeline: {png}")
    return 0
