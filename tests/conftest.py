"""Shared test helpers: free loopback ports and a `saturate serve` subprocess that always stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"  # real tool outputs, copied in with their provenance


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_cli(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m saturate ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "saturate", *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env,
    )


@dataclass
class ServerProcess:
    """A running ``saturate serve`` on loopback; ``stop()`` sends SIGTERM to its process group."""

    model: str
    http_port: int
    grpc_port: int
    metrics_port: int
    token: str
    proc: subprocess.Popen[str]
    log_path: Path

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode


def start_server(
    model: str = "particlenet",
    extra: Sequence[str] = (),
    ready_timeout: float = 180,
    log_dir: Path | None = None,
) -> ServerProcess:
    """Start ``saturate serve`` on free loopback ports and wait for its ready line.

    Output goes to a log file (never a pipe that could fill and block the server).
    """
    import tempfile

    http, grpc, metrics = free_port(), free_port(), free_port()
    token = "test-token"
    cmd = [
        sys.executable, "-m", "saturate", "serve", "--model", model,
        "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
        "--bind", "127.0.0.1", "--access-token", token, *extra,
    ]
    log_path = Path(tempfile.mkstemp(prefix="serve-", suffix=".log", dir=log_dir)[1])
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                                start_new_session=True)
    server = ServerProcess(model, http, grpc, metrics, token, proc, log_path)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if any(line.startswith("saturate serve: ready") for line in text.splitlines()):
            return server
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    server.stop()
    raise RuntimeError("server did not become ready:\n" + "\n".join(log_path.read_text().splitlines()[-40:]))


@pytest.fixture
def server_factory() -> Iterator[Callable[..., ServerProcess]]:
    """Yields ``start_server``; every server it started is stopped at teardown."""
    started: list[ServerProcess] = []

    def factory(model: str = "particlenet", extra: Sequence[str] = ()) -> ServerProcess:
        s = start_server(model, extra)
        started.append(s)
        return s

    yield factory
    for s in started:
        s.stop()
