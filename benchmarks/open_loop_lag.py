"""How late the open-loop driver sends against its schedule: ``saturate load --request-rate R
--request-distribution poisson`` against the null KServe server (benchmarks/null_kserve.py), the server
pinned to the last CPU and the client to CPU 0; prints, per event loop and round, the share of sends more
than 1 ms late and the lag percentiles that the run JSON records (``traffic.send_lag``). Numbers only.

    python benchmarks/open_loop_lag.py [--rate 200] [--window-ms 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import null_kserve

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--window-ms", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--event-loops", default="uvloop,asyncio")
    args = parser.parse_args()
    ncpu = os.cpu_count() or 1
    server_cpu = ncpu - 1 if ncpu > 1 else None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = null_kserve.start(port, cpu=server_cpu)
    print(f"null server 127.0.0.1:{port} (cpu {server_cpu}), client on cpu 0; {args.rate:g} req/s Poisson, "
          f"3 windows of {args.window_ms} ms")
    print(f"{'round':>5} {'loop':<8} {'sends':>6} {'late>1ms':>9} {'lag p50 us':>11} {'lag p99 us':>11} "
          f"{'lag max us':>11} {'CPU us/req':>11}")
    try:
        for rnd in range(1, args.rounds + 1):
            for loop in args.event_loops.split(","):
                with tempfile.TemporaryDirectory() as tmp:
                    js = Path(tmp) / "run.json"
                    cmd = ["taskset", "-c", "0", sys.executable, "-m", "saturate", "load", "-m", "null",
                           "-u", f"127.0.0.1:{port}", "--request-rate-range", f"{args.rate:g}",
                           "--request-distribution", "poisson", "-p", str(args.window_ms), "-s", "1000",
                           "-r", "3", "--event-loop", loop, "--json", str(js), "--quiet"]
                    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
                    if res.returncode not in (0, 1):
                        print(f"{rnd:>5} {loop:<8} failed: {res.stderr.strip()[-200:]}")
                        continue
                    (lv,) = json.loads(js.read_text())["levels"]
                    lag = lv["traffic"]["send_lag"]
                    print(f"{rnd:>5} {loop:<8} {lag['requests']:>6} {lag['late_share']:>9.3f} "
                          f"{lag['lag_p50_us']:>11.0f} {lag['lag_p99_us']:>11.0f} {lag['lag_max_us']:>11.0f} "
                          f"{lv['client']['cpu_us_per_request']:>11.0f}")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
