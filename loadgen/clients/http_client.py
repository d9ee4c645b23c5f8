"""HTTP client on aiohttp with Triton's binary tensor extension.

The request body (JSON header + raw tensor bytes) is built once with tritonclient's
``generate_request_body``; every send posts the same bytes with the
``Inference-Header-Content-Length`` header and asks for binary outputs, so answers stay small.
The threaded driver's blocking sends (:meth:`HttpClient.blocking`) post the same bytes and headers
over the standard library's ``http.client``, one keep-alive connection per thread (reopened after a
failure), with Nagle off as aiohttp has it.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from tritonclient import http as triton_http

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
from loadgen.timeouts import (
    CONTROL_TIMEOUT_S,
    DEADLINE,
    DEFAULT_REQUEST_TIMEOUT_S,
    no_answer,
    request_deadline,
)
from saturate.errors import ModelError, ServerError
from saturate.tokens import HTTP_TOKEN_HEADER

_NET_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


def _detail(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


class HttpClient:
    """KServe v2 over HTTP/REST (see module doc); one aiohttp session with an unbounded pool."""

    def __init__(self, url: str, access_token: str | None = None,
                 request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S) -> None:
        self.url = url.split("://")[-1]
        self.request_timeout_s = request_deadline(request_timeout_s)
        self._request_timeout = aiohttp.ClientTimeout(total=self.request_timeout_s)
        self.sender = "python"  # http.client keep-alive (no native HTTP sender)
        self.errors = ErrorLog()
        self.send_ns = 0
        self.recv_ns = 0
        self._base = f"http://{self.url}"
        self._token = access_token
        self._headers: dict[str, str] = {HTTP_TOKEN_HEADER: access_token} if access_token else {}
        self._session: aiohttp.ClientSession | None = None
        self._infer_url = ""
        self._infer_headers: dict[int, dict[str, str]] = {}

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None))
        try:
            status, _ = await self._get("/v2/health/live")
        except ServerError as exc:
            await self.close()
            raise unreachable(self.url, "HTTP", str(exc.__context__ or exc)) from None
        if status != 200:
            await self.close()
            raise ServerError(f"the server at {self.url} is not live (HTTP {status}); wait for it and retry")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "open() first"
        return self._session

    async def _get(self, path: str) -> tuple[int, dict[str, Any]]:
        """One control call; a lost, refusing or hung server raises ServerError (bounded wait)."""
        timeout = aiohttp.ClientTimeout(total=CONTROL_TIMEOUT_S)
        try:
            async with self.session.get(self._base + path, headers=self._headers, timeout=timeout) as resp:
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = {"error": (await resp.text())[:200]}
                return resp.status, body if isinstance(body, dict) else {"value": body}
        except _NET_ERRORS as exc:
            err = no_answer(self.url, f"GET {path}", CONTROL_TIMEOUT_S, _detail(exc))
            err.__context__ = ServerError(_detail(exc))
            raise err from None

    @staticmethod
    def _model_path(model: str, version: str) -> str:
        return f"/v2/models/{model}" + (f"/versions/{version}" if version else "")

    async def model_info(self, model: str, version: str) -> ModelInfo:
        path = self._model_path(model, version)
        status, meta = await self._get(path)
        if status == 200:
            status, config = await self._get(path + "/config")
        if status != 200:
            msg = str(meta.get("error", f"HTTP {status}"))
            if is_auth_failure(f"HTTP_{status}", msg):
                raise token_refused(self.url, self._token is not None)
            raise unknown_model(model, self.url, msg.splitlines()[0][:160])
        return model_info_from_json(meta, config)

    async def has_statistics(self) -> bool:
        status, meta = await self._get("/v2")
        return status == 200 and "statistics" in meta.get("extensions", [])

    async def statistics(self, model: str, version: str) -> dict[str, Any]:
        status, stats = await self._get(self._model_path(model, version) + "/stats")
        if status != 200:
            msg = str(stats.get("error", f"HTTP {status}"))
            if is_auth_failure(f"HTTP_{status}", msg):
                raise token_refused(self.url, self._token is not None)
            raise ServerError(f"statistics from {self.url} failed: {msg.splitlines()[0][:160]}")
        return stats

    def prepare(self, model: str, version: str, request: RequestTensors) -> Payload:
        """Build the binary-extension body once with tritonclient.http's types."""
        inputs = []
        for name, datatype, array in request.inputs:
            tensor = triton_http.InferInput(name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array, binary_data=True)
            inputs.append(tensor)
        outputs = [triton_http.InferRequestedOutput(n, binary_data=True) for n in request.outputs] or None
        body, json_size = triton_http.InferenceServerClient.generate_request_body(inputs, outputs=outputs)
        self._infer_url = self._base + self._model_path(model, version) + "/infer"
        size = int(json_size) if json_size is not None else len(body)
        headers = dict(self._headers)
        if json_size is not None:
            headers["Inference-Header-Content-Length"] = str(size)
        self._infer_headers[size] = headers
        return bytes(body), size

    async def infer(self, payload: Payload) -> str | None:
        t0 = time.perf_counter_ns()
        headers = self._infer_headers[payload[1]]
        try:
            ctx = self.session.post(self._infer_url, data=payload[0], headers=headers,
                                    timeout=self._request_timeout)
            self.send_ns += time.perf_counter_ns() - t0
            async with ctx as resp:
                t1 = time.perf_counter_ns()
                body = await resp.read()
                self.recv_ns += time.perf_counter_ns() - t1
                if resp.status == 200:
                    return None
                return self.errors.note(f"HTTP_{resp.status}", body[:300].decode(errors="replace"))
        except asyncio.TimeoutError as exc:
            return self.errors.note(DEADLINE, str(exc) or f"no answer within {self.request_timeout_s} s")
        except (aiohttp.ClientError, OSError) as exc:
            return self.errors.note("UNAVAILABLE", str(exc) or type(exc).__name__)

    def blocking(self) -> _BlockingHttp:
        parts = urlsplit(self._infer_url or self._base)
        return _BlockingHttp(parts.hostname or "127.0.0.1", parts.port or 80, parts.path,
                             self._infer_headers, self.request_timeout_s, self.errors)

    async def infer_checked(self, payload: Payload) -> bytes:
        """One request (pre-flight); raises ModelError with the server's message if refused."""
        try:
            headers = self._infer_headers[payload[1]]
            async with self.session.post(self._infer_url, data=payload[0], headers=headers,
                                         timeout=self._request_timeout) as resp:
                body = await resp.read()
                status = resp.status
        except asyncio.TimeoutError:
            raise no_answer(self.url, "a test request", self.request_timeout_s) from None
        except _NET_ERRORS as exc:
            raise no_answer(self.url, "a test request", None, _detail(exc)) from None
        if status != 200:
            text = body[:400].decode(errors="replace")
            if is_auth_failure(f"HTTP_{status}", text):
                raise token_refused(self.url, self._token is not None)
            first = text.splitlines()[0] if text else ""
            raise ModelError(f"the server refused a test request (HTTP {status}): {first}")
        return body


class _BlockingHttp:
    """One thread's keep-alive connection posting pre-built bodies (see module doc)."""

    def __init__(self, host: str, port: int, path: str, headers: dict[int, dict[str, str]],
                 timeout_s: float | None, errors: ErrorLog) -> None:
        self._host, self._port, self._path, self._headers = host, port, path, headers
        self._timeout, self._errors = timeout_s, errors
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            conn.connect()
            assert conn.sock is not None
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conn = conn
        return self._conn

    def infer(self, payload: Payload) -> str | None:
        try:
            conn = self._connection()
            conn.request("POST", self._path, body=payload[0], headers=self._headers[payload[1]])
            resp = conn.getresponse()
            body = resp.read()
        except TimeoutError as exc:
            self.close()
            return self._errors.note(DEADLINE, str(exc) or f"no answer within {self._timeout} s")
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return self._errors.note("UNAVAILABLE", str(exc) or type(exc).__name__)
        if resp.status == 200:
            return None
        return self._errors.note(f"HTTP_{resp.status}", body[:300].decode(errors="replace"))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
