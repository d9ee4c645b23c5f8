"""Triton /metrics source: the server's ``nv_gpu_*`` gauges, parsed with prometheus-client.

``nv_gpu_utilization`` is a fraction in [0, 1] (scaled to %), memory gauges are bytes, power is W.
Devices are named by their ``gpu_uuid`` label. A CPU-only server exports no ``nv_gpu_*`` gauges.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from monitors.schema import Reading
from saturate.errors import ServerError

#: gauge -> (column, scale)
GAUGES: dict[str, tuple[str, float]] = {
    "nv_gpu_utilization": ("gpu_util_pct", 100.0),
    "nv_gpu_memory_used_bytes": ("gpu_mem_used_mib", 1 / 2**20),
    "nv_gpu_memory_total_bytes": ("gpu_mem_total_mib", 1 / 2**20),
    "nv_gpu_power_usage": ("power_w", 1.0),
}


def parse_metrics(text: str) -> list[Reading]:
    """Prometheus text exposition -> one Reading per GPU UUID, in order of first appearance."""
    per: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            spec = GAUGES.get(s.name)
            uuid = s.labels.get("gpu_uuid")
            if spec is None or uuid is None:
                continue
            column, scale = spec
            per.setdefault(uuid, {})[column] = s.value * scale
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
