"""Shared test helpers: the product's free loopback ports and ``saturate serve`` subprocess
(``scans.server.serverproc``), stopped at teardown, and ``python -m saturate`` runs."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from scans.server.serverproc import ServeConfig, ServedServer, free_port, free_ports

__all__ = ["FIXTURES", "REPO", "ServerProcess", "free_port", "free_ports", "run_cli", "server_factory",
           "start_server"]

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"  # real tool outputs, copied in with their provenance


def run_cli(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m saturate ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "saturate", *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env,
    )


class ServerProcess(ServedServer):
    """The product's ``saturate serve`` helper (:class:`~scans.server.serverproc.ServedServer`) under the
    names the tests use: ``model`` and ``log_path``; ``stop()`` sends SIGTERM to its process group."""

    @property
    def model(self) -> str:
        return self.cfg.model

    @property
    def log_path(self) -> Path:
        return self.log


def start_server(
    model: str = "particlenet",
    extra: Sequence[str] = (),
    ready_timeout: float = 180,
    log_dir: Path | None = None,
) -> ServerProcess:
    """Start ``saturate serve`` on free loopback ports (token ``test-token``) and wait for its ready line.

    Output goes to a log file (never a pipe that could fill and block the server).
    """
    log_path = Path(tempfile.mkstemp(prefix="serve-", suffix=".log", dir=log_dir)[1])
    rest, bind = list(extra), "127.0.0.1"
    if "--bind" in rest:  # the helper passes --bind itself, after the other flags
        i = rest.index("--bind")
        bind = rest[i + 1]
        del rest[i:i + 2]
    cfg = ServeConfig(model=model, extra=tuple(rest), ready_timeout_s=ready_timeout)
    server = ServerProcess(cfg, log_path, token="test-token", bind=bind, cwd=REPO)
    server.start()
    return server


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
