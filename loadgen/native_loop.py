"""The native closed loop (`--driver native`): N gRPC calls in flight on gRPC's C core.

The loop itself runs on a C thread that never takes the GIL (loadgen/clients/_cgrpc.c, `Loop`): N
calls on one completion queue, each stamped when it completes (one clock read, CLOCK_MONOTONIC, the
clock of time.perf_counter_ns) and sent again at once, so neither sending nor receiving waits for
Python; this module's thread only takes the completions in batches (`Loop.poll`) and records them.
It is perf_analyzer's async mode (perf_analyzer `concurrency_worker.cc` with async contexts: N
requests in flight on one completion queue, each completion sending the next), with the Python work
per request reduced to one record.

The measurement rule is unchanged: latency is from a call's start to its completion, a request
belongs to the window in which it completes, records go into the level's
:class:`loadgen.drivers.Recorder` under its lock; after a connection-level failure a call waits
:data:`loadgen.drivers.FAILURE_BACKOFF_S` before it is sent again, as in the other loops. Stopping
sends no more; calls in flight complete (bounded by ``--request-timeout``) into a recorder that is no
longer read.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING

from loadgen.clients.grpc_client import GrpcClient
from loadgen.clients.native_grpc import code_name
from loadgen.drivers import FAILURE_BACKOFF_S, LoopState

if TYPE_CHECKING:
    from loadgen.clients import _cgrpc

#: How long one poll waits for a completion before it looks at the stop flag again.
POLL_S = 0.01


class NativeClosedLoop(LoopState[threading.Thread]):
    """`ClosedLoop`'s contract (start, stop, recorder) on the C loop; see the module doc."""

    def start(self) -> None:
        client = self.client
        assert isinstance(client, GrpcClient) and client.sender == "native", "--driver native needs it"
        self._stop = False
        self._loop = client.native_loop(self.payloads, self.concurrency, FAILURE_BACKOFF_S, self.offset,
                                        self.stride)
        self._workers = [threading.Thread(target=self._collect, args=(self._loop,), daemon=True,
                                          name="saturate-native-loop")]
        self._workers[0].start()
        self.recorder.probe.start()

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop sending; wait up to `drain_s` for the calls in flight to end."""
        self._stop = True
        self._loop.stop()
        self.recorder.probe.stop()
        deadline = time.monotonic() + drain_s
        while self._workers[0].is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.002)

    def _collect(self, loop: _cgrpc.Loop) -> None:
        rec, lock, note = self.recorder, self.recorder.lock, self.client.errors.note
        poll = loop.poll
        while True:
            events, sent = poll(POLL_S)
            with lock:
                rec.sent += sent
                for end, latency, code, details in events:
                    if code == 0:
                        rec.ok(end, latency)
                    else:
                        name = code_name(code)
                        rec.fail(end, note(name, details or name))
            if self._stop and loop.finished and not events:
                return
