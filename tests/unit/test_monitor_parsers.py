"""Parsers on real tool output (tests/fixtures/monitors, sources in its README)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from monitors.amd import amdsmi_values, busy_mean, parse_metric_json
from monitors.nvidia_smi import QUERY_FIELDS, parse_line, reading_from_fields
from monitors.rocm_smi import parse_json
from monitors.schema import COLUMNS, HOST_DEVICE, Reading, combine, fmt
from monitors.source import parse_number
from monitors.triton_metrics import parse_metrics

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "monitors"


def _capture_as_query_line(name: str) -> str:
    """The capture's row projected to our QUERY fields, units stripped: what -lms prints with nounits."""
    with open(FIX / name, encoding="utf-8") as f:
        header, row = list(csv.reader(f, skipinitialspace=True))[:2]
    by_name = {h.split(" [")[0]: v for h, v in zip(header, row, strict=True)}
    cells = [by_name[q] for q in QUERY_FIELDS]
    for unit in (" %", " MiB", " W", " MHz"):
        cells = [c[: -len(unit)] if c.endswith(unit) else c for c in cells]
    return ", ".join(cells) + "\n"


def test_nvidia_smi_h100_load_line() -> None:
    line = _capture_as_query_line("nvidia_smi_h100-80gb-hbm3_590.48.01_load.csv")
    r = reading_from_fields(parse_line(line) or {})
    assert r is not None and r.device == "gpu0"
    assert r.values == {"gpu_util_pct": 100, "gpu_mem_util_pct": 11, "gpu_mem_used_mib": 19818,
                        "gpu_mem_total_mib": 81559, "power_w": 631.95, "temp_c": 59, "sm_clock_mhz": 1980}


def test_nvidia_smi_units_are_stripped_too() -> None:
    with open(FIX / "nvidia_smi_l40s_595.80_idle.csv", encoding="utf-8") as f:
        header, row = list(csv.reader(f, skipinitialspace=True))[:2]
    d = dict(zip(header, row, strict=True))
    assert parse_number(d["utilization.gpu [%]"]) == 100.0
    assert parse_number(d["power.draw [W]"]) == pytest.approx(144.97)
    assert parse_number(d["memory.total [MiB]"]) == 46068.0


def test_nvidia_smi_old_driver_na_and_names_with_spaces() -> None:
    fields = ("power.limit", "power.min_limit", "power.max_limit", "memory.total", "vbios_version",
              "driver_version", "name", "gpu_uuid", "power.draw", "temperature.gpu", "temperature.memory",
              "clocks.current.graphics", "clocks.sm", "clocks.mem", "utilization.gpu", "utilization.memory",
              "fan.speed", "pcie.link.width.current", "pstate")
    line = (FIX / "nvidia_smi_rtx2080_440.64_noheader_nounits.txt").read_text()
    raw = parse_line(line, fields)
    assert raw is not None
    assert raw["name"] == "GeForce RTX 2080"
    assert parse_number(raw["temperature.memory"]) is None  # bare N/A
    assert parse_number(raw["utilization.gpu"]) == 86.0
    assert parse_number(raw["power.draw"]) == pytest.approx(176.98)
    assert parse_line(line) is None  # wrong field count for our query: not mistaken for data


@pytest.mark.parametrize("text", ["[N/A]", "[Not Supported]", "N/A", "",
                                  "[Requested functionality has been deprecated]"])
def test_missing_values(text: str) -> None:
    assert parse_number(text) is None


def test_rocm_smi_mi100_four_cards() -> None:
    rs = parse_json((FIX / "rocm_smi_mi100_rocm602.json").read_text())
    assert [r.device for r in rs] == ["gpu0", "gpu1", "gpu2", "gpu3"]
    v = rs[1].values
    assert v["gpu_util_pct"] == 0 and v["gpu_mem_util_pct"] == 0
    assert v["power_w"] == 44.0 and v["temp_c"] == 55.0 and v["sm_clock_mhz"] == 300.0
    assert v["gpu_mem_total_mib"] == pytest.approx(34342961152 / 2**20)
    assert v["gpu_mem_used_mib"] == pytest.approx(6750208 / 2**20)
    assert "sm_active_pct" not in v


def test_rocm_smi_newer_and_older_spellings() -> None:
    new = parse_json((FIX / "rocm_smi_rx6700xt_rocm612.json").read_text())
    assert new[0].values["power_w"] == 6.0 and new[0].values["temp_c"] == 45.0
    assert new[0].values["gpu_mem_used_mib"] == pytest.approx(1572745216 / 2**20)
    old = parse_json((FIX / "rocm_smi_vega-10-XT.json").read_text())
    assert old[0].values["sm_clock_mhz"] == 1269.0


def test_rocm_smi_no_gpu_and_gpu_filter() -> None:
    assert parse_json("") == []
    rs = parse_json((FIX / "rocm_smi_mi100_rocm602.json").read_text(), gpus=(2,))
    assert [r.device for r in rs] == ["gpu2"]


def test_amd_smi_list_and_gpu_data_shapes() -> None:
    w7700 = parse_metric_json((FIX / "amd_smi_metric_w7700_usage_excerpt.json").read_text())
    assert w7700 == [Reading("gpu0", {"gpu_util_pct": 42, "gpu_mem_util_pct": 1})]
    r9700 = parse_metric_json((FIX / "amd_smi_metric_r9700_excerpt.json").read_text())
    assert r9700 == [Reading("gpu0", {"gpu_util_pct": 100, "gpu_mem_util_pct": 0})]


def test_amd_smi_mi300x_per_xcd_busy_fills_sm_active() -> None:
    rs = parse_metric_json((FIX / "amd_smi_metric_mi300x_dpx_usage_excerpt.json").read_text())
    assert rs[0].values["sm_active_pct"] == 0.0  # 8 real XCD values, "N/A" skipped
    data = json.loads((FIX / "amd_smi_metric_mi300x_dpx_usage_excerpt.json").read_text())
    busy = data["gpu_data"][0]["usage"]["gfx_busy_inst"]
    busy["xcp_0"][0] = {"value": 80, "unit": "%"}
    assert busy_mean(busy) == pytest.approx(10.0)


def test_amdsmi_library_dicts() -> None:
    v = amdsmi_values({"gfx_activity": 73, "umc_activity": 12, "mm_activity": "N/A"},
                      {"average_socket_power": "N/A", "current_socket_power": 512},
                      {"vram_total": 196592, "vram_used": 4096}, 61, {"clk": 2100},
                      {"xcp_stats.gfx_busy_inst": [[70, 80, 0xFFFFFFFF], [90, 100, "N/A"]]})
    assert v == {"gpu_util_pct": 73, "gpu_mem_util_pct": 12, "power_w": 512, "gpu_mem_used_mib": 4096,
                 "gpu_mem_total_mib": 196592, "temp_c": 61, "sm_clock_mhz": 2100, "sm_active_pct": 85.0}


def test_triton_metrics_four_gpus() -> None:
    rs = parse_metrics((FIX / "triton_metrics_4gpu.txt").read_text())
    assert next(r.device for r in rs) == "GPU-71ce41fd-3ac0-afe7-c995-21119f1e984a"
    assert len(rs) == 4
    v = rs[0].values
    assert v["gpu_util_pct"] == 0.0 and v["power_w"] == pytest.approx(58.954)
    assert v["gpu_mem_used_mib"] == pytest.approx(7451181056 / 2**20)
    assert v["gpu_mem_total_mib"] == pytest.approx(16944988160 / 2**20)


def test_triton_cpu_server_has_no_gpu_gauges() -> None:
    text = '# TYPE nv_inference_count counter\nnv_inference_count{model="mlp",version="1"} 3\n'
    assert parse_metrics(text) == []


def test_fmt_and_combine() -> None:
    assert [fmt(None), fmt(math.nan), fmt(3.0), fmt(631.95), fmt(1 / 3)] == ["", "", "3", "631.95", "0.333"]
    host = Reading(HOST_DEVICE, {"cpu_util_pct": 12.5, "ram_util_pct": 40.0})
    gpus = [Reading("gpu0", {"gpu_util_pct": 99}), Reading("gpu1", {"gpu_util_pct": 1})]
    proc = Reading("pid:42", {"cpu_util_pct": 150.0})
    rows = combine([*gpus, host, proc])
    assert [r.device for r in rows] == ["gpu0", "gpu1", "pid:42"]
    assert rows[1].values == {"gpu_util_pct": 1, "cpu_util_pct": 12.5, "ram_util_pct": 40.0}
    assert [r.device for r in combine([host])] == ["host"]
    assert COLUMNS[-1] == "phase" and len(COLUMNS) == 17
    with pytest.raises(ValueError):
        Reading("gpu0", {"bogus": 1.0})
