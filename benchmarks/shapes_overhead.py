"""Client cost of drawn shapes against fixed shapes: `saturate load` against a null KServe v2 server
whose input has a variable dim (INPUT0 FP32 [-1,-1]; the server answers at once), interleaving
fixed ``--shape INPUT0:64`` with ``--shape-dist INPUT0:F --dim-dist F~poisson(64)`` and
``F~uniform(1,512)``; prints req/s and client CPU µs per request per run. Numbers only.

    python benchmarks/shapes_overhead.py [--window-ms 2000] [--rounds 3] [--concurrency 1,16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import null_kserve
from tritonclient.grpc import service_pb2

from scans.server.serverproc import free_port

REPO = Path(__file__).resolve().parents[1]
CASES = {
    "fixed F=64": ("--shape", "INPUT0:64"),
    "F~poisson(64)": ("--shape-dist", "INPUT0:F", "--dim-dist", "F~poisson(64)"),
    "F~uniform(1,512)": ("--shape-dist", "INPUT0:F", "--dim-dist", "F~uniform(1,512)"),
}


class RaggedNull(null_kserve.NullModel):
    """The null model with a variable second dim, so drawn shapes pass the pre-flight."""

    async def model_metadata(self, request: Any, context: Any) -> Any:
        t = service_pb2.ModelMetadataResponse.TensorMetadata
        return service_pb2.ModelMetadataResponse(
            name=null_kserve.MODEL, versions=["1"], platform="null",
            inputs=[t(name="INPUT0", datatype="FP32", shape=[-1, -1])],
            outputs=[t(name="OUTPUT0", datatype="FP32", shape=[-1, 16])])


async def _serve(port: int) -> None:
    import grpc

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((null_kserve._handlers(RaggedNull(None)),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ragged_null: ready", flush=True)
    await server.wait_for_termination()


def _start(port: int, cpu: int | None) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", str(port)]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.stdout.readline().startswith("ragged_null: ready"):
            return proc
    proc.kill()
    raise RuntimeError("ragged null server did not start")




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window-ms", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(_serve(args.serve))
        return
    ncpu = os.cpu_count() or 1
    server_cpu = ncpu - 1 if ncpu > 1 else None
    client_cpus = ",".join(str(i) for i in range(max(1, ncpu - 1)))
    port = free_port()
    server = _start(port, server_cpu)
    print(f"ragged null server on 127.0.0.1:{port} (cpu {server_cpu}), client on cpus {client_cpus}; "
          f"3 windows of {args.window_ms} ms merged; cases interleaved, {args.rounds} rounds")
    print(f"{'round':>5} {'conc':>5} {'case':<18} {'req/s':>9} {'client CPU us/req':>18} {'distinct':>9}")
    try:
        for rnd in range(1, args.rounds + 1):
            for conc in (int(c) for c in args.concurrency.split(",")):
                for name, flags in CASES.items():
                    with tempfile.TemporaryDirectory() as tmp:
                        js = Path(tmp) / "run.json"
                        url = f"127.0.0.1:{port}"
                        cmd = [sys.executable, "-m", "saturate", "load", "-m", "null", "-u", url,
                               "--concurrency-range", str(conc), "-p", str(args.window_ms), "-s", "1000",
                               "-r", "3", "--json", str(js), "--quiet", *flags]
                        if server_cpu is not None:
                            cmd = ["taskset", "-c", client_cpus, *cmd]
                        res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
                        if res.returncode != 0:
                            print(f"{rnd:>5} {conc:>5} {name:<18} failed: {res.stderr.strip()[-200:]}")
                            continue
                        (lv,) = json.loads(js.read_text())["levels"]
                        shapes = (lv.get("traffic") or {}).get("shapes") or {}
                        print(f"{rnd:>5} {conc:>5} {name:<18} {lv['throughput']['requests_per_s']:>9.0f} "
                              f"{lv['client']['cpu_us_per_request']:>18.1f} "
                              f"{shapes.get('distinct_shapes', 1):>9}")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
