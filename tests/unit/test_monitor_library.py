"""The Monitor library API on this machine (host source), phases, writers, summarize."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import pytest

from monitors import COLUMNS, SEED_COLUMNS, Monitor, MonitorConfig
from monitors.summarize import format_table, load, phase_spans, plot, summary
from saturate.errors import ConfigError, ToolMissingError


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_library_phases_and_host_rows(tmp_path: Path) -> None:
    out = tmp_path / "m.csv"
    with Monitor(MonitorConfig(out=str(out), interval_s=0.05, sources=("host",))) as m:
        m.phase("b=64 c=8")
        time.sleep(0.3)
        m.phase("b=128, c=16")  # a comma in a label stays one CSV cell
        time.sleep(0.3)
    rows = _rows(out)
    assert list(rows[0]) == list(COLUMNS)
    assert len(rows) >= 8 and m.stats.rows == len(rows)
    assert all(r["device"] == "host" and r["cpu_util_pct"] != "" and r["ram_util_pct"] != "" for r in rows)
    assert all(r["gpu_util_pct"] == "" and r["sm_active_pct"] == "" for r in rows)
    phases = [r["phase"] for r in rows]
    assert "b=64 c=8" in phases and phases[-1] == "b=128, c=16"
    ns = [int(r["unix_ns"]) for r in rows]
    assert ns == sorted(ns)


def test_phase_file_and_pid_rows(tmp_path: Path) -> None:
    out, pf = tmp_path / "m.csv", tmp_path / "phase"
    pf.write_text("warmup\n")
    cfg = MonitorConfig(out=str(out), interval_s=0.05, sources=("host",), phase_file=str(pf),
                        pids=(os.getpid(),))
    with Monitor(cfg):
        time.sleep(0.25)
        pf.write_text("level b=4\nignored second line\n")
        time.sleep(0.25)
    rows = _rows(out)
    host = [r for r in rows if r["device"] == "host"]
    mine = [r for r in rows if r["device"] == f"pid:{os.getpid()}"]
    assert len(mine) == len(host) >= 6
    assert float(mine[-1]["ram_util_pct"]) > 0
    assert host[0]["phase"] == "warmup" and host[-1]["phase"] == "level b=4"


def test_seed_format(tmp_path: Path) -> None:
    out = tmp_path / "seed.csv"
    with Monitor(MonitorConfig(out=str(out), interval_s=0.05, format="seed")):
        time.sleep(0.2)
    lines = out.read_text().splitlines()
    assert lines[0] == "Timestamp, GPU Util (%), GPU Mem (%), CPU Util (%), RAM Util (%)"
    assert lines[0].split(", ") == list(SEED_COLUMNS)
    stamp, gpu, mem, _cpu, ram = lines[1].split(", ")
    assert len(stamp) == len("2025-01-01 12:00:00.1") and gpu == "" and mem == "" and float(ram) > 0


@pytest.mark.parametrize("kw", [{"interval_s": 0}, {"interval_s": 0.01}, {"interval_s": -1},
                                {"sources": ("cuda",)}, {"duration_s": 0}, {"format": "json"},
                                {"sources": ("triton",)}, {"gpus": (-1,)}])
def test_bad_config(kw: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as e:
        MonitorConfig(**kw)  # type: ignore[arg-type]
    assert "\n" not in str(e.value)


def test_missing_source_and_unwritable_out(tmp_path: Path) -> None:
    with pytest.raises(ToolMissingError, match="--source nvml is not available"):
        Monitor(MonitorConfig(out=str(tmp_path / "x.csv"), sources=("nvml",))).start()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot write --out"):
        Monitor(MonitorConfig(out=str(blocker / "x.csv"))).start()


def test_summarize_table_and_png(tmp_path: Path) -> None:
    out = tmp_path / "m.csv"
    with Monitor(MonitorConfig(out=str(out), interval_s=0.05, sources=("host",))) as m:
        m.phase("A")
        time.sleep(0.2)
        m.phase("B")
        time.sleep(0.2)
    s = load(str(out))
    entries = summary(s)
    assert [e["phase"] for e in entries][-2:] == ["A", "B"]
    table = format_table(entries)
    assert "cpu_util mean/max" in table and "\nB " in table
    assert [label for _, _, label in phase_spans(s)][-2:] == ["A", "B"]
    png = tmp_path / "m.png"
    plot(s, str(png), "test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
