"""A frozen :class:`ServerConfig` → a PyTriton ``Triton`` serving one zoo model under its real tensor names.

The libpython ``LD_LIBRARY_PATH`` fix, port checks, signal handling and the ready line live here too.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from saturate.errors import ConfigError, ServerError
from servers import hygiene
from servers.access import access_note, restricted_endpoints
from servers.backends import Backend, BackendConfig, load_backend
from servers.models import Array, ModelOptions, ModelSpec, get_spec

READY_PREFIX = "saturate serve: ready"


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``saturate serve`` needs; built from CLI flags (or a sweep spec) in one place."""

    model: str = "particlenet"
    backend: BackendConfig = field(default_factory=BackendConfig)
    options: ModelOptions = field(default_factory=ModelOptions)
    max_batch: int = 1024
    preferred_batch: tuple[int, ...] = ()
    max_queue_delay_us: int = 0
    instances: int = 1
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    bind: str = "127.0.0.1"
    access_token: str | None = None
    guard_statistics: bool = False  # --guard-statistics: the token guards statistics on loopback too
    log_verbose: int = 0

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ConfigError(f"--max-batch {self.max_batch} must be at least 1")
        bad = [b for b in self.preferred_batch if not 1 <= b <= self.max_batch]
        if bad:
            raise ConfigError(f"--preferred-batch {bad} must lie in 1..--max-batch ({self.max_batch})")
        if self.max_queue_delay_us < 0:
            raise ConfigError("--max-queue-delay-us must be 0 or more")
        if self.instances < 1:
            raise ConfigError("--instances must be at least 1")
        if self.log_verbose < 0:
            raise ConfigError("--log-verbose must be 0 or more")
        ports = {"http": self.http_port, "grpc": self.grpc_port, "metrics": self.metrics_port}
        for name, port in ports.items():
            if not 1 <= port <= 65535:
                raise ConfigError(f"--{name}-port {port} must lie in 1..65535")
        if len(set(ports.values())) != len(ports):
            raise ConfigError(
                f"HTTP, gRPC and metrics ports must differ (got {ports}); set --http/--grpc/--metrics-port"
            )
        if self.access_token is not None and (
            not self.access_token or any(c.isspace() for c in self.access_token)
        ):
            raise ConfigError("--access-token must be a non-empty string without spaces")

    @property
    def ports(self) -> dict[str, int]:
        return {"http": self.http_port, "grpc": self.grpc_port, "metrics": self.metrics_port}


def libpython_fix(environ: MutableMapping[str, str]) -> bool:
    """Put libpython's LIBDIR on ``LD_LIBRARY_PATH`` (PyTriton's Python-backend stub links libpython).

    PyTriton copies ``os.environ`` when it spawns tritonserver, which spawns the stub, so setting it
    in this process before ``Triton`` starts is enough. Returns whether it changed anything.
    """
    libdir = sysconfig.get_config_var("LIBDIR")
    if not libdir:
        return False
    current = environ.get("LD_LIBRARY_PATH", "")
    if libdir in current.split(":"):
        return False
    environ["LD_LIBRARY_PATH"] = f"{libdir}:{current}" if current else str(libdir)
    return True


def check_ports(bind: str, ports: dict[str, int]) -> None:
    """Fail before Triton starts when a port is taken (a :class:`ServerError` naming the flag)."""
    for name, port in ports.items():
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((bind, port))
            except socket.gaierror:
                raise ConfigError(
                    f"cannot bind {bind!r}: not an address or host name here; use --bind 127.0.0.1 or 0.0.0.0"
                ) from None
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ServerError(
                        f"{name} port {port} on {bind} is in use; choose another with --{name}-port"
                    ) from None
                if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                    raise ConfigError(
                        f"cannot bind {bind}: no such address here; use --bind 127.0.0.1 or 0.0.0.0"
                    ) from None
                if exc.errno == errno.EACCES:
                    raise ServerError(
                        f"{name} port {port} needs privileges; choose one above 1023 with --{name}-port"
                    ) from None
                raise


def make_infer_fn(backend: Backend) -> Callable[..., dict[str, Array]]:
    """A PyTriton ``@batch`` callable: inputs arrive as keyword arrays and are mapped by name."""
    from pytriton.decorators import batch

    def infer(**inputs: Array) -> dict[str, Array]:
        return backend.infer(inputs)

    wrapped: Callable[..., dict[str, Array]] = batch(infer)
    return wrapped


def _tensors(spec: ModelSpec, which: str) -> list[Any]:
    from pytriton.model_config import Tensor

    tensors = spec.inputs if which == "inputs" else spec.outputs
    return [Tensor(name=t.name, dtype=t.numpy_dtype.type, shape=t.triton_shape) for t in tensors]


def build_triton(config: ServerConfig, spec: ModelSpec, backend: Backend) -> tuple[Any, str]:
    """A bound (not yet started) PyTriton ``Triton`` and the access token it enforces."""
    import secrets

    from pytriton.model_config import DynamicBatcher, ModelConfig
    from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

    token = config.access_token or secrets.token_urlsafe(24)
    triton_config = TritonConfig(
        http_address=config.bind,
        http_port=config.http_port,
        grpc_address=config.bind,
        grpc_port=config.grpc_port,
        metrics_address=config.bind,
        metrics_port=config.metrics_port,
        log_verbose=config.log_verbose,
        exit_on_error=True,
    )
    endpoints = restricted_endpoints(config.bind, config.guard_statistics)
    security = TritonSecurityConfig(access_token=token, restricted_endpoints=endpoints)
    triton = Triton(config=triton_config, security_config=security)
    batcher = DynamicBatcher(
        preferred_batch_size=list(config.preferred_batch) or None,
        max_queue_delay_microseconds=config.max_queue_delay_us,
    )
    triton.bind(
        model_name=spec.name,
        infer_func=[make_infer_fn(backend) for _ in range(config.instances)],
        inputs=_tensors(spec, "inputs"),
        outputs=_tensors(spec, "outputs"),
        config=ModelConfig(max_batch_size=config.max_batch, batcher=batcher),
        strict=True,
    )
    return triton, token


def ready_line(config: ServerConfig) -> str:
    """The one line ``saturate serve`` prints to stdout when the server answers."""
    host = f"[{config.bind}]" if ":" in config.bind else config.bind
    return (
        f"{READY_PREFIX} model={config.model} backend={config.backend.kind} device={config.backend.device} "
        f"grpc={host}:{config.grpc_port} http={host}:{config.http_port} metrics={host}:{config.metrics_port}"
    )


# PyTriton 0.7 (pytriton/proxy/model.py): instance N>0 of a model reads its config from instance 0's
# handshake socket within 1 s; on a loaded machine that read is refused and the load fails. One retry.
_HANDSHAKE_RACE = "get_config_from_handshake_server"


def start_triton(config: ServerConfig, spec: ModelSpec, backend: Backend) -> tuple[Any, str] | None:
    """Build and run Triton; a model PyTriton cannot load is one line on stderr and ``None``."""
    from pytriton.exceptions import PyTritonError
    from tritonclient.utils import InferenceServerException

    for attempt in (1, 2):
        triton, token = build_triton(config, spec, backend)
        try:
            triton.run()
            return triton, token
        except (InferenceServerException, PyTritonError) as exc:
            triton.stop()
            text = str(exc)
            if _HANDSHAKE_RACE in text and attempt == 1:
                print("saturate serve: PyTriton's instance handshake timed out (a loaded machine); "
                      "loading once more", file=sys.stderr, flush=True)
                continue
            first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
            print(f"saturate serve: Triton could not load {spec.name}: {first[:300]} "
                  "(rerun with --log-verbose 1 for Triton's log)", file=sys.stderr, flush=True)
            return None
    return None


def serve(config: ServerConfig) -> int:
    """Serve until SIGTERM/SIGINT (exit 0) or until Triton dies (exit 1)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    old_umask = hygiene.private_umask()  # PyTriton's shared memory and workspace: this user only
    try:
        libpython_fix(os.environ)
        check_ports(config.bind, config.ports)
        hygiene.remove_stale_segments()
        hygiene.warn_if_open(config.bind)
        spec = get_spec(config.model, config.options)
        backend = load_backend(spec, config.backend, config.options)
        print(f"saturate serve: loaded {spec.name}: {backend.describe()}", file=sys.stderr, flush=True)
        if stop.is_set():
            return 0
        started = start_triton(config, spec, backend)
        if started is None:
            return 1
        triton, token = started
        try:
            hygiene.make_private(os.getpid())
            if config.access_token is None:
                print(
                    "saturate serve: statistics access token (generated; choose one with --access-token): "
                    + token,
                    file=sys.stderr,
                    flush=True,
                )
            print(access_note(config.bind, config.guard_statistics), file=sys.stderr, flush=True)
            print(ready_line(config), flush=True)
            watch = hygiene.ModelWatch(config.bind, config.http_port, spec.name)
            while not stop.wait(0.5):
                if not triton.is_alive():
                    print("saturate serve: Triton stopped unexpectedly; see the log above", file=sys.stderr)
                    return 1
                if watch.lost(time.monotonic()):
                    print(f"saturate serve: model {spec.name} is no longer loaded (unloaded through the "
                          "repository API?); stopping", file=sys.stderr, flush=True)
                    return 1
        finally:
            triton.stop()
        print("saturate serve: stopped", file=sys.stderr, flush=True)
        return 0
    finally:
        hygiene.remove_segments(os.getpid())
        os.umask(old_umask)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
