"""Client cost of `saturate load` vs the real perf_analyzer against the null KServe server, measured the
same way for both: server pinned to one core, the client to another, each tool run alone at one
concurrency; while it is in steady load the script samples the client process's CPU time
(/proc/PID/stat, all threads) and the server's own request count (ModelStatistics) over the same
interval, so CPU µs/request is whole-process CPU / requests served, for either tool. Throughput and
p50 are each tool's own CSV. Runs are interleaved (tool order rotates) and repeated; medians and the
spread are printed. `--profile FILE` instead runs one saturate level under py-spy (needs py-spy).

    python benchmarks/client_profile.py [--concurrency 1,4,16,64] [--reps 3] [--pa PATH]
        [--tools pa,pa-async,saturate,saturate-asyncio] [--server-cpu 0 --client-cpu 1] [--protocol grpc]
    python benchmarks/client_profile.py --profile /tmp/sat.txt --concurrency 16

Numbers only, no assertions.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import null_kserve

from scans.perf_analyzer.args import find_binary
from scans.server.serverproc import free_port

REPO = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100




def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def server_count(stub: Any) -> int:
    from tritonclient.grpc import service_pb2

    resp = stub(service_pb2.ModelStatisticsRequest(name="null"))
    return int(resp.model_stats[0].inference_count)


def stats_stub(url: str) -> Any:
    import grpc
    from tritonclient.grpc import service_pb2

    channel = grpc.insecure_channel(url)
    return channel.unary_unary("/inference.GRPCInferenceService/ModelStatistics",
                               request_serializer=service_pb2.ModelStatisticsRequest.SerializeToString,
                               response_deserializer=service_pb2.ModelStatisticsResponse.FromString)


def command(tool: str, url: str, conc: int, csv_path: Path, js: Path, args: argparse.Namespace) -> list[str]:
    common = ["-m", "null", "-u", url, "-i", args.protocol, "--concurrency-range", str(conc),
              "-p", str(args.window_ms), "-s", "25", "-r", "10", "-f", str(csv_path)]
    if tool.startswith("pa"):
        cmd = [args.pa, *common]
        if tool == "pa-async":
            cmd.append("--async")
    else:
        cmd = [sys.executable, "-m", "saturate", "load", *common, "--json", str(js), *args.saturate_args]
        if tool == "saturate-asyncio":
            cmd += ["--event-loop", "asyncio"]
    return ["taskset", "-c", str(args.client_cpu), *cmd]


def measure(tool: str, url: str, conc: int, args: argparse.Namespace, stub: Any) -> dict[str, float] | None:
    with tempfile.TemporaryDirectory() as tmp:
        csv_path, js = Path(tmp) / "out.csv", Path(tmp) / "run.json"
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.Popen(command(tool, url, conc, csv_path, js, args), env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        sample: dict[str, float] = {}
        try:
            # steady load: the server's count rising for 1 s, then one interval of `--sample-s`
            last, rising_since = server_count(stub), None
            while proc.poll() is None:
                time.sleep(0.1)
                now = server_count(stub)
                rising_since = (rising_since or time.monotonic()) if now > last else None
                last = now
                if rising_since and time.monotonic() - rising_since >= 1.0:
                    break
            if proc.poll() is None:
                c0, n0, t0 = cpu_s(proc.pid), server_count(stub), time.monotonic()
                time.sleep(args.sample_s)
                if proc.poll() is None:
                    c1, n1, t1 = cpu_s(proc.pid), server_count(stub), time.monotonic()
                    sample = {"cpu_us_per_req": (c1 - c0) / max(1, n1 - n0) * 1e6,
                              "served_per_s": (n1 - n0) / (t1 - t0)}
            _, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
        if proc.returncode not in (0, 2) or not csv_path.exists():
            print(f"  {tool} c={conc}: failed rc={proc.returncode}: {err.strip()[-300:]}", file=sys.stderr)
            return None
        with csv_path.open() as fh:
            row = next(csv.DictReader(fh))
        out = {"infer_per_s": float(row["Inferences/Second"]), "p50_us": float(row["p50 latency"]), **sample}
        if js.exists():
            level = json.loads(js.read_text())["levels"][0]
            util, thr = level["client"].get("cpu_util"), level["throughput"]["infer_per_s"]
            if util and thr:
                out["window_cpu_us_per_req"] = util / thr * 1e6
            share = level["client"].get("own_latency_us")
            if share is not None:
                out["own_us"] = float(share)
        return out


def profile(url: str, conc: int, args: argparse.Namespace) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with tempfile.TemporaryDirectory() as tmp:
        cmd = command("saturate", url, conc, Path(tmp) / "o.csv", Path(tmp) / "o.json", args)
        cmd = [cmd[0], cmd[1], cmd[2], spy, "record", "-f", "raw", "-r", "500", "--native", "-o",
               args.profile, "--", *cmd[3:]]
        subprocess.run(cmd, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), check=False)
    print(f"py-spy raw stacks in {args.profile}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tools", default="pa,pa-async,saturate")
    parser.add_argument("--pa", default=find_binary("perf_analyzer") or "perf_analyzer")
    parser.add_argument("--protocol", default="grpc")
    parser.add_argument("-p", "--window-ms", type=int, default=2000)
    parser.add_argument("--sample-s", type=float, default=3.0)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--profile", default=None, metavar="FILE")
    parser.add_argument("saturate_args", nargs="*", help="extra `saturate load` flags (after --)")
    args = parser.parse_args()
    port = free_port()
    server = null_kserve.start(port, cpu=args.server_cpu)
    url = f"127.0.0.1:{port}"
    tools = args.tools.split(",")
    levels = [int(c) for c in args.concurrency.split(",")]
    try:
        if args.profile:
            profile(url, levels[0], args)
            return 0
        stub = stats_stub(url)
        results: dict[tuple[str, int], list[dict[str, float]]] = {}
        for rep in range(args.reps):
            for conc in levels:
                order = tools[rep % len(tools):] + tools[: rep % len(tools)]
                for tool in order:
                    r = measure(tool, url, conc, args, stub)
                    if r is not None:
                        results.setdefault((tool, conc), []).append(r)
                        print(f"  rep {rep} {tool:>9} c={conc:<3} " +
                              " ".join(f"{k}={v:.0f}" for k, v in r.items()), flush=True)
        keys = ["infer_per_s", "p50_us", "cpu_us_per_req", "window_cpu_us_per_req", "own_us"]
        print(f"\nmedians (min-max) over {args.reps} reps; server cpu {args.server_cpu}, "
              f"client cpu {args.client_cpu}, -p {args.window_ms}")
        print(f"{'tool':>9} {'conc':>4} " + " ".join(f"{k:>24}" for k in keys))
        for conc in levels:
            for tool in tools:
                rs = results.get((tool, conc), [])
                cells = []
                for k in keys:
                    vals = [r[k] for r in rs if k in r]
                    cells.append(f"{statistics.median(vals):>8.0f} ({min(vals):.0f}-{max(vals):.0f})"
                                 if vals else f"{'-':>8}")
                print(f"{tool:>9} {conc:>4} " + " ".join(f"{c:>24}" for c in cells))
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
