"""Transport clients behind one `Client` protocol: gRPC (grpc.aio) and HTTP (aiohttp)."""

from __future__ import annotations

from loadgen.clients.base import Client, ModelInfo, Payload, RequestTensors, TensorSpec
from loadgen.clients.grpc_client import GrpcClient
from loadgen.clients.http_client import HttpClient
from loadgen.timeouts import DEFAULT_REQUEST_TIMEOUT_S

__all__ = ["Client", "GrpcClient", "HttpClient", "ModelInfo", "Payload", "RequestTensors", "TensorSpec",
           "make_client"]


def make_client(protocol: str, url: str, access_token: str | None,
                request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
                sender: str = "auto") -> GrpcClient | HttpClient:
    """The client for `-i grpc|http`; every request has `request_timeout_s` (0 = none); `sender` is
    `--sender` (loadgen.clients.native_grpc; gRPC only)."""
    if protocol == "http":
        return HttpClient(url, access_token, request_timeout_s)
    return GrpcClient(url, access_token, request_timeout_s, sender)
