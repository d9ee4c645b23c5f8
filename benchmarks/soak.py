"""Soak: 64 requests in flight against a real PyTriton server for N minutes, nothing lost.

Starts ``saturate serve`` (the CPU MLP by default) on free loopback ports, drives it closed-loop with
the loadgen library (one ``LoadSession``, gRPC or HTTP) and, every ``--report-s`` seconds, prints the
completions and failures so far and the client's RSS. At the end it compares the client's completions
with the server's own counter (Triton statistics ``inference_stats.success.count`` delta, read with
the token) and prints the RSS drift. A window is cut at every report, as a real run cuts its
measurement windows, so the recorder holds only the current window's latencies. Numbers only, no
assertions; not part of CI.

    nice -n 10 python benchmarks/soak.py --minutes 30 --concurrency 64 > /tmp/soak.log 2>&1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from loadgen.config import LoadConfig, Range  # noqa: E402
from loadgen.runner import LoadSession  # noqa: E402
from loadgen.serverstats import parse_snapshot  # noqa: E402
from loadgen.sources import InProcessSource  # noqa: E402
from saturate.tokens import child_env  # noqa: E402
from scans.server.serverproc import free_ports  # noqa: E402


def start_server(model: str, token: str, log: Path) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    ports = dict(zip(("http", "grpc", "metrics"), free_ports(3), strict=True))
    cmd = [sys.executable, "-m", "saturate", "serve", "--model", model, "--bind", "127.0.0.1",
           "--http-port", str(ports["http"]), "--grpc-port", str(ports["grpc"]),
           "--metrics-port", str(ports["metrics"])]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
                                env=child_env(token))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if "saturate serve: ready" in log.read_text(errors="replace"):
            return proc, ports
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    stop_server(proc)
    raise SystemExit("server did not become ready:\n" + log.read_text(errors="replace")[-3000:])


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def success_count(stats: Any, model: str) -> int:
    return sum(d.success_count for (name, _v), d in parse_snapshot(stats).items() if name == model)


async def soak(cfg: LoadConfig, minutes: float, report_s: float) -> dict[str, Any]:
    me = psutil.Process()
    async with LoadSession(cfg) as session:
        source = session.source
        assert isinstance(source, InProcessSource)
        client = source.client
        before = success_count(await client.statistics(cfg.model, ""), cfg.model)
        await source.start_level(float(cfg.level_range.start))
        t0 = time.monotonic()
        rss: list[tuple[float, int]] = [(0.0, me.memory_info().rss)]
        end = t0 + minutes * 60
        windows = 0
        while time.monotonic() < end:
            await asyncio.sleep(min(report_s, max(0.0, end - time.monotonic())))
            await source.cut(time.perf_counter_ns())  # as a real run does: the window's latencies go
            windows += 1
            rec = source.recorder
            rss.append((time.monotonic() - t0, me.memory_info().rss))
            print(json.dumps({"t_s": round(rss[-1][0], 1), "completed": rec.total_completed,
                              "failed": rec.total_failed, "rss_mib": round(rss[-1][1] / 2**20, 1)}),
                  flush=True)
        await source.stop_level()
        elapsed = time.monotonic() - t0
        rec = source.recorder
        await asyncio.sleep(1.0)  # let the server's counters settle
        after = success_count(await client.statistics(cfg.model, ""), cfg.model)
        errors = dict(client.errors.first_message)
    first_min = next((r for t, r in rss if t >= 60), rss[-1][1])
    return {
        "minutes": round(elapsed / 60, 2), "concurrency": int(cfg.level_range.start),
        "protocol": cfg.protocol, "client_completed": rec.total_completed, "client_failed": rec.total_failed,
        "server_success": after - before, "lost": (after - before) - rec.total_completed,
        "infer_per_s": round(rec.total_completed * cfg.batch_size / elapsed, 1),
        "rss_mib_start": round(rss[0][1] / 2**20, 1), "rss_mib_after_1min": round(first_min / 2**20, 1),
        "rss_mib_end": round(rss[-1][1] / 2**20, 1), "rss_mib_max": round(max(r for _, r in rss) / 2**20, 1),
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--model", default="mlp")
    parser.add_argument("-i", "--protocol", choices=("grpc", "http"), default="grpc")
    parser.add_argument("-b", "--batch-size", type=int, default=1)
    parser.add_argument("--report-s", type=float, default=60.0)
    args = parser.parse_args()
    token = secrets.token_urlsafe(16)
    log = Path(tempfile.mkstemp(prefix="soak-serve-", suffix=".log")[1])
    proc, ports = start_server(args.model, token, log)
    try:
        cfg = LoadConfig(model=args.model, url=f"127.0.0.1:{ports[args.protocol]}", protocol=args.protocol,
                         batch_size=args.batch_size, access_token=token,
                         concurrency_range=Range(args.concurrency, args.concurrency, 1))
        result = asyncio.run(soak(cfg, args.minutes, args.report_s))
    finally:
        stop_server(proc)
    print(json.dumps({"soak": result, "server_log": str(log)}, indent=1), flush=True)


if __name__ == "__main__":
    main()
