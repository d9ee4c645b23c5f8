"""The monitor CSV schema and the one value type every source returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: Metric columns, in CSV order. A source fills those it knows; the rest stay empty.
METRICS: tuple[str, ...] = (
    "gpu_util_pct",
    "gpu_mem_util_pct",
    "gpu_mem_used_mib",
    "gpu_mem_total_mib",
    "power_w",
    "temp_c",
    "sm_clock_mhz",
    "sm_active_pct",
    "sm_occupancy_pct",
    "tensor_active_pct",
    "cpu_util_pct",
    "ram_util_pct",
)

#: The tidy long format: one row per sample per device.
COLUMNS: tuple[str, ...] = ("timestamp", "unix_ns", "host", "device", *METRICS, "phase")

#: ``--format seed``: the five columns of the saturation studies' bash loop.
SEED_COLUMNS: tuple[str, ...] = ("Timestamp", "GPU Util (%)", "GPU Mem (%)", "CPU Util (%)", "RAM Util (%)")

HOST_DEVICE = "host"
PROC_PREFIX = "pid:"


@dataclass(frozen=True)
class Reading:
    """One device's values at one sample. ``values`` keys are a subset of :data:`METRICS`."""

    device: str
    values: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.values) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metric(s) {sorted(unknown)}")

    @property
    def is_gpu(self) -> bool:
        return self.device != HOST_DEVICE and not self.device.startswith(PROC_PREFIX)


def fmt(value: float | None) -> str:
    """A CSV cell: empty for missing/NaN, integers without a fraction, else up to 3 decimals."""
    if value is None or math.isnan(value):
        return ""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def combine(readings: list[Reading]) -> list[Reading]:
    """Rows for one tick: each GPU row carries the host's CPU/RAM; host-only when no GPU; then PIDs."""
    host = next((r for r in readings if r.device == HOST_DEVICE), None)
    gpus = [r for r in readings if r.is_gpu]
    procs = [r for r in readings if r.device.startswith(PROC_PREFIX)]
    shared = {k: v for k, v in (host.values if host else {}).items() if k in ("cpu_util_pct", "ram_util_pct")}
    rows = [Reading(g.device, {**g.values, **shared}) for g in gpus]
    if not rows and host is not None:
        rows.append(host)
    return rows + procs
