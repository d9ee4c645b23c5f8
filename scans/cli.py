"""The ``scan`` group and every scan-side command, wired from their sub-packages (one per command).

``scan direct`` (:mod:`scans.direct`), ``scan server`` (:mod:`scans.server`), ``scan multiproc``
(:mod:`scans.multiproc`), ``pa``/``job``/``merge`` (:mod:`scans.jobs`, :mod:`scans.perf_analyzer`), ``report``
(:mod:`scans.report`), ``demo`` (:mod:`scans.demo`), ``compare`` (:mod:`scans.compare`), ``sweep``
(:mod:`scans.sweep`); ``tune`` registers itself (:mod:`scans.tune.cli`). Nothing else lives here.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from saturate.errors import EXIT_USAGE
from scans.compare.cli import add_compare
from scans.demo.cli import add_demo
from scans.direct.cli import add_direct
from scans.jobs.cli import register_batch
from scans.multiproc.cli import add_multiproc
from scans.report.cli import add_report
from scans.server.cli import add_server
from scans.sweep.cli import add_sweep


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``scan`` (direct, server, multiproc), pa, job, merge, report, demo, compare and sweep."""
    scan = sub.add_parser("scan", help="batch and load scans (scan direct: in-process batch scan)")
    scan.set_defaults(func=lambda _args: _no_subcommand(scan))
    scan_sub = scan.add_subparsers(dest="scan_command", metavar="SCAN", parser_class=type(scan))
    add_direct(scan_sub)
    add_server(scan_sub)
    add_multiproc(scan_sub)
    register_batch(sub)
    add_report(sub)
    add_demo(sub)
    add_compare(sub)
    add_sweep(sub)


def _no_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE
