"""perf_analyzer vs `saturate load` on the same server and levels: throughput and p50/p95 side by
side with their ratio. Skipped (with a message) when no `perf_analyzer` is on PATH.

    python benchmarks/vs_perf_analyzer.py [-u HOST:PORT -m MODEL] [--concurrency 1:4] [-p 2000]

Without -u it starts the null KServe server (benchmarks/null_kserve.py) and uses model `null`.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import null_kserve

REPO = Path(__file__).resolve().parents[1]


def rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open() as fh:
        return {r["Concurrency"]: r for r in csv.DictReader(fh)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-u", "--url", default="")
    parser.add_argument("-m", "--model", default="null")
    parser.add_argument("--concurrency", default="1:4")
    parser.add_argument("-p", "--window-ms", default="2000")
    parser.add_argument("--access-token", default=None)
    args = parser.parse_args()
    pa = shutil.which("perf_analyzer")
    if pa is None:
        print(
            "vs_perf_analyzer: skipped (no perf_analyzer on PATH; see `saturate pa` / the Triton SDK image)"
        )
        return 0
    server = None
    url = args.url
    if not url:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = null_kserve.start(port)
        url = f"127.0.0.1:{port}"
    common = [
        "-m",
        args.model,
        "-u",
        url,
        "-i",
        "grpc",
        "--concurrency-range",
        args.concurrency,
        "-p",
        args.window_ms,
        "-s",
        "25",
        "-r",
        "10",
    ]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pa_csv, sat_csv = Path(tmp) / "pa.csv", Path(tmp) / "sat.csv"
            subprocess.run([pa, *common, "--async", "-f", str(pa_csv)], check=True, capture_output=True)
            token = ["--access-token", args.access_token] if args.access_token else []
            subprocess.run(
                [sys.executable, "-m", "saturate", "load", *common, "-a", *token, "-f", str(sat_csv)],
                check=True,
                capture_output=True,
                cwd=REPO,
            )
            theirs, ours = rows(pa_csv), rows(sat_csv)
    finally:
        if server is not None:
            server.terminate()
    print(
        f"{'conc':>5} {'PA infer/s':>11} {'sat infer/s':>12} {'ratio':>6} {'PA p50':>8} {'sat p50':>8} "
        f"{'ratio':>6} {'PA p95':>8} {'sat p95':>8} {'ratio':>6}"
    )
    for conc in sorted(set(theirs) & set(ours), key=int):
        a, b = theirs[conc], ours[conc]
        cells = []
        for col in ("Inferences/Second", "p50 latency", "p95 latency"):
            x, y = float(a[col]), float(b[col])
            cells += [f"{x:>8.0f}", f"{y:>8.0f}", f"{(y / x if x else float('nan')):>6.2f}"]
        print(f"{conc:>5} " + " ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
