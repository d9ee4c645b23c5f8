"""Triton /metrics source: the server's ``nv_gpu_*`` gauges as monitor readings.

Parsed by :func:`saturate.triton_metrics.gpu_gauges` (the parser ``--collect-metrics`` uses too);
utilization is scaled to %, memory to MiB, power stays W. Devices are named by their ``gpu_uuid``
label. A CPU-only server exports no ``nv_gpu_*`` gauges.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request

from monitors.schema import Reading
from saturate.errors import ServerError
from saturate.triton_metrics import (
    GPU_MEMORY_TOTAL,
    GPU_MEMORY_USED,
    GPU_POWER,
    GPU_UTILIZATION,
    gpu_gauges,
)

#: gauge -> (column, scale)
GAUGES: dict[str, tuple[str, float]] = {
    GPU_UTILIZATION: ("gpu_util_pct", 100.0),
    GPU_MEMORY_USED: ("gpu_mem_used_mib", 1 / 2**20),
    GPU_MEMORY_TOTAL: ("gpu_mem_total_mib", 1 / 2**20),
    GPU_POWER: ("power_w", 1.0),
}


def parse_metrics(text: str) -> list[Reading]:
    """Prometheus text exposition -> one Reading per GPU UUID, in order of first appearance."""
    per: dict[str, dict[str, float]] = {}
    for gauge, values in gpu_gauges(text).items():
        column, scale = GAUGES[gauge]
        for uuid, value in values.items():
            per.setdefault(uuid, {})[column] = value * scale
    return [Reading(uuid, values) for uuid, values in per.items()]


class TritonMetricsSource:
    """Polls a Triton server's metrics URL in the background; the tick reads the latest result."""

    name = "triton"

    def __init__(self, url: str, interval_s: float, timeout_s: float = 2.0) -> None:
        self._url = url
        self._interval = interval_s
        self._timeout = timeout_s
        self._latest: list[Reading] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def fetch(self) -> list[Reading]:
        with urllib.request.urlopen(self._url, timeout=self._timeout) as resp:
            return parse_metrics(resp.read().decode("utf-8", errors="replace"))

    def open(self) -> None:
        try:
            first = self.fetch()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ServerError(
                f"cannot read Triton metrics at {self._url} ({exc}); check --metrics-url") from None
        with self._lock:
            self._latest = first
        self._thread = threading.Thread(target=self._loop, name="triton-metrics", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                readings = self.fetch()
            except (urllib.error.URLError, OSError, ValueError):
                continue
            with self._lock:
                self._latest = readings

    def sample(self) -> list[Reading]:
        with self._lock:
            return list(self._latest)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._timeout + 1)
            self._thread = None
