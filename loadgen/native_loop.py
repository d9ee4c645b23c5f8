"""The native loops (`--driver native`, `native-sync`): gRPC calls made on gRPC's C core, closed or open.

The loop itself runs on a C thread that never takes the GIL (loadgen/clients/_cgrpc_loops.c, `Loop`): N
calls on one completion queue, each stamped when it completes (one clock read, CLOCK_MONOTONIC, the
clock of time.perf_counter_ns) and sent again at once, so neither sending nor receiving waits for
Python. This module's thread takes the completions in batches (`Loop.take`, every :data:`POLL_S`,
so a completion costs no thread wake-up of its own) and records them; the recorder also takes them
at every window edge (`Recorder.flush`), so each window holds exactly what completed in it.
It is perf_analyzer's async mode (perf_analyzer `concurrency_worker.cc` with async contexts: N
requests in flight on one completion queue, each completion sending the next), with the Python work
per request reduced to one record.

`NativeSyncClosedLoop` (`--driver native-sync`) is perf_analyzer's sync mode on the same collector: one
C thread per call in flight, each blocking on its own completion queue (loadgen/clients/_cgrpc_sync.c,
`SyncLoop`; perf_analyzer `concurrency_worker.cc` with sync contexts). Against a dynamic batcher the
two modes load the server differently: the one-queue loop resends all the calls of a returned batch
within microseconds, so they arrive together and batch together again, while independent threads
wake one by one, as perf_analyzer's do. ``--driver auto`` takes the sync loop for a model with
``dynamic_batching`` in its config (so a level reproduces perf_analyzer's default numbers there), the
one-queue loop elsewhere (it costs less CPU per request; without a batcher the two measure the same).

The measurement rule is unchanged: latency is from a call's start to its completion, a request
belongs to the window in which it completes, records go into the level's
:class:`loadgen.drivers.Recorder` under its lock; after a connection-level failure a call waits
:data:`loadgen.drivers.FAILURE_BACKOFF_S` before it is sent again, as in the other loops. Stopping
sends no more; calls in flight complete (bounded by ``--request-timeout``) into a recorder that is no
longer read.

The open loop (`NativeOpenLoop`, request-rate levels and recorded schedules) keeps
:class:`loadgen.drivers.OpenLoop`'s schedule and rules: call k is due at its fixed time whatever the
answers; a C thread (loadgen/clients/_cgrpc_open.c) sleeps to each due time and sends (perf_analyzer's
request-rate mode, perf_analyzer `request_rate_worker.cc`), a second one completes the calls;
latency runs from the due time, service time from the actual send; a send more than 1 ms late is
`delayed`, one due while ``--max-outstanding`` are in flight is `dropped`. No Python runs between a
due time and its send.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from loadgen.clients.grpc_client import GrpcClient
from loadgen.clients.native_grpc import noted
from loadgen.drivers import (
    BACKOFF_CODES,
    DELAY_TOLERANCE_NS,
    FAILURE_BACKOFF_S,
    LoopState,
    OpenLoop,
    Recorder,
)

if TYPE_CHECKING:
    from loadgen.clients import _cgrpc

#: How often the collector takes the C loop's events (and looks at the stop flag); a window edge takes
#: them too, so this bounds only the buffer and the stop's delay. Wake-ups cost CPU: a 20 req/s open loop
#: took 3.5% of a core at 10 ms (and loadgen/looplag.py's probe at 5 ms), 2.0% with both at 50 / 20 ms.
POLL_S = 0.05
#: An open loop's event kinds (loadgen/clients/_cgrpc.h EV_*): done on time, done but sent late, dropped.
ON_TIME, LATE, DROPPED = 0, 1, 2


def _collect(loop: _cgrpc.Loop | _cgrpc.OpenLoop, recorder: Recorder, take: Callable[[], int],
             stopped: Callable[[], bool]) -> None:
    """The collector thread: every POLL_S (sooner when a batch is ready) record what the C loop has
    done; the recorder also takes it at each window edge (`Recorder.flush`, set by the driver's start
    before the first edge). Ends when the loop has stopped and everything it did is recorded."""
    while True:
        loop.wait(POLL_S)
        with recorder.lock:
            n = take()
        if stopped() and loop.finished and n == 0:
            return


async def _drain(loop: _cgrpc.Loop | _cgrpc.OpenLoop, collector: threading.Thread, recorder: Recorder,
                 drain_s: float) -> None:
    """Stop a C loop sending; wait up to `drain_s` for its calls in flight and the last records."""
    loop.stop()
    recorder.probe.stop()
    deadline = time.monotonic() + drain_s
    while collector.is_alive() and time.monotonic() < deadline:
        await asyncio.sleep(0.002)


class NativeClosedLoop(LoopState[threading.Thread]):
    """`ClosedLoop`'s contract (start, stop, recorder) on the C loop; see the module doc."""

    #: one C thread per call in flight (`_cgrpc.SyncLoop`) rather than one completion queue
    SYNC = False

    def start(self) -> None:
        client = self.client
        assert isinstance(client, GrpcClient) and client.sender == "native", "--driver native needs it"
        self._stop = False
        self._loop = client.native_loop(self.payloads, self.concurrency, FAILURE_BACKOFF_S, BACKOFF_CODES,
                                        self.offset, self.stride, self.SYNC)
        self.recorder.flush = self._take
        self._workers = [threading.Thread(target=self._collect, args=(self._loop,), daemon=True,
                                          name="saturate-native-loop")]
        self._workers[0].start()
        self.recorder.probe.start()

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop sending; wait up to `drain_s` for the calls in flight to end."""
        self._stop = True
        await _drain(self._loop, self._workers[0], self.recorder, drain_s)

    def _collect(self, loop: _cgrpc.Loop) -> None:
        _collect(loop, self.recorder, self._take, lambda: self._stop)

    def _take(self) -> int:
        """Record what the C loop has completed (under the recorder's lock); how many events."""
        rec, errors = self.recorder, self.client.errors
        events, sent = self._loop.take()
        rec.sent += sent
        for end, latency, code, details in events:
            if code == 0:
                rec.ok(end, latency)
            else:
                rec.fail(end, noted(errors, code, details))
        return len(events)


class NativeSyncClosedLoop(NativeClosedLoop):
    """The closed loop with one C thread per call in flight (perf_analyzer's sync mode); see the
    module doc."""

    SYNC = True


class NativeOpenLoop(OpenLoop):
    """`OpenLoop`'s contract (start at a given time, stop, recorder, sent) on the C open loop."""

    def start(self, start_ns: int | None = None) -> None:
        client = self.client
        assert isinstance(client, GrpcClient) and client.sender == "native", "--driver native needs it"
        self._stop = False
        t0 = time.perf_counter_ns() if start_ns is None else start_ns
        self._loop = client.native_open_loop(self.payloads, self.offsets.tolist(), self.period_ns, t0,
                                             self.max_outstanding, DELAY_TOLERANCE_NS)
        self.recorder.flush = self._take
        self._collector = threading.Thread(target=self._collect, args=(self._loop,), daemon=True,
                                           name="saturate-native-open-loop")
        self._collector.start()
        self.recorder.probe.start()

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop sending; wait up to `drain_s` for the calls in flight to end."""
        self._stop = True
        await _drain(self._loop, self._collector, self.recorder, drain_s)

    def _collect(self, loop: _cgrpc.OpenLoop) -> None:
        _collect(loop, self.recorder, self._take, lambda: self._stop)

    def _take(self) -> int:
        """Record what the C loop has sent, completed and dropped (under the recorder's lock)."""
        rec, errors = self.recorder, self.client.errors
        events, sent = self._loop.take()
        rec.sent += sent
        self.sent += sent
        for end, latency, service, kind, code, details in events:
            if kind == DROPPED:
                rec.drop(end)
            elif code == 0:
                rec.ok_open(end, latency, service, kind == LATE)
            else:
                rec.fail(end, noted(errors, code, details))
        return len(events)
