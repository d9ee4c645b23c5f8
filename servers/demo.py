"""``saturate demo`` (first version): serve ParticleNet, load it at a few concurrencies, print a summary.

The server runs as a ``saturate serve`` subprocess on free loopback ports and is always stopped.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from saturate.errors import ConfigError, ServerError
from servers.infer import GRPC_TOKEN_HEADER
from servers.models import Array, get_spec, synthetic_inputs
from servers.triton import READY_PREFIX


@dataclass(frozen=True)
class DemoConfig:
    model: str = "particlenet"
    backend: str = "torch"
    device: str = "auto"
    concurrencies: tuple[int, ...] = (1, 2, 4)
    requests: int = 100
    batch: int = 8
    ready_timeout_s: float = 180.0

    def __post_init__(self) -> None:
        if self.requests < 1 or self.batch < 1 or not self.concurrencies or min(self.concurrencies) < 1:
            raise ConfigError("--requests, --batch and --concurrency values must be positive")


@dataclass(frozen=True)
class LevelResult:
    concurrency: int
    completed: int
    failed: int
    wall_ns: int
    latencies_ns: list[int]
    avg_batch: float | None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


class ServerProcess:
    """``saturate serve`` in its own session; :meth:`stop` sends SIGTERM to the whole group."""

    def __init__(self, args: Sequence[str], log: Path, ready_timeout_s: float) -> None:
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "saturate", "serve", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if any(line.startswith(READY_PREFIX) for line in log.read_text(errors="replace").splitlines()):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        print(tail, file=sys.stderr)
        raise ServerError(f"the demo server did not become ready (log: {log}); see the lines above")

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode


def run_level(url: str, model: str, request: dict[str, Array], concurrency: int, total: int) -> LevelResult:
    """``total`` requests from ``concurrency`` threads, each with its own gRPC client."""
    import tritonclient.grpc as grpcclient

    lock = threading.Lock()
    remaining = [total]
    latencies: list[int] = []
    failed = [0]

    def worker() -> None:
        client = grpcclient.InferenceServerClient(url)
        inputs = []
        for name, arr in request.items():
            item = grpcclient.InferInput(name, list(arr.shape), "FP32")
            item.set_data_from_numpy(arr)
            inputs.append(item)
        try:
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                start = time.perf_counter_ns()
                try:
                    client.infer(model, inputs, client_timeout=60)
                except Exception:
                    with lock:
                        failed[0] += 1
                    continue
                elapsed = time.perf_counter_ns() - start
                with lock:
                    latencies.append(elapsed)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    start = time.perf_counter_ns()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return LevelResult(
        concurrency, len(latencies), failed[0], time.perf_counter_ns() - start, latencies, None
    )


def _counts(client: Any, model: str, token: str) -> tuple[int, int]:
    stats = client.get_inference_statistics(model, headers={GRPC_TOKEN_HEADER: token}, as_json=True)
    m = stats["model_stats"][0]
    return int(m.get("inference_count", 0)), int(m.get("execution_count", 0))


def summary_lines(results: Sequence[LevelResult], batch: int) -> list[str]:
    lines = [
        f"{'conc':>4} {'requests':>8} {'failed':>6} {'infer/s':>9} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'avg batch':>9}"
    ]
    for r in results:
        lat = np.sort(np.asarray(r.latencies_ns, dtype=np.float64)) / 1e6
        pct = [
            lat[int(np.floor(p / 100 * (len(lat) - 1) + 0.5))] if len(lat) else float("nan")
            for p in (50, 95, 99)
        ]
        rate = r.completed * batch / (r.wall_ns / 1e9) if r.wall_ns else 0.0
        avg = f"{r.avg_batch:.1f}" if r.avg_batch is not None else "-"
        lines.append(
            f"{r.concurrency:>4} {r.completed:>8} {r.failed:>6} {rate:>9.1f} {pct[0]:>8.2f} {pct[1]:>8.2f} "
            f"{pct[2]:>8.2f} {avg:>9}"
        )
    return lines


def run_demo(config: DemoConfig) -> int:
    """Start the server, run the levels, print the summary, stop the server."""
    import tritonclient.grpc as grpcclient

    device = resolve_device(config.device)
    http, grpc, metrics = free_port(), free_port(), free_port()
    token = secrets.token_urlsafe(16)
    log = Path(tempfile.mkstemp(prefix="saturate-demo-", suffix=".log")[1])
    print(
        f"saturate demo: starting {config.model} on {config.backend}/{device} (log {log})",
        file=sys.stderr,
        flush=True,
    )
    args = [
        "--model",
        config.model,
        "--backend",
        config.backend,
        "--device",
        device,
        "--http-port",
        str(http),
        "--grpc-port",
        str(grpc),
        "--metrics-port",
        str(metrics),
        "--access-token",
        token,
        "--max-queue-delay-us",
        "200",
    ]
    server = ServerProcess(args, log, config.ready_timeout_s)
    url = f"127.0.0.1:{grpc}"
    results: list[LevelResult] = []
    try:
        request = synthetic_inputs(get_spec(config.model), config.batch)
        stats_client = grpcclient.InferenceServerClient(url)
        run_level(url, config.model, request, 1, min(5, config.requests))  # warm-up
        for concurrency in config.concurrencies:
            before = _counts(stats_client, config.model, token)
            level = run_level(url, config.model, request, concurrency, config.requests)
            after = _counts(stats_client, config.model, token)
            executions = after[1] - before[1]
            avg = (after[0] - before[0]) / executions if executions else None
            results.append(
                LevelResult(
                    level.concurrency, level.completed, level.failed, level.wall_ns, level.latencies_ns, avg
                )
            )
            print(f"saturate demo: concurrency {concurrency} done", file=sys.stderr, flush=True)
        stats_client.close()
    finally:
        code = server.stop()
    print(
        f"saturate demo: {config.model} on {config.backend}/{device}, batch {config.batch}, "
        f"{config.requests} requests per level over gRPC"
    )
    for line in summary_lines(results, config.batch):
        print(line)
    print(f"saturate demo: server stopped (exit {code})")
    failed = sum(r.failed for r in results)
    return 0 if failed == 0 and code == 0 else 1
