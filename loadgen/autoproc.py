"""`--processes auto`: as many client processes as the client verdict needs.

A level starts on the current number of processes (1 at first). When its verdict says the client,
not the server, limited it (``verdict.saturated == "client"``: a core per process nearly busy, or
sends late or dropped), the level is measured again with one process more, up to the cores this
process may run on (its CPU affinity) and, at a concurrency, at most one process per request in
flight. The count reached carries on to the next level; each step is stated on stderr and every
level records its count in ``client.processes``.
"""

from __future__ import annotations

import os

from loadgen.result import LevelResult


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask), else the CPU count."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def more_processes(level: LevelResult, current: int, cores: int) -> int | None:
    """The process count to measure `level` again with, or None to keep it (see module doc)."""
    if level.verdict.saturated != "client" or level.stability == "interrupted" or current >= cores:
        return None
    if level.mode == "concurrency" and (level.concurrency or 0) < current + 1:
        return None
    return current + 1


def step_message(level: LevelResult, current: int, nxt: int) -> str:
    what = (f"concurrency {level.concurrency}" if level.mode == "concurrency"
            else f"rate {level.request_rate:g}/s")
    return (f"saturate load: --processes auto: the client limited {what} with {current} process"
            f"{'es' if current > 1 else ''}; measuring it again with {nxt}")


def start_message(cores: int) -> str:
    return f"saturate load: --processes auto: starting with 1 process, adding one while the client " \
           f"limits a level, up to {cores} (usable cores)"
