"""`--collect-metrics`: a real Triton /metrics page (4 GPUs) through prometheus-client's parser into
GpuSamples, merged per level with perf_analyzer's rules (average util/power, max used, first total)."""

from __future__ import annotations

from conftest import REPO

from loadgen.metrics import sample
from loadgen.result import GpuSummary
from saturate.triton_metrics import GPU_GAUGES, gpu_gauges

TEXT = (REPO / "tests" / "fixtures" / "monitors" / "triton_metrics_4gpu.txt").read_text()


def test_real_page_parses_four_gpus_per_metric() -> None:
    parsed = gpu_gauges(TEXT)
    assert set(parsed) == set(GPU_GAUGES)
    for name in GPU_GAUGES:
        assert len(parsed[name]) == 4, name
        assert all(k.startswith("GPU-") for k in parsed[name])
    total = parsed["nv_gpu_memory_total_bytes"]
    assert all(v > 1e9 for v in total.values())


def test_samples_merge_like_perf_analyzer() -> None:
    parsed = gpu_gauges(TEXT)
    uuid = sorted(parsed["nv_gpu_utilization"])[0]
    a = sample(parsed, 1)
    busy = {k: dict(v) for k, v in parsed.items()}
    busy["nv_gpu_utilization"][uuid] = 0.5
    busy["nv_gpu_power_usage"][uuid] = parsed["nv_gpu_power_usage"][uuid] + 100.0
    busy["nv_gpu_memory_used_bytes"][uuid] = parsed["nv_gpu_memory_used_bytes"][uuid] + 2**30
    busy["nv_gpu_memory_total_bytes"][uuid] = 1.0  # later totals are ignored
    b = sample(busy, 2)
    g = GpuSummary.merge([a, b])
    assert g.util[uuid] == (a.util[uuid] + 0.5) / 2
    assert g.power_w[uuid] == a.power_w[uuid] + 50.0
    assert g.mem_used_bytes[uuid] == a.mem_used_bytes[uuid] + 2**30
    assert g.mem_total_bytes[uuid] == a.mem_total_bytes[uuid]


def test_series_with_other_labels_are_ignored() -> None:
    text = 'nv_gpu_utilization{gpu_uuid="GPU-a",model="x"} 0.9\nnv_gpu_utilization{gpu_uuid="GPU-b"} 0.25\n'
    assert gpu_gauges(text)["nv_gpu_utilization"] == {"GPU-b": 0.25}
