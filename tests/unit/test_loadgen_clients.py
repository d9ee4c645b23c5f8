"""Both clients' control plane and hot path against the real null KServe v2 gRPC server (gRPC),
and the drivers' window cut, schedule and open loop against it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pytest
from conftest import REPO, free_port

from loadgen.clients import GrpcClient, HttpClient, RequestTensors
from loadgen.clients.native_grpc import native_missing
from loadgen.drivers import ClosedLoop, OpenLoop, Recorder, schedule_offsets
from loadgen.native_loop import NativeClosedLoop, NativeOpenLoop, NativeSyncClosedLoop
from saturate.errors import ModelError, ServerError

sys.path.insert(0, str(REPO / "benchmarks"))
import null_kserve

REQ = RequestTensors((("INPUT0", "FP32", np.zeros((1, 16), np.float32)),), ("OUTPUT0",))


@pytest.fixture(scope="module")
def null_server() -> Iterator[str]:
    port = free_port()
    proc: subprocess.Popen[str] = null_kserve.start(port, token="tok")
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def test_grpc_control_plane_and_infer(null_server: str) -> None:
    async def go() -> None:
        c = GrpcClient(null_server, "tok")
        await c.open()
        info = await c.model_info("null", "")
        assert info.max_batch_size == 64 and info.inputs[0].shape == (-1, 16)
        assert await c.has_statistics()
        payload = c.prepare("null", "", REQ)
        assert await c.infer(payload) is None
        resp = await c.infer_checked(payload)
        assert resp.outputs[0].name == "OUTPUT0"  # type: ignore[attr-defined]
        stats = await c.statistics("null", "")
        assert int(stats["model_stats"][0]["inference_count"]) >= 2
        with pytest.raises(ModelError, match="not served"):
            await c.model_info("nope", "")
        await c.close()
        for token in (None, "bad"):
            c2 = GrpcClient(null_server, token)
            await c2.open()
            with pytest.raises(ServerError, match="access token"):
                await c2.statistics("null", "")
            await c2.close()
    asyncio.run(go())


def test_unreachable_servers_raise_one_line() -> None:
    async def go() -> None:
        port = free_port()
        for client in (GrpcClient(f"127.0.0.1:{port}"), HttpClient(f"127.0.0.1:{port}")):
            with pytest.raises(ServerError, match="cannot reach") as err:
                await client.open()
            assert "\n" not in str(err.value)
            await client.close()
    asyncio.run(go())


def test_closed_loop_keeps_n_in_flight_and_cuts_by_completion(null_server: str) -> None:
    async def go() -> None:
        c = GrpcClient(null_server, "tok")
        await c.open()
        rec = Recorder(c, open_loop=False)
        loop = ClosedLoop(c, [c.prepare("null", "", REQ)], rec, 4)
        loop.start()
        await asyncio.sleep(0.3)
        edge = time.perf_counter_ns()
        first = rec.cut(edge)
        await asyncio.sleep(0.3)
        second = rec.cut(time.perf_counter_ns())
        await loop.stop()
        await c.close()
        assert first.completed > 10 and second.completed > 10 and first.failed == 0
        assert second.start_ns == edge and (first.latencies_ns > 0).all()
        assert first.cpu_ns > 0 and second.service_ns is None
        assert first.completed <= first.sent <= first.completed + 4 and first.send_ns_total > 0
    asyncio.run(go())


def test_schedules_are_seeded_and_have_the_rate() -> None:
    const = schedule_offsets(100, "constant", 0, 10)
    assert len(const) == 1000 and np.all(np.diff(const) == 10_000_000)
    a, b = schedule_offsets(100, "poisson", 7, 10), schedule_offsets(100, "poisson", 7, 10)
    assert np.array_equal(a, b) and not np.array_equal(a, schedule_offsets(100, "poisson", 8, 10))
    assert 8e6 < np.diff(a).mean() < 12e6 and a[0] == 0


NATIVE = pytest.mark.skipif(native_missing() is not None, reason=f"{native_missing()}")
OPEN_LOOPS = [OpenLoop, pytest.param(NativeOpenLoop, marks=NATIVE)]


@pytest.mark.parametrize("open_loop", OPEN_LOOPS)
def test_open_loop_rate_latency_and_drop_cap(null_server: str, open_loop: type[OpenLoop]) -> None:
    """The event loop's and the C open loop: the schedule's rate, latency from the due time at least the
    service time, and drops at the cap."""
    async def go() -> None:
        c = GrpcClient(null_server, "tok")
        await c.open()
        rec = Recorder(c, open_loop=True)
        loop = open_loop(c, [c.prepare("null", "", REQ)], rec, rate=200, seed=1)
        loop.start()
        await asyncio.sleep(1.0)
        part = rec.cut(time.perf_counter_ns())
        await loop.stop()
        assert 150 <= part.completed + part.failed <= 210
        assert part.service_ns is not None and (part.latencies_ns >= part.service_ns).all()
        rec2 = Recorder(c, open_loop=True)
        capped = open_loop(c, [c.prepare("null", "", REQ)], rec2, rate=5000, max_outstanding=1)
        capped.start()
        await asyncio.sleep(0.3)
        part2 = rec2.cut(time.perf_counter_ns())
        await capped.stop()
        await c.close()
        assert part2.dropped > 0
    asyncio.run(go())


@NATIVE
@pytest.mark.parametrize("kind", ["closed", "sync", "open"])
def test_a_c_loops_windows_hold_exactly_what_completed_in_them(null_server: str, kind: str) -> None:
    """The C loops' completions wait in C until Python takes them (every POLL_S); each cut takes them
    first (`Recorder.flush`), so no request that completed by an edge is left for the next window."""
    async def go() -> None:
        c = GrpcClient(null_server, "tok")
        await c.open()
        rec = Recorder(c, open_loop=kind == "open")
        payloads = [c.prepare("null", "", REQ)]
        closed = {"closed": NativeClosedLoop, "sync": NativeSyncClosedLoop}.get(kind)
        driver = (closed(c, payloads, rec, 2) if closed is not None
                  else NativeOpenLoop(c, payloads, rec, rate=2000, seed=3))
        driver.start()
        rec.reset()
        total = 0
        for _ in range(4):
            await asyncio.sleep(0.15)
            edge = time.perf_counter_ns()
            part = rec.cut(edge)
            total += part.completed
            assert part.completed > 20 and part.failed == 0
            with rec.lock:  # what reaches Python after the cut completed after its edge
                assert rec.flush is not None
                rec.flush()
                assert all(end > edge for end in rec._end)
        await driver.stop()
        await c.close()
        assert total <= rec.total_completed
    asyncio.run(go())
