"""The native gRPC sender and its loops (loadgen/clients/_cgrpc*.c through loadgen.clients.native_grpc)
against a real in-process gRPC server (grpcio's, with a generic handler): what it sends, its status
codes and details, its deadline, an unreachable server, metadata, many threads on one channel, the
closed loop's N in flight and the open loop's schedule, cap and drops.

`make test` builds the extension first (tools/build_native.sh); the module is skipped, saying so,
only where it could not be built. The same sender drives the threaded levels of every integration
test against PyTriton (tests/integration/test_load_server.py checks `client.sender`)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from loadgen.clients import native_grpc
from loadgen.clients.base import ErrorLog
from loadgen.clients.grpc_client import INFER_METHOD
from loadgen.drivers import BACKOFF_CODES, DELAY_TOLERANCE_NS
from saturate.errors import ConfigError

if native_grpc.native_missing() is not None:
    pytest.skip(f"{native_grpc.native_missing()}", allow_module_level=True)

from loadgen.clients import _cgrpc  # built: checked just above


class _Handler:
    """ModelInfer by payload: b"ok" answers, b"refuse" aborts INVALID_ARGUMENT, b"hang" sleeps."""

    def __init__(self) -> None:
        self.seen: list[tuple[bytes, dict[str, str]]] = []
        self.lock = threading.Lock()

    def __call__(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self.lock:
            self.seen.append((request, {m.key: m.value for m in context.invocation_metadata()}))
        if request == b"refuse":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unexpected shape [1,3] for input 'x'")
        if request == b"hang":
            time.sleep(1.0)
        return b"answer:" + request


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, _Handler]]:
    handler = _Handler()
    service, method = INFER_METHOD.strip("/").split("/")
    # enough workers that the "hang" calls (each holds one for 1 s) never delay the tests after them
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    srv.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        service, {method: grpc.unary_unary_rpc_method_handler(handler)}),))
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    yield f"127.0.0.1:{port}", handler
    srv.stop(0)


def _sender(target: str, metadata: tuple[tuple[str, str], ...] | None = None,
            timeout_s: float | None = 5.0) -> tuple[native_grpc.NativeBlockingGrpc, ErrorLog]:
    errors = ErrorLog()
    return native_grpc.NativeChannel(target, INFER_METHOD).blocking(metadata, timeout_s, errors), errors


def test_sends_the_bytes_and_the_metadata(server: tuple[str, _Handler]) -> None:
    target, handler = server
    sender, _ = _sender(target, (("triton-grpc-protocol-triton-access-token", "t0ken"),))
    assert sender.infer((b"ok", 0)) is None
    request, metadata = handler.seen[-1]
    assert request == b"ok" and metadata["triton-grpc-protocol-triton-access-token"] == "t0ken"
    sender.close()


def test_a_refusal_is_its_status_code_with_the_details(server: tuple[str, _Handler]) -> None:
    sender, errors = _sender(server[0])
    assert sender.infer((b"refuse", 0)) == "INVALID_ARGUMENT"
    assert errors.first_message["INVALID_ARGUMENT"] == "unexpected shape [1,3] for input 'x'"
    assert sender.infer((b"ok", 0)) is None  # the channel is still good after a refusal


def test_the_deadline_ends_a_call_the_server_does_not_answer(server: tuple[str, _Handler]) -> None:
    sender, _ = _sender(server[0], timeout_s=0.2)
    t0 = time.monotonic()
    assert sender.infer((b"hang", 0)) == "DEADLINE_EXCEEDED"
    assert 0.15 < time.monotonic() - t0 < 0.9


def test_an_unreachable_server_is_unavailable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender, errors = _sender(f"127.0.0.1:{port}", timeout_s=5.0)
    assert sender.infer((b"ok", 0)) == "UNAVAILABLE" and errors.first_message["UNAVAILABLE"]


def test_threads_share_one_channel_each_with_its_own_caller(server: tuple[str, _Handler]) -> None:
    target, handler = server
    channel, errors = native_grpc.NativeChannel(target, INFER_METHOD), ErrorLog()
    results: list[str | None] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        sender = channel.blocking(None, 5.0, errors)
        for j in range(50):
            code = sender.infer((f"ok-{i}-{j}".encode(), 0))
            with lock:
                results.append(code)
        sender.close()

    before = len(handler.seen)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [None] * 200 and len(handler.seen) - before == 200
    sent = {f"ok-{i}-{j}".encode() for i in range(4) for j in range(50)}
    assert {r for r, _ in handler.seen[before:]} == sent


def test_which_sender_a_client_gets(monkeypatch: pytest.MonkeyPatch) -> None:
    assert native_grpc.resolve("auto", "grpc") == "native"
    assert native_grpc.resolve("python", "grpc") == "python"
    assert native_grpc.resolve("auto", "http") == "python"
    monkeypatch.setattr(native_grpc, "_cgrpc", None)  # as on a machine where it was not built
    assert native_grpc.resolve("auto", "grpc") == "python"
    with pytest.raises(ConfigError, match="make native"):
        native_grpc.resolve("native", "grpc")


def _collect(loop: _cgrpc.Loop | _cgrpc.OpenLoop, seconds: float) -> tuple[list[Any], int]:
    """Poll a C loop for `seconds`, then stop it and drain what is in flight."""
    events: list[Any] = []
    sent = 0
    end = time.monotonic() + seconds
    stopped = False
    while True:
        loop.wait(0.01)
        got, n = loop.take()
        events += got
        sent += n
        if not stopped and time.monotonic() >= end:
            loop.stop()
            stopped = True
        if stopped and loop.finished and not got:
            return events, sent
        assert time.monotonic() < end + 5, "the loop did not drain"


def _loop(target: str, payloads: list[bytes], concurrency: int, timeout_s: float = 5.0,
          backoff_s: float = 0.01, metadata: tuple[tuple[str, str], ...] | None = None,
          offset: int = 0, backoff_codes: frozenset[str] = BACKOFF_CODES,
          sync: bool = False) -> _cgrpc.Loop:
    channel = native_grpc.NativeChannel(target, INFER_METHOD)
    return channel.loop(payloads, concurrency, metadata, timeout_s, backoff_s, backoff_codes, offset,
                        sync=sync)


#: both closed loops: one completion queue (`Loop`) and a thread per call (`SyncLoop`, native-sync)
BOTH = pytest.mark.parametrize("sync", [False, True], ids=["one-queue", "sync"])


@BOTH
def test_the_c_loop_keeps_n_in_flight_and_every_send_completes(server: tuple[str, _Handler],
                                                               sync: bool) -> None:
    target, handler = server
    before = len(handler.seen)
    t0 = time.perf_counter_ns()
    loop = _loop(target, [b"ok-a", b"ok-b", b"ok-c"], 4, offset=1, sync=sync)
    events, sent = _collect(loop, 0.3)
    t1 = time.perf_counter_ns()
    assert len(events) == sent == len(handler.seen) - before > 8
    assert all(code == 0 and details is None for _, _, code, details in events)
    # completion times on time.perf_counter_ns's clock, in order, each after its own latency
    ends = [e for e, _, _, _ in events]
    assert ends == sorted(ends) and t0 <= ends[0] and ends[-1] <= t1
    assert all(0 < lat <= e - t0 for e, lat, _, _ in events)
    # slot i starts at payload offset + i and walks on: the first four sends are b, c, a, b
    assert [r for r, _ in handler.seen[before:before + 4]].count(b"ok-b") >= 1
    assert {r for r, _ in handler.seen[before:]} == {b"ok-a", b"ok-b", b"ok-c"}


@BOTH
def test_the_c_loop_reports_refusals_and_goes_on(server: tuple[str, _Handler], sync: bool) -> None:
    events, sent = _collect(_loop(server[0], [b"refuse", b"ok"], 1, sync=sync,
                                  metadata=(("triton-grpc-protocol-triton-access-token", "t"),)), 0.2)
    codes = [code for _, _, code, _ in events]
    assert sent == len(events) and codes.count(3) > 2 and codes.count(0) > 2  # 3 = INVALID_ARGUMENT
    assert {d for _, _, c, d in events if c == 3} == {"unexpected shape [1,3] for input 'x'"}
    assert server[1].seen[-1][1]["triton-grpc-protocol-triton-access-token"] == "t"


@BOTH
def test_the_c_loop_backs_off_from_an_unreachable_server(sync: bool) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    events, sent = _collect(_loop(f"127.0.0.1:{port}", [b"ok"], 2, backoff_s=0.05, sync=sync), 0.3)
    assert events and {native_grpc.code_name(c) for _, _, c, _ in events} == {"UNAVAILABLE"}
    assert sent == len(events) <= 2 * (0.3 / 0.05 + 2)  # each slot waits 50 ms between tries


@BOTH
def test_the_c_loop_backs_off_only_for_the_codes_python_names(sync: bool) -> None:
    """The codes come from loadgen.drivers.BACKOFF_CODES, not from a copy in C: with none named, a
    refused connection is tried again at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = _loop(f"127.0.0.1:{port}", [b"ok"], 2, backoff_s=0.05, backoff_codes=frozenset(), sync=sync)
    events, sent = _collect(loop, 0.3)
    assert {native_grpc.code_name(c) for _, _, c, _ in events} == {"UNAVAILABLE"}
    assert sent == len(events) > 2 * (0.3 / 0.05 + 2)
    with pytest.raises(ValueError, match=r"0\.\.31"):
        kind = _cgrpc.SyncLoop if sync else _cgrpc.Loop
        kind(_cgrpc.Channel(f"127.0.0.1:{port}", INFER_METHOD), [b"ok"], 1, 1.0, 0.05, [32])


@BOTH
def test_the_c_loop_deadline_and_a_loop_dropped_with_calls_in_flight(server: tuple[str, _Handler],
                                                                     sync: bool) -> None:
    events, _ = _collect(_loop(server[0], [b"hang"], 2, timeout_s=0.2, sync=sync), 0.1)
    assert {native_grpc.code_name(c) for _, _, c, _ in events} == {"DEADLINE_EXCEEDED"}
    assert all(0.15e9 < lat < 0.9e9 for _, lat, _, _ in events)
    loop = _loop(server[0], [b"hang"], 3, timeout_s=0, sync=sync)  # no deadline: only dropping it ends them
    loop.wait(0.05)
    loop.take()
    assert loop.inflight == 3
    t0 = time.monotonic()
    del loop  # cancels the calls in flight and drains them
    assert time.monotonic() - t0 < 0.5


def _open(target: str, payloads: list[bytes], offsets_ms: list[float], period_ms: float, lead_ms: float = 20,
          max_outstanding: int = 0, timeout_s: float = 5.0) -> tuple[_cgrpc.OpenLoop, list[int], int]:
    """A C open loop due `lead_ms` from now; also its offsets (ns) and start (perf_counter ns)."""
    offsets = [round(ms * 1e6) for ms in offsets_ms]
    start = time.perf_counter_ns() + round(lead_ms * 1e6)
    channel = native_grpc.NativeChannel(target, INFER_METHOD)
    return channel.open_loop(payloads, offsets, round(period_ms * 1e6), start, max_outstanding,
                             DELAY_TOLERANCE_NS, None, timeout_s), offsets, start


def test_the_c_open_loop_sends_on_its_schedule_whatever_the_answers(server: tuple[str, _Handler]) -> None:
    target, handler = server
    before = len(handler.seen)
    loop, offsets, start = _open(target, [b"ok-a", b"ok-b"], [0, 5, 10, 25], period_ms=40)
    events, sent = _collect(loop, 0.2)
    assert len(events) == sent == len(handler.seen) - before >= 12  # ~5 periods of 4
    dues = [start + offsets[k % 4] + (k // 4) * 40_000_000 for k in range(sent)]
    for end, latency, service, kind, code, details in events:
        assert code == 0 and details is None and kind in (0, 1)  # done, on time or late
        # latency runs from the due time, service time from the send, which is never before it
        assert 0 < service <= latency and end - latency in dues
    assert [r for r, _ in handler.seen[before:before + 4]] == [b"ok-a", b"ok-b", b"ok-a", b"ok-b"]


def test_the_c_open_loop_drops_what_is_due_at_the_cap_and_reports_refusals(
        server: tuple[str, _Handler]) -> None:
    loop, offsets, start = _open(server[0], [b"hang"], [0, 10, 20, 30], period_ms=40, max_outstanding=1,
                                 timeout_s=0.3)
    events, sent = _collect(loop, 0.15)
    dropped = [e for e in events if e[3] == 2]
    done = [e for e in events if e[3] != 2]
    # one call in flight (it hangs past the deadline); each later due time is a drop, stamped with it
    assert sent == 1 and [native_grpc.code_name(e[4]) for e in done] == ["DEADLINE_EXCEEDED"]
    assert [e[0] for e in dropped] == [start + offsets[k % 4] + (k // 4) * 40_000_000
                                       for k in range(1, len(dropped) + 1)]
    events, sent = _collect(_open(server[0], [b"refuse"], [0], period_ms=10)[0], 0.1)
    assert sent == len(events) >= 3
    assert {(native_grpc.code_name(e[4]), e[5]) for e in events} == {
        ("INVALID_ARGUMENT", "unexpected shape [1,3] for input 'x'")}


def test_a_c_open_loop_dropped_with_calls_in_flight_cancels_them(server: tuple[str, _Handler]) -> None:
    loop, _, _ = _open(server[0], [b"hang"], [0, 1, 2], period_ms=1000, lead_ms=0, timeout_s=0)
    deadline = time.monotonic() + 2
    while loop.inflight < 3 and time.monotonic() < deadline:
        loop.wait(0.01)
        loop.take()
    assert loop.inflight == 3 and not loop.finished
    t0 = time.monotonic()
    del loop  # stops the sender, cancels the calls in flight and drains them
    assert time.monotonic() - t0 < 0.5
