"""Energy per level: mean GPU power over the level's windows, inferences per joule, joules per inference.

Power comes from the monitor's samples of the level's phase (NVML / nvidia-smi / amdsmi / rocm-smi
``power_w`` column, ``monitors``), or else from Triton's ``nv_gpu_power_usage`` scraped during the
level (``--collect-metrics``, ``loadgen.metrics``). Each GPU's samples are averaged and the GPUs'
means summed: the board power of every GPU the server can use, idle draw included (what a
deployment pays for, as MLPerf Power measures at the system level). ``infer_per_j`` =
infer_per_s / power_w and ``j_per_infer`` = power_w / infer_per_s. No power sample (a CPU run, a
tool without power readings) leaves all three None: empty in the CSV, null in the JSON, never zero.

JSON per level, ``energy``: ``{"power_w", "infer_per_j", "j_per_infer", "source", "samples"}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from loadgen.summaries import GpuSummary


def energy_block(
    infer_per_s: float, power_w: float | None, source: str | None, samples: int = 0
) -> dict[str, Any]:
    """The ``energy`` block; None everywhere unless a positive, finite power was measured."""
    if power_w is None or not math.isfinite(power_w) or power_w <= 0:
        return {"power_w": None, "infer_per_j": None, "j_per_infer": None, "source": None, "samples": 0}
    ips = float(infer_per_s)
    return {"power_w": power_w, "infer_per_j": ips / power_w if ips > 0 else None,
            "j_per_infer": power_w / ips if ips > 0 else None, "source": source, "samples": samples}


def triton_power(gpu: GpuSummary | None) -> float | None:
    """Summed mean power of the GPUs in a level's Triton metrics (None when it has none)."""
    if gpu is None:
        return None
    vals = [v for v in gpu.power_w.values() if math.isfinite(v)]
    return sum(vals) if vals else None


def phase_power(devices: Sequence[str], phases: Sequence[str], power: Sequence[float], phase: str,
                is_gpu: Callable[[str], bool]) -> tuple[float | None, int]:
    """(summed per-GPU mean power over the rows of ``phase``, rows used) from a monitor's columns."""
    per: dict[str, list[float]] = {}
    for d, ph, w in zip(devices, phases, power, strict=True):
        if ph == phase and is_gpu(d) and math.isfinite(w):
            per.setdefault(d, []).append(w)
    if not per:
        return None, 0
    return sum(sum(v) / len(v) for v in per.values()), sum(len(v) for v in per.values())


def for_level(level: Any, monitor_power: tuple[float | None, int] | None = None) -> dict[str, Any]:
    """A level's block: the monitor's power when it has some, else Triton's metrics."""
    if monitor_power is not None and monitor_power[0] is not None:
        return energy_block(level.throughput.infer_per_s, monitor_power[0], "monitor", monitor_power[1])
    power = triton_power(level.gpu)
    return energy_block(level.throughput.infer_per_s, power, "triton_metrics" if power is not None else None)
