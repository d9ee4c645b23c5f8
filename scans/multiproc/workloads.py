"""The child side of ``saturate scan multiproc``: pinning, the phase protocol and the two workloads.

Each child (started with the ``spawn`` context) pins itself, sets its device visibility, loads its
workload, then walks the phases the parent coordinates (see :mod:`scans.multiproc.multiproc_scan`):

    setup → arrive "ready" → wait for release (no load)
    warm-up for ``warmup_ns`` → arrive "warm" → keep loading (unrecorded) until release
    measure for ``measure_ns`` (recorded) → arrive "measured" → cool-down: keep loading until release
        and at least ``cooldown_ns``, so slower peers measure on a loaded machine
    send the result → exit

Every wait has a deadline and checks the parent's abort event and that the parent is alive: a child
never hangs. A workload error is sent to the parent as one line (with the UsageError class, if any)
before the child exits with code 1.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from saturate.errors import UsageError
from scans.multiproc.topology import Placement

if TYPE_CHECKING:
    from loadgen.config import LoadConfig

PHASES: tuple[str, ...] = ("ready", "warm", "measured")
POLL_S = 0.005
CHECK_NS = 50_000_000  # how often a loop looks at the abort event


class Aborted(Exception):
    """The parent ended the run (another child failed, a timeout, Ctrl-C) or went away."""


class WorkloadFailed(Exception):
    """The workload ran but measured nothing usable; the message says why (sent as is)."""


@dataclass(frozen=True)
class Phases:
    """Phase lengths (ns) and how long a child waits for its peers (s)."""

    warmup_ns: int
    measure_ns: int
    cooldown_ns: int
    barrier_timeout_s: float
    setup_timeout_s: float


class EventLike(Protocol):
    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class QueueLike(Protocol):
    def put(self, obj: Any, block: bool = True, timeout: float | None = None) -> None: ...


@dataclass
class ChildControl:
    """The child's handle on the parent's barriers: arrive, test or wait for a release."""

    rank: int
    results: QueueLike
    events: Mapping[str, EventLike]
    abort: EventLike
    parent_pid: int
    phases: Phases

    def arrive(self, phase: str, info: dict[str, Any] | None = None) -> None:
        self.results.put(("arrive", self.rank, phase, time.perf_counter_ns(), info or {}))

    def check(self) -> None:
        """Raise :class:`Aborted` when the parent stopped the run or is gone."""
        if self.abort.is_set() or os.getppid() != self.parent_pid:
            raise Aborted(f"child {self.rank}: the run was stopped")

    def released(self, phase: str) -> bool:
        self.check()
        return self.events[phase].is_set()

    def deadline_s(self, phase: str) -> float:
        return self.phases.setup_timeout_s if phase == "ready" else self.phases.barrier_timeout_s

    def wait(self, phase: str) -> None:
        """Block (no load running) until ``phase`` is released; a deadline ends the child."""
        limit = time.monotonic() + self.deadline_s(phase) + 5.0
        while not self.released(phase):
            if time.monotonic() > limit:
                raise Aborted(f"child {self.rank}: no release of the {phase!r} barrier")
            self.events[phase].wait(0.05)


@dataclass
class Timeline:
    """What a workload measured: per-iteration times of the measured window and counters."""

    times_ns: list[int] = field(default_factory=list)
    window_start_ns: int = 0
    window_end_ns: int = 0
    items_per_iteration: int = 1
    in_flight: int = 1
    warmup_iterations: int = 0
    cooldown_iterations: int = 0
    completed: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def run_sync(step: Callable[[int], None], ctl: ChildControl, items: int) -> Timeline:
    """The phase walk for a synchronous one-call-at-a-time workload (``step(i)`` runs call i)."""
    ph, clock, tl = ctl.phases, time.perf_counter_ns, Timeline(items_per_iteration=items)
    ctl.arrive("ready")
    ctl.wait("ready")
    i, start = 0, clock()
    checked = start
    while (now := clock()) - start < ph.warmup_ns:
        if now - checked > CHECK_NS:
            ctl.check()
            checked = now
        step(i)
        i += 1
    ctl.arrive("warm")
    limit = clock() + int(ctl.deadline_s("warm") * 1e9) + 5_000_000_000
    while not ctl.released("warm"):
        step(i)
        i += 1
        if clock() > limit:
            raise Aborted(f"child {ctl.rank}: no release of the 'warm' barrier")
    tl.warmup_iterations = i
    times, t0 = tl.times_ns, clock()
    tl.window_start_ns = checked = t0
    while True:
        a = clock()
        step(i)
        b = clock()
        times.append(b - a)
        i += 1
        if b - t0 >= ph.measure_ns:
            break
        if b - checked > CHECK_NS:
            ctl.check()
            checked = b
    tl.window_end_ns = b
    tl.completed = len(times)
    ctl.arrive("measured")
    c0, n0 = clock(), i
    limit = c0 + int(ctl.deadline_s("measured") * 1e9) + ph.cooldown_ns + 5_000_000_000
    while clock() - c0 < ph.cooldown_ns or not ctl.released("measured"):
        step(i)
        i += 1
        if clock() > limit:
            raise Aborted(f"child {ctl.rank}: no release of the 'measured' barrier")
    tl.cooldown_iterations = i - n0
    return tl


class Workload(Protocol):
    """What a child runs: picklable settings plus ``run`` (in the child) → Timeline."""

    @property
    def kind(self) -> str: ...

    def run(self, ctl: ChildControl, cores: int) -> Timeline: ...


@dataclass(frozen=True)
class DirectWorkload:
    """Direct inference of a zoo model in the child (the servers backends, device-synchronised)."""

    model: str = "particlenet"
    backend: str = "torch"
    device: str = "cpu"
    precision: str = "fp32"
    model_file: str | None = None
    batch_size: int = 1
    sizes: tuple[tuple[str, int], ...] = ()
    threads: int | None = None
    input_pool: int = 4
    seed: int = 0
    kind: str = "direct"

    def run(self, ctl: ChildControl, cores: int) -> Timeline:
        from pathlib import Path

        import torch

        from scans.direct.runners import make_runner
        from servers.backends import BackendConfig, load_backend
        from servers.models import ModelOptions, get_spec, synthetic_inputs

        threads = self.threads or max(1, cores)
        torch.set_num_threads(threads)
        opts = ModelOptions()
        spec = get_spec(self.model, opts)
        sizes = dict(self.sizes)
        bcfg = BackendConfig(kind=self.backend, device=self.device, precision=self.precision,
                             model_file=Path(self.model_file) if self.model_file else None)
        backend = load_backend(spec, bcfg, opts)
        call = make_runner(backend, self.device).worker()
        pool = [synthetic_inputs(spec, self.batch_size, sizes, seed=self.seed + i)
                for i in range(self.input_pool)]
        tl = run_sync(lambda i: call(pool[i % len(pool)]), ctl, self.batch_size)
        tl.extra = {"threads": threads, "backend": backend.describe()}
        return tl


@dataclass(frozen=True)
class LoadgenWorkload:
    """One closed-loop loadgen client per child against a KServe v2 server (a ``LoadSession``)."""

    url: str
    model: str
    protocol: str = "grpc"
    batch_size: int = 1
    concurrency: int = 1
    access_token: str | None = None
    shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    input_data: str = "random"
    seed: int = 0
    kind: str = "loadgen"

    def run(self, ctl: ChildControl, cores: int) -> Timeline:
        return asyncio.run(self._run(ctl))

    async def _sleep(self, ctl: ChildControl, ns: int) -> None:
        """Sleep ``ns`` while watching the abort event."""
        end = time.perf_counter_ns() + ns
        while (left := end - time.perf_counter_ns()) > 0:
            ctl.check()
            await asyncio.sleep(min(left, CHECK_NS) / 1e9)

    async def _until(self, ctl: ChildControl, phase: str, min_ns: int) -> None:
        t0 = time.perf_counter_ns()
        limit = t0 + int((ctl.deadline_s(phase) + 5.0) * 1e9) + min_ns
        while time.perf_counter_ns() - t0 < min_ns or not ctl.released(phase):
            if time.perf_counter_ns() > limit:
                raise Aborted(f"child {ctl.rank}: no release of the {phase!r} barrier")
            await asyncio.sleep(POLL_S)

    def load_config(self, rank: int) -> LoadConfig:
        """The ``saturate load`` settings of rank ``rank``'s client (its own seed)."""
        from loadgen.config import LoadConfig, Range

        c = float(self.concurrency)
        return LoadConfig(model=self.model, url=self.url, protocol=self.protocol,  # type: ignore[arg-type]
                          batch_size=self.batch_size, concurrency_range=Range(c, c, 1),
                          shapes=self.shapes, input_data=self.input_data, seed=self.seed + rank,
                          access_token=self.access_token, event_loop="asyncio", quiet=True)

    async def _run(self, ctl: ChildControl) -> Timeline:
        """The phases on a :class:`loadgen.runner.LoadSession` (its pre-flight, client and driver);
        the parent's barriers, not the stability rule, decide the window: one window per phase."""
        from loadgen.runner import LoadSession

        ph = ctl.phases
        async with LoadSession(self.load_config(ctl.rank)) as session:
            source = session.source
            ctl.arrive("ready")
            await self._until(ctl, "ready", 0)
            await source.start_level(float(self.concurrency))
            try:
                await source.reset(time.perf_counter_ns())
                await self._sleep(ctl, ph.warmup_ns)
                ctl.arrive("warm")
                await self._until(ctl, "warm", 0)
                t0 = time.perf_counter_ns()
                warm = (await source.cut(t0)).completed
                await self._sleep(ctl, ph.measure_ns)
                t1 = time.perf_counter_ns()
                window = await source.cut(t1)
                ctl.arrive("measured")
                await self._until(ctl, "measured", ph.cooldown_ns)
                cooldown = (await source.cut(time.perf_counter_ns())).completed
            finally:
                await source.stop_level()
            errors = dict(session.client.errors.first_message)
        if window.completed == 0:
            raise WorkloadFailed(f"no request completed in the measured window ({window.failed} failed "
                                 f"{window.errors}); lengthen --time or check the server")
        return Timeline(
            times_ns=[int(x) for x in window.latencies_ns], window_start_ns=t0, window_end_ns=t1,
            items_per_iteration=self.batch_size, in_flight=self.concurrency, warmup_iterations=warm,
            cooldown_iterations=cooldown, completed=window.completed,
            failed=window.failed, errors=dict(window.errors),
            extra={"client_errors": errors},
        )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def child_main(placement: Placement, pinning: str, workload: Workload, phases: Phases, results: Any,
               events: dict[str, Any], abort: Any, parent_pid: int) -> None:
    """Entry point of one child (a spawn target): pin, run the workload, send the result or the error."""
    os.environ.update(placement.env())
    ctl = ChildControl(placement.rank, results, events, abort, parent_pid, phases)
    try:
        if pinning != "none":
            os.sched_setaffinity(0, placement.cores)
        affinity = sorted(os.sched_getaffinity(0))
        tl = workload.run(ctl, len(affinity))
    except (Aborted, KeyboardInterrupt):
        sys.exit(3)
    except BaseException as exc:  # everything a workload can raise goes to the parent as one line
        usage = type(exc).__name__ if isinstance(exc, UsageError) else None
        plain = usage or isinstance(exc, WorkloadFailed)
        detail = _one_line(exc) if plain else f"{type(exc).__name__}: {_one_line(exc)}"
        results.put(("error", placement.rank, usage, detail))
        _flush(results)
        sys.exit(1)
    results.put(("result", placement.rank, {
        "pid": os.getpid(), "affinity": affinity,
        "env": {k: os.environ.get(k) for k in placement.env()},
        "timeline": tl,
    }))
    _flush(results)


def _flush(results: Any) -> None:
    """Let the queue's feeder thread hand the last message over before the process exits."""
    close = getattr(results, "close", None)
    join = getattr(results, "join_thread", None)
    if close is not None and join is not None:
        close()
        join()


__all__ = ["PHASES", "Aborted", "ChildControl", "DirectWorkload", "LoadgenWorkload", "Phases", "Timeline",
           "WorkloadFailed", "child_main"]
