"""Real-hardware checks: NVML (and GPM on Hopper+) on an NVIDIA GPU. Skipped without one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from monitors.nvml import NvmlSource
from saturate.errors import ToolMissingError

pytestmark = pytest.mark.gpu


@pytest.fixture
def nvml() -> NvmlSource:
    src = NvmlSource()
    try:
        src.open()
    except ToolMissingError as exc:
        pytest.skip(f"needs an NVIDIA GPU with its driver (NVML): {exc}")
    return src


def test_nvml_reads_every_gpu(nvml: NvmlSource) -> None:
    try:
        rows = nvml.sample()
        assert rows and all(r.device.startswith("gpu") for r in rows)
        v = rows[0].values
        assert 0 <= v["gpu_util_pct"] <= 100 and v["gpu_mem_total_mib"] > 1000 and v["power_w"] > 0
    finally:
        nvml.close()


def test_gpm_fills_saturation_columns_on_hopper(nvml: NvmlSource, tmp_path: Path) -> None:
    try:
        if not nvml.gpm_devices:
            pytest.skip("needs a GPU with NVML GPM support (Hopper or newer)")
        time.sleep(0.2)
        v = nvml.sample()[nvml.gpm_devices[0]].values
        assert {"sm_active_pct", "sm_occupancy_pct", "tensor_active_pct"} <= set(v)
        assert all(0 <= v[k] <= 100 for k in ("sm_active_pct", "sm_occupancy_pct", "tensor_active_pct"))
    finally:
        nvml.close()
