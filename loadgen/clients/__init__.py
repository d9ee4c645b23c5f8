"""Transport clients behind one `Client` protocol: gRPC (grpc.aio) and HTTP (aiohttp)."""

from __future__ import annotations

from loadgen.clients.base import Client, ModelInfo, Payload, RequestTensors, TensorSpec
from loadgen.clients.grpc_client import GrpcClient
from loadgen.clients.http_client import HttpClient

__all__ = ["Client", "GrpcClient", "HttpClient", "ModelInfo", "Payload", "RequestTensors", "TensorSpec",
           "make_client"]


def make_client(protocol: str, url: str, access_token: str | None) -> GrpcClient | HttpClient:
    """The client for `-i grpc|http`."""
    if protocol == "http":
        return HttpClient(url, access_token)
    return GrpcClient(url, access_token)
