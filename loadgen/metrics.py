"""`--collect-metrics`: poll Triton's Prometheus endpoint and aggregate GPU metrics per window.

Parsed by :func:`saturate.triton_metrics.gpu_gauges` (perf_analyzer's rule for which series count);
per window, utilization (0-1) and power (W) are averaged, memory used is the
maximum and memory total the first sample (perf_analyzer.md §5; `GpuSummary.merge`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time

import aiohttp

from loadgen.result import GpuSample
from saturate.errors import ServerError
from saturate.triton_metrics import (
    GPU_MEMORY_TOTAL,
    GPU_MEMORY_USED,
    GPU_POWER,
    GPU_UTILIZATION,
    gpu_gauges,
)


def sample(parsed: dict[str, dict[str, float]], t_ns: int | None = None) -> GpuSample:
    """One scrape as a :class:`GpuSample` (utilization as a fraction, memory in bytes)."""
    return GpuSample(
        t_ns=time.time_ns() if t_ns is None else t_ns,
        util=dict(parsed[GPU_UTILIZATION]),
        power_w=dict(parsed[GPU_POWER]),
        mem_used_bytes={k: int(v) for k, v in parsed[GPU_MEMORY_USED].items()},
        mem_total_bytes={k: int(v) for k, v in parsed[GPU_MEMORY_TOTAL].items()},
    )


class MetricsPoller:
    """Background scrape every `interval_ms`; `take()` returns the window's samples and resets
    (merged per level by :meth:`loadgen.result.GpuSummary.merge`)."""

    def __init__(self, url: str, interval_ms: int) -> None:
        self.url = url
        self.interval_s = interval_ms / 1000
        self._samples: list[GpuSample] = []
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._warned: set[str] = set()

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=max(2.0, self.interval_s * 2))
        self._session = aiohttp.ClientSession(timeout=timeout)
        try:
            self._samples.append(await self._scrape())
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            await self.stop()
            raise ServerError(f"cannot read metrics at {self.url} ({type(exc).__name__}); "
                              "check --metrics-url or drop --collect-metrics") from None
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def take(self) -> list[GpuSample]:
        samples, self._samples = self._samples, []
        return samples

    async def _scrape(self) -> GpuSample:
        assert self._session is not None
        async with self._session.get(self.url) as resp:
            if resp.status != 200:
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
            parsed = gpu_gauges(await resp.text())
        for name, values in parsed.items():
            if not values and name not in self._warned:
                self._warned.add(name)
                print(f"WARNING: Unable to parse '{name}' metric.", file=sys.stderr)
        return sample(parsed)

    async def _loop(self) -> None:
        while True:
            t0 = time.monotonic()
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, OSError):
                self._samples.append(await self._scrape())
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - t0)))
