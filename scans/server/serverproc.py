"""A ``saturate serve`` subprocess for scans, the demo, the tune and the tests (``tests/conftest.py``):
free loopback ports (:func:`free_ports`, the one place in the tree, chosen together so they differ), a
fresh access token passed in the environment, its own session (a Ctrl-C on the terminal does not reach
it), and SIGTERM to its whole process group on :meth:`ServedServer.stop` — which callers run in
``finally`` so the server always goes away.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saturate.errors import ServerError
from saturate.tokens import child_env
from servers.models import MODEL_NAMES, get_spec
from servers.triton import READY_PREFIX


def zoo_shapes(model: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """``--shape`` values for a zoo model's variable inputs at its default sizes (none for other models)."""
    if model not in MODEL_NAMES:
        return ()
    spec = get_spec(model)
    sizes = spec.sizes()
    return tuple((t.name, t.concrete_shape(sizes)) for t in spec.inputs
                 if any(isinstance(d, str) for d in t.shape))


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports on 127.0.0.1 that are free right now. They are held together while
    chosen: ports picked one at a time can repeat (the kernel may hand a just-closed port out again),
    and a server given the same port twice refuses to start."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (several at once: :func:`free_ports`)."""
    return free_ports(1)[0]


@dataclass(frozen=True)
class ServeConfig:
    """What ``saturate serve`` gets; ports and token are chosen at start."""

    model: str = "particlenet"
    backend: str = "torch"
    device: str = "cpu"
    max_batch: int = 1024
    max_queue_delay_us: int = 0
    instances: int = 1
    extra: tuple[str, ...] = ()
    ready_timeout_s: float = 180.0

    def args(self) -> list[str]:
        return ["--model", self.model, "--backend", self.backend, "--device", self.device,
                "--max-batch", str(self.max_batch), "--max-queue-delay-us", str(self.max_queue_delay_us),
                "--instances", str(self.instances), *self.extra]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["extra"] = list(self.extra)
        return d


@dataclass
class ServedServer:
    """A started server: its ports, token and log; :meth:`stop` is idempotent."""

    cfg: ServeConfig
    log: Path
    http_port: int = 0  # 0: a free port, chosen with the others in __post_init__ so that they differ
    grpc_port: int = 0
    metrics_port: int = 0
    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    proc: subprocess.Popen[bytes] | None = None
    bind: str = "127.0.0.1"  # the address it listens on; the URLs always connect through loopback
    cwd: Path | None = None  # where the child's ``python -m saturate`` is resolved (default: ours)

    def __post_init__(self) -> None:
        names = ("http_port", "grpc_port", "metrics_port")
        missing = [n for n in names if not getattr(self, n)]
        given = {getattr(self, n) for n in names} - {0}
        # a few more than needed, so that none of the given ports has to be among them
        fresh = iter(p for p in free_ports(len(missing) + len(given)) if p not in given)
        for name in missing:
            setattr(self, name, next(fresh))

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self) -> ServedServer:
        """Start and wait for the ready line; a ServerError (with the log's tail on stderr) if it fails."""
        cmd = [sys.executable, "-m", "saturate", "serve", *self.cfg.args(), "--bind", self.bind,
               "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
               "--metrics-port", str(self.metrics_port)]  # the token goes in the environment, not argv
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                         env=child_env(self.token), cwd=self.cwd)
        deadline = time.monotonic() + self.cfg.ready_timeout_s
        while time.monotonic() < deadline:
            if any(ln.startswith(READY_PREFIX) for ln in self._lines()):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        print("\n".join(self._lines()[-15:]), file=sys.stderr)
        raise ServerError(f"the server for {self.cfg.model} did not become ready (log: {self.log}); "
                          "see the lines above, or start one yourself and pass -u")

    def _lines(self) -> list[str]:
        try:
            return self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM the process group, SIGKILL after ``timeout_s``; returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            except ProcessLookupError:
                proc.wait(10)
        return proc.returncode


def start_server(cfg: ServeConfig, log: Path, extra_args: Sequence[str] = ()) -> ServedServer:
    """Start ``saturate serve`` for ``cfg`` (plus ``extra_args``) and wait until it is ready."""
    full = dataclasses.replace(cfg, extra=(*cfg.extra, *extra_args))
    return ServedServer(full, log).start()
