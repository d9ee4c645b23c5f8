"""A minimal KServe v2 gRPC server that answers ModelInfer at once (for client-overhead numbers).

Run it as its own process: ``python benchmarks/null_kserve.py --port 18201 [--token T]``. It prints
``null_kserve: ready on HOST:PORT`` when serving. It implements ServerLive/Ready, ServerMetadata
(with the ``statistics`` extension), ModelReady, ModelMetadata, ModelConfig, ModelStatistics and
ModelInfer for one model, ``null`` (input ``INPUT0`` FP32 [-1,16], output ``OUTPUT0`` FP32 [-1,16],
max batch 64). ModelInfer never parses the request: it returns a pre-serialized answer, so almost
all of its cost is gRPC's own. With ``--token`` the statistics call needs the Triton access-token
metadata, as PyTriton's restricted endpoints do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from tritonclient.grpc import model_config_pb2, service_pb2

from saturate.tokens import GRPC_TOKEN_HEADER

SERVICE = "inference.GRPCInferenceService"
MODEL = "null"
TOKEN_KEY = GRPC_TOKEN_HEADER  # saturate/tokens.py


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        value |= (b & 0x7F) << shift
        i += 1
        if b < 0x80:
            return value, i
        shift += 7


def request_id(request: bytes) -> bytes:
    """Field 3 (``id``) of a serialized ModelInferRequest, read off the wire without parsing the tensors
    (fields 1-3, model_name/model_version/id, are strings that come first)."""
    i = 0
    while i < len(request):
        key, i = _varint(request, i)
        if key & 7 != 2 or key >> 3 > 3:
            return b""
        size, i = _varint(request, i)
        if key >> 3 == 3:
            return request[i:i + size]
        i += size
    return b""


def _field3(value: bytes) -> bytes:
    """``id`` (field 3, a string) on the wire: appended to a serialized message, it sets the field."""
    size, out = len(value), bytearray(b"\x1a")
    while size >= 0x80:
        out.append((size & 0x7F) | 0x80)
        size >>= 7
    out.append(size)
    return bytes(out) + value


class NullModel:
    """Counters for ModelStatistics and the pre-serialized ModelInfer answer."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.count = 0
        self.ns = 0
        response = service_pb2.ModelInferResponse(model_name=MODEL, model_version="1")
        out = response.outputs.add()
        out.name, out.datatype = "OUTPUT0", "FP32"
        out.shape.extend([1, 16])
        response.raw_output_contents.append(b"\0" * 64)
        self.answer = response.SerializeToString()

    async def infer(self, request: bytes, context: Any) -> bytes:
        t0 = time.perf_counter_ns()
        self.count += 1
        rid = request_id(request)
        self.ns += time.perf_counter_ns() - t0 + 1000
        # the request's id echoed (perf_analyzer --async matches answers to requests by it)
        answer: bytes = self.answer + _field3(rid) if rid else self.answer
        return answer

    async def live(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerLiveResponse(live=True)

    async def ready(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerReadyResponse(ready=True)

    async def model_ready(self, request: Any, context: Any) -> Any:
        return service_pb2.ModelReadyResponse(ready=request.name == MODEL)

    async def server_metadata(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerMetadataResponse(
            name="null_kserve", version="0", extensions=["statistics", "model_configuration"])

    async def model_metadata(self, request: Any, context: Any) -> Any:
        await self._check_model(request.name, context)
        t = service_pb2.ModelMetadataResponse.TensorMetadata
        return service_pb2.ModelMetadataResponse(
            name=MODEL, versions=["1"], platform="null",
            inputs=[t(name="INPUT0", datatype="FP32", shape=[-1, 16])],
            outputs=[t(name="OUTPUT0", datatype="FP32", shape=[-1, 16])])

    async def model_config(self, request: Any, context: Any) -> Any:
        await self._check_model(request.name, context)
        cfg = model_config_pb2.ModelConfig(name=MODEL, platform="null", max_batch_size=64)
        return service_pb2.ModelConfigResponse(config=cfg)

    async def model_statistics(self, request: Any, context: Any) -> Any:
        if self.token is not None:
            got = dict(context.invocation_metadata() or ()).get(TOKEN_KEY)
            if got != self.token:
                await context.abort(grpc.StatusCode.UNAVAILABLE,
                                    f"This API is restricted, expecting header '{TOKEN_KEY}'")
        await self._check_model(request.name or MODEL, context)
        stat = service_pb2.StatisticDuration
        n, ns = self.count, self.ns
        inference = service_pb2.InferStatistics(
            success=stat(count=n, ns=ns), queue=stat(count=n, ns=n * 100),
            compute_input=stat(count=n, ns=n * 100), compute_infer=stat(count=n, ns=n * 300),
            compute_output=stat(count=n, ns=n * 100))
        model = service_pb2.ModelStatistics(
            name=MODEL, version="1", inference_count=n, execution_count=n, inference_stats=inference)
        return service_pb2.ModelStatisticsResponse(model_stats=[model])

    async def _check_model(self, name: str, context: Any) -> None:
        if name != MODEL:
            await context.abort(grpc.StatusCode.NOT_FOUND,
                                f"Request for unknown model: '{name}' is not found")


def _handlers(model: NullModel) -> grpc.GenericRpcHandler:
    def unary(fn: Callable[..., Any], req: Any, resp: Any) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=req.FromString, response_serializer=resp.SerializeToString)

    pb = service_pb2
    table = {
        "ModelInfer": grpc.unary_unary_rpc_method_handler(model.infer),
        "ServerLive": unary(model.live, pb.ServerLiveRequest, pb.ServerLiveResponse),
        "ServerReady": unary(model.ready, pb.ServerReadyRequest, pb.ServerReadyResponse),
        "ModelReady": unary(model.model_ready, pb.ModelReadyRequest, pb.ModelReadyResponse),
        "ServerMetadata": unary(model.server_metadata, pb.ServerMetadataRequest, pb.ServerMetadataResponse),
        "ModelMetadata": unary(model.model_metadata, pb.ModelMetadataRequest, pb.ModelMetadataResponse),
        "ModelConfig": unary(model.model_config, pb.ModelConfigRequest, pb.ModelConfigResponse),
        "ModelStatistics": unary(model.model_statistics, pb.ModelStatisticsRequest,
                                 pb.ModelStatisticsResponse),
    }
    return grpc.method_handlers_generic_handler(SERVICE, table)


async def serve(host: str, port: int, token: str | None) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((_handlers(NullModel(token)),))
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(f"null_kserve: ready on {host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)


def start(port: int, token: str | None = None, cpu: int | None = None,
          timeout: float = 30) -> subprocess.Popen[str]:
    """Start the null server as its own process (optionally pinned to one CPU) and wait until ready."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--port", str(port)]
    if token:
        cmd += ["--token", token]
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("null_kserve: ready"):
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"null_kserve did not start on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18201)
    parser.add_argument("--token", default=None, help="require this access token for ModelStatistics")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.token))


if __name__ == "__main__":
    main()
