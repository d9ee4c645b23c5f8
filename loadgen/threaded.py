"""The threaded closed loop: N OS threads, each sending its next request as soon as the previous one
answers, through the client's blocking sender (`Client.blocking`), and which driver a level gets.

Why threads: at low concurrency the asyncio path pays the event loop on every request (wake-up,
callback, task step, future) on top of grpc.aio's own call object; a blocking grpcio call waits on
its completion queue with the GIL released and returns straight into the thread that records it.
perf_analyzer's sync mode is the same design: one thread per in-flight request, each blocking on its
call (perf_analyzer `concurrency_worker.cc`, `ConcurrencyWorker::Infer` with sync contexts). With
many requests in flight the threads contend for the GIL and the single event loop wins again, so
``--driver auto`` takes threads only up to :data:`AUTO_MAX_THREADS` in flight per process (measured
with `benchmarks/vs_perf_analyzer.py --driver`; the README table names the numbers). Where the
native C loop can run (loadgen.native_loop: gRPC, the native sender built, no drawn shapes to
count) auto takes it at every concurrency, and for open loops too: it costs less client CPU per
request than either. For a closed loop against a model whose config has ``dynamic_batching``, auto
takes its sync form (``native-sync``, one C thread per call, perf_analyzer's default mode): the
one-queue loop batches differently there (loadgen.native_loop says why).

The measurement rule is unchanged: latency is the blocking call's span on one monotonic clock, a
request belongs to the window in which it completes, and records go into the level's
:class:`loadgen.drivers.Recorder` under its lock. Stopping sets a flag that every thread reads
between requests; a thread still inside a request finishes it (bounded by ``--request-timeout``)
into a recorder that is no longer read.
"""

from __future__ import annotations

import asyncio
import threading
import time

from loadgen.clients.base import BlockingInfer, Client
from loadgen.config import LoadConfig
from loadgen.drivers import BACKOFF_CODES, FAILURE_BACKOFF_S, LoopState

#: the closed loops that block one thread per request in flight (perf_analyzer's sync mode)
SYNC_DRIVERS = ("native-sync", "threads")
#: ``--driver auto`` uses threads for a closed loop with at most this many requests in flight
#: (when the native loop cannot run).
AUTO_MAX_THREADS = 4


def driver_name(driver: str, mode: str, concurrency: int, native: bool = False,
                batching: bool = False) -> str:
    """Which loop a level runs, as its JSON records it in ``client.driver``: "native" (the C closed
    or open loop, loadgen.native_loop), "native-sync" (the C closed loop with a thread per call),
    "threads" or "asyncio". `native`: the native loop can run (the native gRPC sender is built and
    chosen, and no drawn shapes need counting); `batching`: the model has a dynamic batcher."""
    closed = mode == "concurrency"
    if closed and (driver == "native-sync" or (driver == "auto" and native and batching)):
        return "native-sync"
    if driver in ("native", "native-sync") or (driver == "auto" and native):
        return "native"
    if not closed:
        return "asyncio"  # otherwise open loops run on the event loop
    if driver == "threads" or (driver == "auto" and concurrency <= AUTO_MAX_THREADS):
        return "threads"
    return "asyncio"


def level_driver(cfg: LoadConfig, client: Client, concurrency: int, batching: bool) -> str:
    """`driver_name` for one process's share of a level of `cfg`, sent through `client` to a model
    that batches dynamically (`batching`, its ModelInfo.dynamic_batching) or not."""
    native = client.sender == "native" and cfg.shape_dist is None
    return driver_name(cfg.driver, cfg.mode, concurrency, native, batching)


class ThreadedClosedLoop(LoopState[threading.Thread]):
    """`ClosedLoop`'s contract (start, stop, recorder) on threads; see the module doc."""

    def start(self) -> None:
        self._stop = False
        self._workers = [threading.Thread(target=self._worker, name=f"saturate-load-{i}", daemon=True,
                                          args=(self.client.blocking(), self.offset + i * self.stride))
                         for i in range(self.concurrency)]
        for thread in self._workers:
            thread.start()
        self.recorder.probe.start()

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop sending; wait up to `drain_s` for the threads' requests in flight to end."""
        self._stop = True
        self.recorder.probe.stop()
        deadline = time.monotonic() + drain_s
        while any(t.is_alive() for t in self._workers) and time.monotonic() < deadline:
            await asyncio.sleep(0.002)

    def _worker(self, sender: BlockingInfer, index: int) -> None:
        payloads, n = self.payloads, len(self.payloads)
        infer, rec, lock, clock = sender.infer, self.recorder, self.recorder.lock, time.perf_counter_ns
        i = index
        try:
            while not self._stop:
                with lock:
                    rec.sent += 1
                t0 = clock()
                code = infer(payloads[i % n])
                t1 = clock()
                with lock:
                    if code is None:
                        rec.ok(t1, t1 - t0)
                    else:
                        rec.fail(t1, code)
                if code is not None and code in BACKOFF_CODES:
                    time.sleep(FAILURE_BACKOFF_S)
                i += 1
        finally:
            sender.close()
