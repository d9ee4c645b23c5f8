"""Energy per level on recorded power: nvidia-smi captures (H100 idle/load) written as a monitor CSV with
phases, and Triton's /metrics of a 4-GPU server (tests/fixtures/monitors, sources in its README)."""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

import pytest

from loadgen.energy import energy_block, for_level, triton_power
from loadgen.extras_csv import extra_path, write_extra_csv
from loadgen.metrics import sample
from loadgen.result import ClientStats, GpuSummary, LatencySummary, LevelResult, Throughput
from monitors.nvidia_smi import parse_line, reading_from_fields
from monitors.schema import HOST_DEVICE, Reading
from monitors.writers import TidyWriter
from saturate.triton_metrics import gpu_gauges
from scans.server.scanio import MonitorTail

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "monitors"
H100 = "nvidia_smi_h100-80gb-hbm3_590.48.01_{}.csv"


def _reading(name: str) -> Reading:
    from tests.unit.test_monitor_parsers import _capture_as_query_line

    r = reading_from_fields(parse_line(_capture_as_query_line(name)) or {})
    assert r is not None
    return r


def _level(thr: float, gpu: GpuSummary | None = None) -> LevelResult:
    return LevelResult(mode="concurrency", concurrency=4, request_rate=None, batch_size=1, stable=True,
                       throughput=Throughput(thr, thr), latency=LatencySummary(percentiles_ns={}),
                       client=ClientStats(0, 0), gpu=gpu)


def _monitor_csv(path: Path) -> None:
    idle, load = _reading(H100.format("idle")), _reading(H100.format("load"))
    host = Reading(HOST_DEVICE, {"cpu_util_pct": 50.0})
    buf = io.StringIO()
    w = TidyWriter(buf)
    t = 1_700_000_000_000_000_000
    for i in range(4):
        w.write(t + i, [idle, host], "c1_b1")
    for i in range(4):
        w.write(t + 10 + i, [load, host], "c4_b1")
    w.write(t + 20, [host], "c8_b1")  # a phase without GPU rows
    path.write_text(buf.getvalue())


def test_energy_from_recorded_nvidia_smi_monitor_csv(tmp_path: Path) -> None:
    path = tmp_path / "monitor.csv"
    _monitor_csv(path)
    load_w = _reading(H100.format("load")).values["power_w"]
    assert load_w == pytest.approx(631.95)
    power = MonitorTail(path).level("c4_b1")[1]
    assert power == (pytest.approx(631.95), 4)
    block = for_level(_level(12_000.0), power)
    assert block["source"] == "monitor"
    assert block["infer_per_j"] == pytest.approx(12_000.0 / 631.95)
    assert block["j_per_infer"] == pytest.approx(631.95 / 12_000.0)
    idle = MonitorTail(path).level("c1_b1")[1]
    assert idle is not None and idle[0] is not None and idle[0] < 200
    # no GPU rows, no monitor file: empty, never zero
    assert MonitorTail(path).level("c8_b1")[1] == (None, 0)
    assert MonitorTail(tmp_path / "none.csv").level("c4_b1") == (None, None)
    empty = for_level(_level(12_000.0), MonitorTail(path).level("c8_b1")[1])
    assert empty == {"power_w": None, "infer_per_j": None, "j_per_infer": None, "source": None, "samples": 0}


def test_energy_from_triton_metrics_sums_the_gpus() -> None:
    text = (FIX / "triton_metrics_4gpu.txt").read_text()
    gpu = GpuSummary.merge([sample(gpu_gauges(text), 0)])
    assert triton_power(gpu) == pytest.approx(58.954 + 59.436 + 60.320 + 58.993)
    block = for_level(_level(500.0, gpu))
    assert block["source"] == "triton_metrics" and block["infer_per_j"] == pytest.approx(500.0 / 237.703)
    assert for_level(_level(500.0))["power_w"] is None
    assert energy_block(0.0, 100.0, "monitor")["infer_per_j"] is None
    assert energy_block(10.0, 0.0, "monitor")["power_w"] is None


def test_extra_csv_leaves_missing_power_empty(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with_power = _level(1000.0)
    with_power = dataclasses.replace(with_power, extras={"energy": energy_block(1000.0, 250.0, "monitor")})
    out = write_extra_csv(path, [with_power, _level(900.0)])
    assert out == extra_path(path) == tmp_path / "results.extra.csv"
    rows = list(csv.DictReader(out.open()))
    assert rows[0]["power_w"] == "250" and rows[0]["infer_per_j"] == "4"
    assert rows[1]["power_w"] == "" and rows[1]["j_per_infer"] == "" and rows[1]["infer_per_s"] == "900"
