"""Transport clients behind one `Client` protocol: gRPC (grpc.aio) and HTTP (aiohttp).

The HTTP client is imported when it is first asked for (``make_client("http", …)`` or the name
``HttpClient``): aiohttp and tritonclient.http cost ~0.2 s of CPU at start-up, which a gRPC run would
otherwise pay in the client CPU it reports for the whole process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loadgen.clients.base import Client, ModelInfo, Payload, RequestTensors, TensorSpec
from loadgen.clients.grpc_client import GrpcClient
from loadgen.timeouts import DEFAULT_REQUEST_TIMEOUT_S

if TYPE_CHECKING:
    from loadgen.clients.http_client import HttpClient

__all__ = ["Client", "GrpcClient", "HttpClient", "ModelInfo", "Payload", "RequestTensors", "TensorSpec",
           "make_client"]


def __getattr__(name: str) -> Any:  # PEP 562: ``from loadgen.clients import HttpClient`` imports it then
    if name == "HttpClient":
        from loadgen.clients.http_client import HttpClient

        return HttpClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_client(protocol: str, url: str, access_token: str | None,
                request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
                sender: str = "auto") -> GrpcClient | HttpClient:
    """The client for `-i grpc|http`; every request has `request_timeout_s` (0 = none); `sender` is
    `--sender` (loadgen.clients.native_grpc; gRPC only)."""
    if protocol == "http":
        from loadgen.clients.http_client import HttpClient

        return HttpClient(url, access_token, request_timeout_s)
    return GrpcClient(url, access_token, request_timeout_s, sender)
