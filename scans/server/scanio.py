"""A server scan's result directory: the run JSON (read for ``--resume``, rewritten after every level),
one perf_analyzer-style CSV per batch size, and the per-level utilisation from the rows the monitor
CSV gained during the level (:class:`MonitorTail`).

    OUT/scan.json     saturate.run/1; levels in grid order; ``analysis``: knee and verdict evidence
    OUT/b16.csv       perf_analyzer's CSV for batch 16 (stable levels, as perf_analyzer records them)
    OUT/b16.extra.csv repeats' intervals and energy per level (loadgen.extras_csv)
    OUT/monitor.csv   the monitor's tidy CSV; its ``phase`` column is the level name (``c4_b16``)
    OUT/scan.log      progress, level results, errors
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from loadgen.csvfmt import CsvOptions
from loadgen.energy import phase_power
from loadgen.exporters import CsvExporter
from loadgen.result import SCHEMA, LevelResult, RunResult, write_json_atomic
from loadgen.verdict import Usage
from monitors.schema import HOST_DEVICE, PROC_PREFIX
from monitors.summarize import Series, series_of
from saturate.atomic import write_atomic
from saturate.errors import ConfigError
from scans.analysis import analysis, level_name

JSON_NAME = "scan.json"
MONITOR_NAME = "monitor.csv"
LOG_NAME = "scan.log"


def csv_name(batch_size: int) -> str:
    return f"b{batch_size}.csv"


def name_of(level: LevelResult) -> str:
    return level_name(int(level.concurrency or 0), int(level.batch_size or 1))


def read_previous(out: Path) -> tuple[dict[str, Any], list[LevelResult], dict[str, dict[str, Any]]] | None:
    """``(config, levels, verdicts)`` of ``OUT/scan.json``, None when absent; another schema → ConfigError."""
    path = out / JSON_NAME
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not readable JSON ({type(exc).__name__}); "
                          "choose another --out or delete the file") from None
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if schema != SCHEMA:
        raise ConfigError(f"{path} has schema {schema!r}, not {SCHEMA}; "
                          "this is not a saturate scan directory, choose another --out")
    try:
        run = RunResult.from_dict(doc)
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path} does not parse as a {SCHEMA} run ({exc}); choose another --out") from None
    verdicts = dict((doc.get("analysis") or {}).get("verdicts") or {})
    return run.config, run.levels, verdicts


def write_outputs(out: Path, run: RunResult, verdicts: Mapping[str, dict[str, Any]],
                  budget_ms: float | None, percentile: int | None) -> None:
    """Rewrite the run JSON (with ``analysis``) and every batch size's CSV."""
    doc = run.to_dict()
    for raw in doc["levels"]:
        v = verdicts.get(level_name(int(raw["concurrency"] or 0), int(raw["batch_size"] or 1)))
        if v is not None:
            raw["verdict"]["evidence"] = v.get("evidence", {})
    doc["analysis"] = analysis(run.levels, budget_ms, verdicts)
    write_json_atomic(out / JSON_NAME, doc)
    # one header for every batch: a batch whose levels all failed still gets the server columns when
    # the run had server statistics (or when nothing was measured at all: Triton has them)
    measured = [lv for lv in run.levels if lv.stability != "interrupted" or lv.server is not None]
    server_stats = any(lv.server is not None for lv in run.levels) or not measured
    for batch in sorted({int(lv.batch_size or 1) for lv in run.levels}):
        levels = [lv for lv in run.levels if lv.batch_size == batch]
        opts = CsvOptions(mode="concurrency", percentile=percentile, server_stats=server_stats)
        CsvExporter(out / csv_name(batch), opts).export(RunResult(levels=levels))


def _mean(xs: Iterable[float]) -> float | None:
    vals = [x for x in xs if not math.isnan(x)]
    return sum(vals) / len(vals) if vals else None


def phase_usage(series: Series, phase: str) -> Usage | None:
    """Means over the monitor rows of one phase: GPU utilisation and SM activity, host CPU."""
    idx = [i for i, p in enumerate(series.phase) if p == phase]
    if not idx:
        return None
    gpu = [i for i in idx if series.device[i] != HOST_DEVICE and not series.device[i].startswith(PROC_PREFIX)]
    host = [i for i in idx if series.device[i] == HOST_DEVICE]
    procs = [i for i in idx if series.device[i].startswith(PROC_PREFIX)]
    util = [series.values["gpu_util_pct"][i] for i in gpu]
    finite = [u for u in util if not math.isnan(u)]
    return Usage(
        gpu_util_pct=_mean(util),
        gpu_util_max_pct=max(finite) if finite else None,
        sm_active_pct=_mean(series.values["sm_active_pct"][i] for i in gpu),
        gpu_mem_used_mib=_mean(series.values["gpu_mem_used_mib"][i] for i in gpu),
        host_cpu_pct=_mean(series.values["cpu_util_pct"][i] for i in host),
        process_cpu_pct=_mean(series.values["cpu_util_pct"][i] for i in procs),
        samples=len({series.t[i] for i in idx}),
    )


class MonitorTail:
    """The monitor CSV the scan is writing, read incrementally: each :meth:`level` call parses only the
    complete rows appended since the last one, so a scan's cost per level does not grow with its length.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._header: str | None = None

    def _new_rows(self) -> Series | None:
        if not self.path.is_file():
            return None
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return None
        end = data.rfind(b"\n") + 1  # a row being written waits for the next call
        self._offset += end
        lines = data[:end].decode("utf-8", "replace").splitlines()
        if self._header is None:
            if not lines:
                return None
            self._header, lines = lines[0], lines[1:]
        try:
            return series_of(list(csv.reader([self._header, *lines], skipinitialspace=True)), str(self.path))
        except (ConfigError, ValueError, IndexError):
            return None

    def level(self, phase: str) -> tuple[Usage | None, tuple[float | None, int] | None]:
        """(usage, GPU power) of ``phase`` from the rows written since the last call."""
        s = self._new_rows()
        if s is None:
            return None, None
        power = phase_power(s.device, s.phase, s.values["power_w"], phase,
                            lambda d: d != HOST_DEVICE and not d.startswith(PROC_PREFIX))
        return phase_usage(s, phase), power


def append_monitor(previous: Path, current: Path) -> None:
    """Put the rows of ``previous`` (an earlier run's monitor CSV) before those of ``current``."""
    if not previous.is_file():
        return
    old = previous.read_text()
    new_lines = current.read_text().splitlines(keepends=True) if current.is_file() else []
    write_atomic(current, old + "".join(new_lines[1:]))
    previous.unlink()
