"""The seam between a server scan and whatever measures one level.

A :class:`LevelEngine` measures one concurrency (or request-rate) value at the batch size in the
:class:`~loadgen.config.LoadConfig` it is given and returns a :class:`~loadgen.result.LevelResult`.
:class:`LoadgenEngine` (``--engine saturate``, the default) runs the loadgen library in-process and
keeps one :class:`~loadgen.runner.LoadSession` per batch size (connected, pre-flighted and warmed up
once); another engine (perf_analyzer, ``scans.perf_analyzer.engine``) implements the same protocol, and
:class:`FakeEngine` stands in for both in tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from loadgen.config import LoadConfig, Range
from loadgen.result import LevelResult
from loadgen.runner import LoadSession, WindowProgress
from saturate.errors import ConfigError

#: ``--engine`` choices; another engine adds its name here and a branch in :func:`make_engine`.
ENGINES: tuple[str, ...] = ("saturate", "perf_analyzer")


class LevelEngine(Protocol):
    """Measures one level at a time; ``close`` releases connections and workers."""

    name: str

    async def measure(self, cfg: LoadConfig, value: float) -> LevelResult: ...

    async def close(self) -> None: ...


def _session_key(cfg: LoadConfig) -> LoadConfig:
    """The settings a session depends on: everything but the level range."""
    return dataclasses.replace(cfg, concurrency_range=Range(1, 1, 1), request_rate_range=None)


class LoadgenEngine:
    """The loadgen library in-process; one open :class:`LoadSession` at a time, one per batch size.

    Moving to another batch size closes the previous session (a scan walks the grid batch by batch).
    ``on_window`` gets every window's progress.
    """

    name = "saturate"

    def __init__(self, on_window: Callable[[WindowProgress], None] | None = None) -> None:
        self.on_window = on_window
        self._key: LoadConfig | None = None
        self._session: LoadSession | None = None

    async def _session_for(self, cfg: LoadConfig, value: float) -> LoadSession:
        key = _session_key(cfg)
        if self._session is not None and self._key == key:
            return self._session
        await self.close()
        first = dataclasses.replace(cfg, concurrency_range=Range(value, value, 1), request_rate_range=None) \
            if cfg.mode == "concurrency" else cfg
        session = LoadSession(first, on_window=self.on_window)
        await session.__aenter__()
        self._session, self._key = session, key
        if first.warmup_request_count:
            await session.warmup(value)
        return session

    async def measure(self, cfg: LoadConfig, value: float) -> LevelResult:
        session = await self._session_for(cfg, value)
        return await session.measure(value)

    async def close(self) -> None:
        session, self._session, self._key = self._session, None, None
        if session is not None:
            await session.close()


class FakeEngine:
    """A :class:`LevelEngine` that measures nothing: ``respond(cfg, value)`` gives each level's result
    (or raises, as a real engine does when a level fails), like httpx's ``MockTransport`` behind a client.

    It records every measured level as ``(batch, value)`` in :attr:`calls` and counts :meth:`close`
    calls; ``latency_s`` is how long each measurement takes (the event loop runs meanwhile, so a signal
    that arrives then interrupts the level as it would a real one). For tests of the scans' own logic
    (resume, failed levels, interrupts) in seconds, without a server.
    """

    name = "fake"

    def __init__(self, respond: Callable[[LoadConfig, float], LevelResult], *,
                 latency_s: float = 0.0) -> None:
        self.respond = respond
        self.latency_s = latency_s
        self.calls: list[tuple[int, float]] = []
        self.closed = 0

    async def measure(self, cfg: LoadConfig, value: float) -> LevelResult:
        self.calls.append((cfg.batch_size, value))
        level = self.respond(cfg, value)
        await asyncio.sleep(self.latency_s)
        return level

    async def close(self) -> None:
        self.closed += 1


#: The settings ``--engine-option KEY=VALUE`` takes per engine, and the variables that fill them.
ENGINE_OPTIONS: dict[str, dict[str, str | None]] = {
    "saturate": {},
    "perf_analyzer": {"image": "SATURATE_PA_IMAGE", "gpu": "SATURATE_PA_GPU", "dir": "SATURATE_PA_DIR",
                      "binary": None},
}


def engine_options(
    engine: str, pairs: Sequence[str], environ: Mapping[str, str] | None = None
) -> tuple[tuple[str, str], ...]:
    """``KEY=VALUE`` flags → the engine's options (sorted), variables filling the keys not given.

    The result goes into ``ScanConfig.engine_options`` and so into scan.json's config.
    """
    known = ENGINE_OPTIONS.get(engine, {})
    opts: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in known:
            allowed = ", ".join(f"{k}=" for k in known) or "none"
            raise ConfigError(f"--engine-option {pair!r}: engine {engine} takes {allowed}")
        opts[key] = value
    env = os.environ if environ is None else environ
    for key, var in known.items():
        if key not in opts and var and env.get(var):
            opts[key] = env[var]
    return tuple(sorted(opts.items()))


def make_engine(
    name: str,
    workdir: Path,
    on_window: Callable[[WindowProgress], None] | None = None,
    echo: Callable[[str], None] | None = None,
    options: Mapping[str, str] | None = None,
) -> LevelEngine:
    """The engine called ``name`` (one of :data:`ENGINES`).

    ``workdir`` is the scan's result directory (an engine may keep its own files there), ``on_window``
    gets per-window progress, ``echo`` a line for the log, ``options`` engine-specific settings
    (``ScanConfig.engine_options``).
    """
    if name == "saturate":
        return LoadgenEngine(on_window=on_window)
    if name == "perf_analyzer":  # options image, gpu, binary, dir (see ENGINE_OPTIONS)
        from scans.perf_analyzer.engine import PerfAnalyzerEngine
        return PerfAnalyzerEngine.from_options(workdir, echo, options)
    raise ValueError(f"unknown engine {name!r}")
