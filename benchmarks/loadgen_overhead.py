"""Client cost of `saturate load`: drive the null KServe v2 server (its own process, pinned to the
last CPU) at concurrency 1, 16, 64 with 1 and 2 client processes; print req/s, client CPU µs per
request and p50. Numbers only, no assertions.

    python benchmarks/loadgen_overhead.py [--window-ms 2000] [--trials 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import null_kserve

from scans.server.serverproc import free_port

REPO = Path(__file__).resolve().parents[1]




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window-ms", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--processes", default="1,2")
    args = parser.parse_args()
    ncpu = os.cpu_count() or 1
    server_cpu = ncpu - 1 if ncpu > 1 else None
    client_cpus = ",".join(str(i) for i in range(max(1, ncpu - 1)))
    port = free_port()
    server = null_kserve.start(port, cpu=server_cpu)
    print(f"null server on 127.0.0.1:{port} (cpu {server_cpu}); client on cpus {client_cpus}; "
          f"windows {args.window_ms} ms, the last 3 of {args.trials} merged")
    print(f"{'procs':>5} {'conc':>5} {'req/s':>9} {'client CPU us/req':>18} {'CPU % of a core':>16} "
          f"{'p50 us':>8} {'p99 us':>8}")
    try:
        for procs in (int(p) for p in args.processes.split(",")):
            for conc in (int(c) for c in args.concurrency.split(",")):
                if conc < procs:
                    continue
                with tempfile.TemporaryDirectory() as tmp:
                    js = Path(tmp) / "run.json"
                    cmd = [sys.executable, "-m", "saturate", "load", "-m", "null", "-u", f"127.0.0.1:{port}",
                           "--concurrency-range", str(conc), "-p", str(args.window_ms), "-s", "1000",
                           "-r", str(args.trials), "--processes", str(procs), "--json", str(js)]
                    if server_cpu is not None:
                        cmd = ["taskset", "-c", client_cpus, *cmd]
                    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
                    if res.returncode != 0:
                        print(f"{procs:>5} {conc:>5} failed: {res.stderr.strip().splitlines()[-1:]}")
                        continue
                    (lv,) = json.loads(js.read_text())["levels"]
                    c = lv["client"]
                    print(f"{procs:>5} {conc:>5} {lv['throughput']['requests_per_s']:>9.0f} "
                          f"{c['cpu_us_per_request']:>18.0f} {100 * c['cpu_util']:>15.0f}% "
                          f"{lv['latency_us']['p50']:>8} {lv['latency_us']['p99']:>8}")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
