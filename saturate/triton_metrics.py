"""Triton's ``/metrics`` GPU gauges: their names and the one parser every reader uses.

Parsed with prometheus-client's text parser. Like perf_analyzer (perf_analyzer
src/client_backend/triton/triton_client_backend.h, ``ParseAndStoreMetric``: only series whose sole
label is ``gpu_uuid``), a series with any other label is ignored. Values are Triton's units:
utilization a fraction in [0, 1], power W, memory bytes. A CPU-only server exports none of them.
Readers: ``loadgen.metrics`` (``--collect-metrics``, per window) and ``monitors.triton_metrics``
(the monitor's ``triton`` source, per tick).
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

GPU_UTILIZATION = "nv_gpu_utilization"
GPU_POWER = "nv_gpu_power_usage"
GPU_MEMORY_USED = "nv_gpu_memory_used_bytes"
GPU_MEMORY_TOTAL = "nv_gpu_memory_total_bytes"
GPU_GAUGES = (GPU_UTILIZATION, GPU_POWER, GPU_MEMORY_USED, GPU_MEMORY_TOTAL)


def gpu_gauges(text: str) -> dict[str, dict[str, float]]:
    """``{gauge: {gpu_uuid: value}}`` for the four GPU gauges, UUIDs in order of first appearance."""
    out: dict[str, dict[str, float]] = {m: {} for m in GPU_GAUGES}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in out and set(sample.labels) == {"gpu_uuid"}:
                out[sample.name][sample.labels["gpu_uuid"]] = float(sample.value)
    return out
