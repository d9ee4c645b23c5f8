"""gRPC client on grpc.aio: requests pre-serialized once, sent as bytes, answers parsed only on demand.

The hot path calls `channel.unary_unary(".../ModelInfer")` with no serializers, so gRPC moves the
pre-built bytes as they are and hands back the raw response bytes; nothing is parsed unless a
check is asked for. The threaded driver's blocking sends (:meth:`GrpcClient.blocking`) do the same on
a synchronous channel opened beside the aio one, shared by its threads (grpcio's sync channels are
thread-safe), or on the native sender's C-core channel (loadgen.clients.native_grpc) when it is
built and chosen. Control-plane calls (metadata, config, statistics) go through tritonclient's
aio client, with the access token as metadata on every call.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

import grpc
from tritonclient.grpc import aio as triton_aio
from tritonclient.grpc import service_pb2
from tritonclient.utils import InferenceServerException, serialize_byte_tensor

from loadgen.clients.base import (
    ErrorLog,
    ModelInfo,
    Payload,
    RequestTensors,
    is_auth_failure,
    model_info_from_json,
    token_refused,
    unknown_model,
    unreachable,
)
from loadgen.clients.native_grpc import NativeBlockingGrpc, NativeChannel, resolve
from loadgen.timeouts import CONTROL_TIMEOUT_S, DEFAULT_REQUEST_TIMEOUT_S, no_answer, request_deadline
from saturate.errors import ModelError, ServerError
from saturate.tokens import GRPC_TOKEN_HEADER

if TYPE_CHECKING:  # the extension may not be built; only its types are needed here
    from loadgen.clients import _cgrpc

INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"
_MAX_MESSAGE = 2**31 - 1
_CONTROL_TIMEOUT_S = CONTROL_TIMEOUT_S
# No transparent retries: a load generator must see (and count) every failure.
_OPTIONS = [("grpc.max_send_message_length", _MAX_MESSAGE),
            ("grpc.max_receive_message_length", _MAX_MESSAGE), ("grpc.enable_retries", 0)]


def _status_name(exc: InferenceServerException) -> str:
    status = str(exc.status() or "")
    return status.rsplit(".", 1)[-1] or "UNKNOWN"


class GrpcClient:
    """KServe v2 over gRPC (see module doc); one channel shared by every in-flight request."""

    def __init__(self, url: str, access_token: str | None = None,
                 request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S, sender: str = "auto") -> None:
        self.url = url.split("://")[-1]
        #: the threaded driver's sender, "native" or "python" (loadgen.clients.native_grpc)
        self.sender = resolve(sender, "grpc")
        self.request_timeout_s = request_deadline(request_timeout_s)
        self.errors = ErrorLog()
        self.send_ns = 0
        self.recv_ns = 0
        self._token = access_token
        self._headers = {GRPC_TOKEN_HEADER: access_token} if access_token else None
        self._metadata: tuple[tuple[str, str], ...] | None = (
            ((GRPC_TOKEN_HEADER, access_token),) if access_token else None
        )
        # The token goes on ModelInfer only when the server restricts inference (found by the
        # pre-flight request): per-call metadata costs ~60 µs of client CPU per request.
        self._infer_metadata: tuple[tuple[str, str], ...] | None = None
        self._channel: grpc.aio.Channel | None = None
        self._sync_channel: grpc.Channel | None = None
        self._native: NativeChannel | None = None
        self._control: triton_aio.InferenceServerClient | None = None
        self._infer: Any = None

    async def open(self) -> None:
        self._channel = grpc.aio.insecure_channel(self.url, options=_OPTIONS)
        self._infer = self._channel.unary_unary(INFER_METHOD)
        self._control = triton_aio.InferenceServerClient(self.url)
        try:
            live = await self._control.is_server_live(headers=self._headers,
                                                      client_timeout=_CONTROL_TIMEOUT_S)
        except InferenceServerException as exc:
            raise unreachable(self.url, "gRPC", str(exc.message() or exc).splitlines()[0][:120]) from None
        if not live:
            raise ServerError(f"the server at {self.url} is not live yet; wait for it to be ready and retry")

    async def close(self) -> None:
        if self._control is not None:
            await self._control.close()
        if self._channel is not None:
            await self._channel.close()
        if self._sync_channel is not None:
            self._sync_channel.close()
            self._sync_channel = None
        self._native = None  # destroyed with the last thread's caller

    @property
    def control(self) -> triton_aio.InferenceServerClient:
        assert self._control is not None, "open() first"
        return self._control

    async def model_info(self, model: str, version: str) -> ModelInfo:
        try:
            meta = await self.control.get_model_metadata(
                model, version, headers=self._headers, as_json=True, client_timeout=_CONTROL_TIMEOUT_S)
            config = await self.control.get_model_config(
                model, version, headers=self._headers, as_json=True, client_timeout=_CONTROL_TIMEOUT_S)
        except InferenceServerException as exc:
            code, msg = _status_name(exc), str(exc.message() or exc)
            if is_auth_failure(code, msg):
                raise token_refused(self.url, self._token is not None) from None
            if code == "UNAVAILABLE" and "model" not in msg.lower():
                raise unreachable(self.url, "gRPC", msg.splitlines()[0][:120]) from None
            raise unknown_model(model, self.url, msg.splitlines()[0][:160]) from None
        return model_info_from_json(meta, config)

    async def has_statistics(self) -> bool:
        try:
            meta = await self.control.get_server_metadata(headers=self._headers, as_json=True,
                                                          client_timeout=_CONTROL_TIMEOUT_S)
        except InferenceServerException as exc:
            raise no_answer(self.url, "a server metadata call", _CONTROL_TIMEOUT_S,
                            str(exc.message() or exc).splitlines()[0][:120]) from None
        return "statistics" in meta.get("extensions", [])

    async def statistics(self, model: str, version: str) -> dict[str, Any]:
        try:
            stats: dict[str, Any] = await self.control.get_inference_statistics(
                model, version, headers=self._headers, as_json=True, client_timeout=_CONTROL_TIMEOUT_S)
        except InferenceServerException as exc:
            code, msg = _status_name(exc), str(exc.message() or exc)
            if is_auth_failure(code, msg):
                raise token_refused(self.url, self._token is not None) from None
            raise ServerError(f"statistics from {self.url} failed: {msg.splitlines()[0][:160]}") from None
        return stats

    def prepare(self, model: str, version: str, request: RequestTensors) -> Payload:
        """Build the ModelInferRequest with tritonclient's protobuf types and serialize it once."""
        req = service_pb2.ModelInferRequest(model_name=model, model_version=version)
        for name, datatype, array in request.inputs:
            tensor = req.inputs.add()
            tensor.name = name
            tensor.datatype = datatype
            tensor.shape.extend(array.shape)
            if datatype == "BYTES":
                serialized = serialize_byte_tensor(array)
                req.raw_input_contents.append(serialized.item() if serialized.size else b"")
            else:
                req.raw_input_contents.append(array.tobytes())
        for name in request.outputs:
            req.outputs.add().name = name
        return req.SerializeToString(), 0

    async def infer(self, payload: Payload) -> str | None:
        t0 = time.perf_counter_ns()
        call = self._infer(payload[0], metadata=self._infer_metadata, timeout=self.request_timeout_s)
        self.send_ns += time.perf_counter_ns() - t0
        try:
            await call
        except grpc.aio.AioRpcError as exc:
            code = exc.code().name
            return self.errors.note(code, str(exc.details() or code))
        return None

    def blocking(self) -> _BlockingGrpc | NativeBlockingGrpc:
        if self.sender == "native":
            return self._native_channel().blocking(self._infer_metadata, self.request_timeout_s, self.errors)
        if self._sync_channel is None:
            self._sync_channel = grpc.insecure_channel(self.url, options=_OPTIONS)
        return _BlockingGrpc(self._sync_channel.unary_unary(INFER_METHOD), self._infer_metadata,
                             self.request_timeout_s, self.errors)

    def _native_channel(self) -> NativeChannel:
        """The C-core channel the native sender and loop share, opened on first use."""
        if self._native is None:
            self._native = NativeChannel(self.url, INFER_METHOD)
        return self._native

    def native_loop(self, payloads: Sequence[Payload], concurrency: int, backoff_s: float,
                    backoff_codes: Collection[str], offset: int = 0, stride: int = 1,
                    sync: bool = False) -> _cgrpc.Loop:
        """A C closed loop on the native channel (loadgen.native_loop; `sync`: one thread per call),
        same request, token, deadline."""
        return self._native_channel().loop([p[0] for p in payloads], concurrency, self._infer_metadata,
                                           self.request_timeout_s, backoff_s, backoff_codes, offset, stride,
                                           sync)

    def native_open_loop(self, payloads: Sequence[Payload], offsets_ns: Sequence[int], period_ns: int,
                         start_ns: int, max_outstanding: int, late_ns: int) -> _cgrpc.OpenLoop:
        """The C open loop on the native channel (loadgen.native_loop), same request, token, deadline."""
        return self._native_channel().open_loop([p[0] for p in payloads], offsets_ns, period_ns, start_ns,
                                                max_outstanding, late_ns, self._infer_metadata,
                                                self.request_timeout_s)

    async def infer_checked(self, payload: Payload) -> service_pb2.ModelInferResponse:
        """One request with the answer parsed (pre-flight); raises ModelError if the server refuses it."""
        for metadata in (None, self._metadata) if self._metadata else (None,):
            try:
                raw = await self._infer(payload[0], metadata=metadata, timeout=self.request_timeout_s)
            except grpc.aio.AioRpcError as exc:
                msg = str(exc.details() or exc.code().name).splitlines()[0][:240]
                if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise no_answer(self.url, "a test request", self.request_timeout_s) from None
                if exc.code() == grpc.StatusCode.UNAVAILABLE:
                    raise no_answer(self.url, "a test request", None, msg[:120]) from None
                if not is_auth_failure(exc.code().name, msg):
                    raise ModelError(f"the server refused a test request: {msg}") from None
                continue  # refused for the token: try again with it, if we have one
            self._infer_metadata = metadata
            return service_pb2.ModelInferResponse.FromString(raw)
        raise token_refused(self.url, self._token is not None)


class _BlockingGrpc:
    """One thread's blocking ModelInfer on the client's synchronous channel (see module doc)."""

    def __init__(self, call: Any, metadata: tuple[tuple[str, str], ...] | None, timeout_s: float | None,
                 errors: ErrorLog) -> None:
        self._call, self._metadata, self._timeout, self._errors = call, metadata, timeout_s, errors

    def infer(self, payload: Payload) -> str | None:
        try:
            self._call(payload[0], metadata=self._metadata, timeout=self._timeout)
        except grpc.RpcError as exc:
            code = exc.code().name if isinstance(exc, grpc.Call) else "UNKNOWN"
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            return self._errors.note(code, str(details or code))
        return None

    def close(self) -> None:
        """Nothing per thread: the channel is the client's and closes with it."""
