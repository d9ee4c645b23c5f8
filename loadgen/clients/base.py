"""The `Client` protocol (one per transport) and the small types the control plane returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from saturate.errors import ModelError, ServerError

#: One pre-built request: the bytes on the wire and (HTTP only) the JSON header length.
Payload = tuple[bytes, int]


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: name, Triton datatype, dims (batch dim included, -1 = variable)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelInfo:
    """What the load generator needs to know about a model before sending load."""

    name: str
    version: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int
    platform: str = ""
    #: the model's config has a ``dynamic_batching`` block (Triton's dynamic batcher is on)
    dynamic_batching: bool = False


@dataclass(frozen=True)
class RequestTensors:
    """The tensors of one request: inputs as numpy arrays (batch included) and outputs wanted."""

    inputs: tuple[tuple[str, str, np.ndarray[Any, Any]], ...]
    outputs: tuple[str, ...] = ()


@dataclass
class ErrorLog:
    """Failed-request counts per status code, with the first message seen for each."""

    first_message: dict[str, str] = field(default_factory=dict)

    def note(self, code: str, message: str) -> str:
        self.first_message.setdefault(code, message.splitlines()[0][:300] if message else code)
        return code


class BlockingInfer(Protocol):
    """One thread's blocking sender (the threaded driver's hot path, :mod:`loadgen.threaded`).

    `infer` has `Client.infer`'s contract (None or a status code, never raises for a failed request)
    and blocks the calling thread, not an event loop; `close` releases what the thread opened.
    """

    def infer(self, payload: Payload) -> str | None: ...

    def close(self) -> None: ...


class Client(Protocol):
    """A KServe v2 client: control-plane calls plus one hot `infer` on pre-built payloads.

    `infer` returns None on success or a short status code ("UNAVAILABLE", "HTTP_400", ...) on
    failure; it never raises for a failed request. `send_ns`/`recv_ns` accumulate the client's
    own marshal/unmarshal time for the Client Send / Client Recv columns.
    """

    url: str
    errors: ErrorLog
    send_ns: int
    recv_ns: int
    #: what `blocking` sends through: "native" (gRPC's C core) or "python" (loadgen.clients.native_grpc)
    sender: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def model_info(self, model: str, version: str) -> ModelInfo: ...

    async def has_statistics(self) -> bool: ...

    async def statistics(self, model: str, version: str) -> dict[str, Any]: ...

    def prepare(self, model: str, version: str, request: RequestTensors) -> Payload: ...

    async def infer(self, payload: Payload) -> str | None: ...

    async def infer_checked(self, payload: Payload) -> object: ...

    def blocking(self) -> BlockingInfer:
        """A blocking sender for one thread, with the same request, token and timeout as `infer`."""
        ...


def unreachable(url: str, protocol: str, detail: str) -> ServerError:
    return ServerError(
        f"cannot reach a {protocol} inference server at {url} ({detail}); "
        f"check -u HOST:PORT and -i grpc|http, and that the server is running"
    )


def unknown_model(model: str, url: str, detail: str) -> ModelError:
    return ModelError(f"model {model!r} is not served at {url} ({detail}); check -m and -x")


def token_refused(url: str, given: bool) -> ServerError:
    if given:
        return ServerError(f"the server at {url} refused the access token; pass the server's --access-token")
    return ServerError(f"the server at {url} needs an access token for statistics; pass --access-token TOKEN")


def is_auth_failure(code: str, message: str) -> bool:
    """True when a refusal is about a missing or wrong access token."""
    text = message.lower()
    return (
        code in {"PERMISSION_DENIED", "UNAUTHENTICATED", "HTTP_401", "HTTP_403"}
        or "restricted" in text
        or "access token" in text
        or "access-token" in text
    )


def model_info_from_json(meta: dict[str, Any], config: dict[str, Any]) -> ModelInfo:
    """Build ModelInfo from KServe metadata JSON and Triton config JSON (gRPC or HTTP shapes)."""
    cfg = config.get("config", config)

    def specs(items: list[dict[str, Any]]) -> tuple[TensorSpec, ...]:
        return tuple(
            TensorSpec(str(t["name"]), str(t["datatype"]), tuple(int(d) for d in t.get("shape", [])))
            for t in items
        )

    versions = meta.get("versions") or [""]
    return ModelInfo(
        name=str(meta.get("name", "")),
        version=str(versions[-1]),
        inputs=specs(meta.get("inputs", [])),
        outputs=specs(meta.get("outputs", [])),
        max_batch_size=int(cfg.get("max_batch_size", 0) or 0),
        platform=str(meta.get("platform", "")),
        dynamic_batching="dynamic_batching" in cfg,
    )
