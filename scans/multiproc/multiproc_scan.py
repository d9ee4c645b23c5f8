"""``saturate scan multiproc``: N pinned processes, one workload each, synchronised by barriers.

The parent starts one child per :class:`~scans.multiproc.topology.Placement` with the ``spawn`` context (under
``numactl`` for ``--pinning numa``) and acts as the barrier: children send "arrived" messages on a
queue, the parent releases a phase (one event, all children at once) when every child has arrived.
While it waits, the parent polls every child's exit code: a child that dies ends the run at once
with a message naming it (its own error line when it sent one); a child that does not arrive within
the barrier timeout ends it too. Never a bare ``Barrier.wait()``: the DeepSparse benchmark this
follows hung forever at its barrier when a worker failed. Statistics: :mod:`scans.multiproc.mpstats`.

Output: ``OUT/multiproc.json`` (schema ``saturate.multiproc/1``, written on failure too) and
``OUT/multiproc_times.npz`` (per rank ``T{rank}``: the measured per-iteration times, int64 ns).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import signal
import stat
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import spawn
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from loadgen.result import write_json_atomic
from saturate import errors
from saturate.environment import environment
from saturate.errors import ConfigError, UsageError
from saturate.tokens import MASK
from saturate.version import saturate_version
from scans.multiproc.mpstats import ProcessMeasure, aggregate, process_summary
from scans.multiproc.topology import PINNINGS, Placement, format_cores, numactl_prefix
from scans.multiproc.workloads import PHASES, Phases, Timeline, Workload, child_main

SCHEMA = "saturate.multiproc/1"
JSON_NAME = "multiproc.json"
TIMES_NAME = "multiproc_times.npz"
POLL_S = 0.05
_STAGE = {"ready": "setup", "warm": "warm-up", "measured": "the measured window", "result": "cool-down"}
DEFAULT_PHASES = Phases(warmup_ns=2_000_000_000, measure_ns=10_000_000_000, cooldown_ns=1_000_000_000,
                        barrier_timeout_s=30.0, setup_timeout_s=300.0)


class ChildFailed(Exception):
    """A child died, failed or missed a barrier; ``usage`` names the UsageError class it raised."""

    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.usage = usage

    def as_usage_error(self) -> UsageError | None:
        cls = getattr(errors, self.usage or "", None)
        if isinstance(cls, type) and issubclass(cls, UsageError):
            return cls(str(self))
        return None


@dataclass(frozen=True)
class MultiprocConfig:
    """Every setting of a multi-process run."""

    placements: tuple[Placement, ...]
    workload: Workload
    pinning: str = "core"
    phases: Phases = DEFAULT_PHASES
    trim: int = 10

    def __post_init__(self) -> None:
        if not self.placements:
            raise ConfigError("no processes to run; give --topology or --processes N")
        if self.pinning not in PINNINGS:
            raise ConfigError(f"unknown --pinning {self.pinning!r}; use one of: {', '.join(PINNINGS)}")
        ph = self.phases
        if ph.measure_ns <= 0:
            raise ConfigError("--time must be positive (seconds of measurement)")
        if ph.warmup_ns < 0 or ph.cooldown_ns < 0:
            raise ConfigError("--warmup and --cooldown must not be negative")
        if ph.barrier_timeout_s <= 0 or ph.setup_timeout_s <= 0:
            raise ConfigError("--barrier-timeout and --setup-timeout must be positive")
        if self.trim < 0:
            raise ConfigError("--trim must not be negative")

    def to_dict(self) -> dict[str, Any]:
        ph = self.phases
        return {
            "processes": len(self.placements),
            "topology": [list(p.cores) for p in self.placements],
            "devices": [p.devices for p in self.placements],
            "pinning": self.pinning,
            "workload": {k: (MASK if k == "access_token" and v else v)
                         for k, v in vars(self.workload).items()},
            "warmup_s": ph.warmup_ns / 1e9, "time_s": ph.measure_ns / 1e9, "cooldown_s": ph.cooldown_ns / 1e9,
            "barrier_timeout_s": ph.barrier_timeout_s, "setup_timeout_s": ph.setup_timeout_s,
            "trim": self.trim,
        }


def _describe(p: Placement, pid: int | None) -> str:
    cores = format_cores(p.cores) if p.cores else "any"
    return f"child {p.rank} (pid {pid}, cores {cores})"


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


@contextlib.contextmanager
def _spawn_executable(prefix: list[str] | None, script_dir: Path, rank: int) -> Iterator[None]:
    """Start the next spawn child as ``PREFIX python ...`` (a one-line wrapper script) when given."""
    if prefix is None:
        yield
        return
    script = script_dir / f"child-{rank}.sh"
    quoted = " ".join(f"'{a}'" for a in [*prefix, sys.executable])
    script.write_text(f'#!/bin/sh\nexec {quoted} "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    old = spawn.get_executable()
    spawn.set_executable(str(script))
    try:
        yield
    finally:
        spawn.set_executable(old)


class Coordinator:
    """The parent side: starts the children, is their barrier, collects results, cleans up."""

    def __init__(self, cfg: MultiprocConfig, out_dir: Path, progress: TextIO) -> None:
        self.cfg = cfg
        self.out_dir = out_dir
        self.err = progress
        self.ctx = mp.get_context("spawn")
        self.results: Any = self.ctx.Queue()
        self.events = {ph: self.ctx.Event() for ph in PHASES}
        self.abort = self.ctx.Event()
        self.procs: list[Any] = []
        self.done: dict[int, dict[str, Any]] = {}
        self.release_ns: dict[str, int] = {}

    def say(self, text: str) -> None:
        print(f"scan multiproc: {text}", file=self.err, flush=True)

    def start(self) -> None:
        cfg = self.cfg
        script_dir = self.out_dir / ".launch"
        prefixes: list[list[str] | None] = [None] * len(cfg.placements)
        if cfg.pinning == "numa":
            prefixes = [numactl_prefix(p.cores) for p in cfg.placements]
            script_dir.mkdir(parents=True, exist_ok=True)
        for p, prefix in zip(cfg.placements, prefixes, strict=True):
            proc = self.ctx.Process(
                target=child_main, name=f"saturate-child-{p.rank}", daemon=True,
                args=(p, cfg.pinning, cfg.workload, cfg.phases, self.results, self.events, self.abort,
                      os.getpid()))
            with _spawn_executable(prefix, script_dir, p.rank):
                proc.start()
            self.procs.append(proc)
            launcher = " ".join(prefix) + " " if prefix else ""
            self.say(f"started {_describe(p, proc.pid)} {launcher}devices {p.devices or 'inherited'}")

    def name(self, rank: int) -> str:
        return _describe(self.cfg.placements[rank], self.procs[rank].pid)

    def _handle(self, msg: tuple[Any, ...], phase: str, arrived: dict[int, Any]) -> None:
        kind, rank = msg[0], int(msg[1])
        if kind == "error":
            raise ChildFailed(f"{self.name(rank)} failed during {_STAGE[phase]}: {msg[3]}", msg[2])
        if kind == "result":
            self.done[rank] = msg[2]
        if kind == "arrive" and msg[2] == phase:
            arrived[rank] = msg[3]

    def _drain(self, phase: str, arrived: dict[int, Any]) -> None:
        while True:
            try:
                msg = self.results.get_nowait()
            except queue.Empty:
                return
            self._handle(msg, phase, arrived)

    def gather(self, phase: str, deadline: float) -> dict[int, Any]:
        """Wait until every child arrived at ``phase`` (or sent its result for "result")."""
        arrived: dict[int, Any] = self.done if phase == "result" else {}
        n = len(self.procs)
        while len(arrived) < n:
            with contextlib.suppress(queue.Empty):
                self._handle(self.results.get(timeout=POLL_S), phase, arrived)
            for rank, proc in enumerate(self.procs):
                if proc.exitcode is None or rank in arrived or (phase != "result" and rank in self.done):
                    continue
                self._drain(phase, arrived)
                if rank not in arrived and (proc.exitcode != 0 or phase != "result"):
                    raise ChildFailed(f"{self.name(rank)} {_exit_text(proc.exitcode)} before the "
                                      f"{phase!r} barrier; the run stopped")
            if len(arrived) < n and time.monotonic() > deadline:
                missing = ", ".join(self.name(r) for r in range(n) if r not in arrived)
                raise ChildFailed(f"{missing} did not reach the {phase!r} barrier in time "
                                  f"(--barrier-timeout {self.cfg.phases.barrier_timeout_s:g} s); "
                                  "the run stopped")
        return arrived

    def release(self, phase: str) -> None:
        self.release_ns[phase] = time.perf_counter_ns()
        self.events[phase].set()

    def run(self) -> list[dict[str, Any]]:
        ph = self.cfg.phases
        self.start()
        self.gather("ready", time.monotonic() + ph.setup_timeout_s)
        self.release("ready")
        self.say(f"all {len(self.procs)} children ready; warm-up {ph.warmup_ns / 1e9:g} s")
        self.gather("warm", time.monotonic() + ph.warmup_ns / 1e9 + ph.barrier_timeout_s)
        self.release("warm")
        self.say(f"measuring {ph.measure_ns / 1e9:g} s")
        self.gather("measured", time.monotonic() + ph.measure_ns / 1e9 + ph.barrier_timeout_s)
        self.release("measured")
        self.say(f"measured; cool-down {ph.cooldown_ns / 1e9:g} s")
        self.gather("result", time.monotonic() + ph.cooldown_ns / 1e9 + ph.barrier_timeout_s)
        for proc in self.procs:
            proc.join(ph.barrier_timeout_s)
        return [self.done[r] for r in range(len(self.procs))]

    def stop(self) -> None:
        """End every child still running: abort event, then SIGTERM, then SIGKILL."""
        self.abort.set()
        limit = time.monotonic() + 2.0
        for proc in self.procs:
            proc.join(max(0.0, limit - time.monotonic()))
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
                with contextlib.suppress(OSError):
                    os.kill(proc.pid, signal.SIGCONT)  # a stopped child acts on SIGTERM only when continued
                proc.join(2.0)
            if proc.is_alive():
                proc.kill()
                proc.join(2.0)


def process_block(p: Placement, raw: dict[str, Any], trim: int, pinning: str) -> dict[str, Any]:
    """One process's JSON block: placement, what the child saw (affinity, env), its statistics."""
    tl: Timeline = raw["timeline"]
    m = ProcessMeasure(p.rank, tl.times_ns, tl.completed, tl.items_per_iteration, tl.in_flight,
                       tl.window_start_ns, tl.window_end_ns)
    block: dict[str, Any] = {
        "rank": p.rank, "pid": raw["pid"], "cores": list(p.cores), "affinity": raw["affinity"],
        "pinned": pinning != "none" and sorted(p.cores) == raw["affinity"],
        "devices": p.devices, "env": raw["env"],
        "warmup_iterations": tl.warmup_iterations, "cooldown_iterations": tl.cooldown_iterations,
        "failed": tl.failed, "errors": tl.errors, **tl.extra,
    }
    return block | process_summary(m, trim)


def run_multiproc(cfg: MultiprocConfig, out_dir: Path, progress: TextIO | None = None) -> dict[str, Any]:
    """Run every child, write ``multiproc.json`` (also on failure) and return the document."""
    err = progress if progress is not None else sys.stderr
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {out_dir} ({exc.strerror}); give a writable --out") from None
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "tool": {"name": "saturate", "version": saturate_version(), "command": "scan multiproc"},
        "env": environment(), "config": cfg.to_dict(), "status": "running", "error": None,
    }
    coord = Coordinator(cfg, out_dir, err)
    try:
        raws = coord.run()
    except ChildFailed as exc:
        doc |= {"status": "failed", "error": str(exc)}
        raise
    finally:
        coord.stop()
        t0 = coord.release_ns.get("ready")
        doc["barriers_s"] = {k: (v - t0) / 1e9 for k, v in coord.release_ns.items()} if t0 else {}
        doc["children"] = [{"rank": i, "pid": p.pid, "exitcode": p.exitcode}
                           for i, p in enumerate(coord.procs)]
        if doc["status"] == "running":
            doc["status"] = "interrupted"
        write_json_atomic(out_dir / JSON_NAME, doc)
    pairs = list(zip(cfg.placements, raws, strict=True))
    blocks = [process_block(p, raw, cfg.trim, cfg.pinning) for p, raw in pairs]
    measures = [ProcessMeasure(p.rank, raw["timeline"].times_ns, raw["timeline"].completed,
                               raw["timeline"].items_per_iteration, raw["timeline"].in_flight,
                               raw["timeline"].window_start_ns, raw["timeline"].window_end_ns)
                for p, raw in pairs]
    doc |= {
        "status": "ok",
        "processes": blocks,
        "aggregate": aggregate(measures, coord.release_ns["warm"], coord.release_ns["measured"], cfg.trim)
        | {"batch_size": measures[0].items_per_iteration},
    }
    write_json_atomic(out_dir / JSON_NAME, doc)
    np.savez(out_dir / TIMES_NAME, **{f"T{m.rank}": np.asarray(m.times_ns, dtype=np.int64) for m in measures})
    return doc


def summary_lines(doc: dict[str, Any]) -> Sequence[str]:
    """The table printed at the end of a run."""
    lines = [f"{'rank':>4} {'cores':>8} {'affinity':>8} {'items/s':>12} {'mean ms':>9} {'median ms':>9} "
             f"{'p99 ms':>9} {'iters':>7}"]
    for b in doc["processes"]:
        lat = b["latency_ms"]
        cores = format_cores(b["cores"]) or "any"
        lines.append(f"{b['rank']:>4} {cores:>8} {format_cores(b['affinity']):>8} "
                     f"{b['items_per_s']:>12.1f} {lat['mean']:>9.3f} {lat['median']:>9.3f} "
                     f"{lat['p99']:>9.3f} "
                     f"{b['iterations']:>7}")
    a = doc["aggregate"]
    lines.append(f"throughput (items/s): own {a['own_items_per_s']:.1f}  "
                 f"effective {a['effective_items_per_s']:.1f}  adjusted {a['adjusted_items_per_s']:.1f}  "
                 f"(synchronised window {a['sync_window_s']:.3f} s)")
    lat = a["latency_ms"]
    lines.append(f"latency (ms, all processes): mean {lat['mean']:.3f}  median {lat['median']:.3f}  "
                 f"std {lat['std']:.3f}  p99 {lat['p99']:.3f}")
    return lines
