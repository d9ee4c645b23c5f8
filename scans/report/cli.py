"""``saturate report DIR``: argparse → :class:`~scans.report.build.ReportConfig` → report.html."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_report(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "report",
        help="PNG plots and one self-contained report.html from a result directory",
        description="Read run JSON (saturate.run/1) and perf_analyzer-style CSVs in DIR; write PNG plots "
        "and report.html (images embedded) to --out (default DIR).",
    )
    p.add_argument("dir", type=Path, help="result directory")
    p.add_argument("--out", type=Path, default=None, help="where report.html and plots/ go (default DIR)")
    p.add_argument("--style", default="default", choices=("default", "mplhep"),
                   help="plot style; mplhep needs the mplhep package")
    p.add_argument("--title", default=None, help="page title (default: the directory name)")
    p.add_argument("--compare", type=Path, default=None, metavar="DIR2",
                   help="a second result directory drawn on the same axes (overlays)")
    p.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from scans.report.build import ReportConfig, make_report

    out = args.out if args.out is not None else args.dir
    title = args.title or args.dir.resolve().name
    cfg = ReportConfig(source=args.dir, out=out, style=args.style, title=title, compare=args.compare)
    html = make_report(cfg)
    print(f"report: {html}", file=sys.stderr)
    print(html)
    return 0
