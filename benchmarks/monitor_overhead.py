"""Monitor overhead: achieved sampling rate and the monitor's own CPU, in steady state.

Starts ``saturate monitor`` as a separate process (as a batch job would), waits for its ready
handshake (PID file), then measures its CPU time over a fixed window with psutil. Prints numbers;
asserts nothing. Usage: python benchmarks/monitor_overhead.py [--interval 0.1] [--seconds 10] [--source host]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--seconds", type=float, default=10.0, help="measurement window after startup")
    ap.add_argument("--source", default="host")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as d:
        out, pid_file = Path(d) / "m.csv", Path(d) / "m.pid"
        duration = args.seconds + 2.0
        proc = subprocess.Popen(
            [sys.executable, "-m", "saturate", "monitor", "--source", args.source,
             "--interval", str(args.interval), "--duration", str(duration), "--out", str(out),
             "--pid-file", str(pid_file)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t_start = time.monotonic()
        while not pid_file.exists():
            if proc.poll() is not None:
                print(proc.stderr.read() if proc.stderr else "", file=sys.stderr)
                return 1
            time.sleep(0.02)
        startup_s = time.monotonic() - t_start
        p = psutil.Process(proc.pid)
        time.sleep(0.5)  # let imports and the first ticks settle
        c0, w0 = sum(p.cpu_times()[:2]), time.monotonic()
        time.sleep(args.seconds)
        ct = p.cpu_times()
        c1, w1 = sum(ct[:2]), time.monotonic()
        total_cpu = c1
        _, err = proc.communicate(timeout=duration + 30)
        with open(out, newline="") as f:
            rows = list(csv.DictReader(f))
    ticks = sorted({int(r["unix_ns"]) for r in rows})
    span = (ticks[-1] - ticks[0]) / 1e9 if len(ticks) > 1 else 0.0
    rate = (len(ticks) - 1) / span if span > 0 else 0.0
    steady_pct = 100.0 * (c1 - c0) / (w1 - w0)
    missed = next((line for line in err.splitlines() if "missed ticks" in line), "").strip()
    print(f"monitor overhead ({args.source}, interval {args.interval:g} s, window {args.seconds:g} s, "
          f"{os.cpu_count()} CPUs)")
    print(f"  achieved rate      : {rate:.2f} Hz (target {1 / args.interval:.2f} Hz), {len(ticks)} samples")
    print(f"  monitor CPU        : {steady_pct:.2f} % of one core (steady state)")
    print(f"  startup            : {startup_s:.2f} s to ready; {total_cpu:.2f} s CPU incl. imports")
    print(f"  monitor said       : {missed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
