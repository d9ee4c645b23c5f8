"""What a result directory holds, read into plain series for the report.

- ``*.json`` with ``"schema": "saturate.run/1"``: direct levels (``mode == "direct"``) become a
  :class:`DirectSeries`; server levels (concurrency / request rate) a :class:`ServerSeries` per batch.
  A JSON with another ``schema`` is a :class:`ConfigError` (the directory is not ours); a JSON without
  one (e.g. perf_analyzer's profile export) is skipped with a note.
- ``*.csv`` in perf_analyzer's format (theirs or ours): one :class:`ServerSeries` per file, read by
  :func:`read_perf_csv`. The batch size comes from the file name (``batch_16.csv``, ``bs16``, ``b16``)
  or perf_analyzer's console output beside it (``name.txt``: ``Batch size: 4``). CSVs are skipped when a
  run JSON in the directory already holds server levels (a ``scan server`` writes both).
- monitor CSVs (``saturate monitor``, tidy or seed format) become a :class:`MonitorSeries` for the
  utilization timeline; the phases in them are the levels of a server scan.
- anything else (our ``direct.csv``, logs) is listed as skipped with the reason.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadgen.csvfmt import read_csv
from loadgen.result import SCHEMA, LevelResult
from monitors.summarize import Series
from monitors.summarize import load as load_monitor
from saturate.errors import ConfigError


@dataclass(frozen=True)
class ServerPoint:
    """One server load level, in µs and infer/s (None where the source lacks the value)."""

    load: float  # concurrency or request rate
    infer_per_s: float
    p50_us: float | None
    p95_us: float | None
    p99_us: float | None
    avg_us: float | None
    stable: bool
    queue_us: float | None = None
    compute_input_us: float | None = None
    compute_infer_us: float | None = None
    compute_output_us: float | None = None
    network_us: float | None = None
    client_send_us: float | None = None
    client_recv_us: float | None = None
    gpu_util: float | None = None  # fraction 0-1, mean over GPUs
    saturated: str | None = None  # the run JSON's verdict (None for perf_analyzer CSVs)
    client_own_us: float | None = None  # the client's own share of a latency (loadgen.looplag)

    @property
    def has_breakdown(self) -> bool:
        return self.queue_us is not None and self.compute_infer_us is not None


@dataclass(frozen=True)
class ServerSeries:
    label: str
    source: str
    mode: str  # "concurrency" or "request_rate"
    batch_size: int | None
    model: str | None
    points: list[ServerPoint]


@dataclass(frozen=True)
class DirectSeries:
    label: str
    source: str
    model: str | None
    levels: list[dict[str, Any]]  # the run JSON's level dicts (each with a ``direct`` block)

    def ok_levels(self) -> list[dict[str, Any]]:
        return [lv for lv in self.levels if (lv.get("direct") or {}).get("status") == "ok"]


@dataclass(frozen=True)
class MonitorSeries:
    """A monitor CSV read column-wise (time in s from its first row; phases are level names)."""

    source: str
    series: Series


@dataclass
class ReportData:
    direct: list[DirectSeries] = field(default_factory=list)
    server: list[ServerSeries] = field(default_factory=list)
    envs: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name → env block
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    used: list[str] = field(default_factory=list)
    monitors: list[MonitorSeries] = field(default_factory=list)
    analyses: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name → run JSON's analysis
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)


#: saturate's own JSON that holds no levels: the report's summary, a ramp (loadgen.schedules), a
#: comparison (scans.compare; drawn by scans.report.extras).
OTHER_SCHEMAS = frozenset({"saturate.summary/1", "saturate.ramp/1", "saturate.compare/1"})
_BATCH_IN_NAME = re.compile(r"(?:^|[_\-.])(?:batch(?:size)?|bs|b)[_\-=]?(\d+)(?![0-9])", re.IGNORECASE)
_BATCH_IN_TXT = re.compile(r"^\s*Batch size:\s*(\d+)\s*$", re.MULTILINE)


def read_perf_csv(path: Path) -> list[LevelResult]:
    """Levels of a perf_analyzer-format CSV (theirs or ours); the one place that parses them."""
    return read_csv(path).levels


def batch_of_csv(path: Path) -> int | None:
    """The batch size of a perf_analyzer CSV from its name, else from the console ``.txt`` beside it."""
    m = _BATCH_IN_NAME.search(path.stem)
    if m:
        return int(m.group(1))
    txt = path.with_suffix(".txt")
    if txt.is_file():
        found = _BATCH_IN_TXT.search(txt.read_text(errors="replace"))
        if found:
            return int(found.group(1))
    return None


def server_point(lv: LevelResult) -> ServerPoint:
    """A :class:`ServerPoint` of a loadgen level (from a run JSON or a CSV)."""

    def us(ns: int | None) -> float | None:
        return None if ns is None else ns / 1000.0

    pct = lv.latency.percentiles_ns
    srv = lv.server
    util = None
    if lv.gpu is not None and lv.gpu.util:
        util = sum(lv.gpu.util.values()) / len(lv.gpu.util)
    return ServerPoint(
        load=lv.value,
        infer_per_s=lv.throughput.infer_per_s,
        p50_us=us(pct.get(50)),
        p95_us=us(pct.get(95)),
        p99_us=us(pct.get(99)),
        avg_us=us(lv.latency.avg_ns),
        stable=lv.stable,
        queue_us=None if srv is None else us(srv.queue_ns),
        compute_input_us=None if srv is None else us(srv.compute_input_ns),
        compute_infer_us=None if srv is None else us(srv.compute_infer_ns),
        compute_output_us=None if srv is None else us(srv.compute_output_ns),
        network_us=None if srv is None else us(srv.network_server_ns),
        client_send_us=us(lv.client.send_ns),
        client_recv_us=us(lv.client.recv_ns),
        gpu_util=util,
        client_own_us=lv.client.own_latency_ns and lv.client.own_latency_ns / 1000.0,
    )


def _read_json(path: Path, data: ReportData) -> bool:
    """Add a run JSON's series; returns whether it had server levels."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        data.skipped.append((path.name, f"not readable JSON ({type(exc).__name__})"))
        return False
    if not isinstance(doc, dict) or "schema" not in doc:
        data.skipped.append((path.name, "JSON without a 'schema' key (not a saturate run)"))
        return False
    if doc["schema"] in OTHER_SCHEMAS:
        data.skipped.append((path.name, f"{doc['schema']} (written by saturate, not a run)"))
        return False
    if doc["schema"] != SCHEMA:
        raise ConfigError(
            f"{path} has schema {doc['schema']!r}; saturate report reads {SCHEMA} run JSON "
            f"and perf_analyzer CSVs, so point it at a saturate result directory"
        )
    config = dict(doc.get("config") or {})
    data.envs[path.name] = dict(doc.get("env") or {})
    data.configs[path.name] = config
    if isinstance(doc.get("analysis"), dict):
        data.analyses[path.name] = doc["analysis"]
    data.used.append(path.name)
    model = config.get("model")
    levels = list(doc.get("levels") or [])
    direct = [lv for lv in levels if lv.get("mode") == "direct"]
    if direct:
        label = " · ".join(str(x) for x in (model, config.get("backend"), config.get("device"),
                                            config.get("mode")) if x)
        data.direct.append(DirectSeries(label or path.stem, path.name, model, direct))
    by_key: dict[tuple[str, int | None], list[ServerPoint]] = {}
    for i, raw in enumerate(levels):
        if raw.get("mode") not in ("concurrency", "request_rate"):
            continue
        try:
            lv = LevelResult.from_dict(raw)
        except (KeyError, ValueError, TypeError) as exc:
            data.skipped.append((path.name, f"level {i} does not parse ({type(exc).__name__}: {exc})"))
            continue
        point = dataclasses.replace(server_point(lv), saturated=lv.verdict.saturated)
        by_key.setdefault((lv.mode, lv.batch_size), []).append(point)
    for (mode, batch), points in sorted(by_key.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        label = f"{model or path.stem} b={batch if batch is not None else '?'}"
        data.server.append(ServerSeries(label, path.name, mode, batch, model, points))
    return bool(by_key)


def _csv_kind(path: Path) -> str:
    try:
        with path.open(errors="replace") as f:
            first = f.readline()
    except OSError:
        return "unreadable"
    if first.startswith(("Concurrency,", "Request Rate,")):
        return "perf_analyzer"
    if first.startswith("batch_size,mode,in_flight"):
        return "direct"
    if first.startswith("timestamp,unix_ns") or first.startswith("Timestamp,"):
        return "monitor"
    return "unknown"


def load_directory(root: Path) -> ReportData:
    """Everything the report can use in ``root`` (not recursive); nothing usable is a ConfigError."""
    if not root.is_dir():
        raise ConfigError(f"{root} is not a directory; give a result directory (e.g. a scan's --out)")
    data = ReportData()
    has_server_json = False
    for path in sorted(root.glob("*.json")):
        has_server_json |= _read_json(path, data)
    for path in sorted(root.glob("*.csv")):
        kind = _csv_kind(path)
        if kind == "monitor":
            try:
                data.monitors.append(MonitorSeries(path.name, load_monitor(str(path))))
                data.used.append(path.name)
            except (ConfigError, ValueError, IndexError) as exc:
                data.skipped.append((path.name, f"monitor CSV that does not parse ({exc})"))
            continue
        if kind != "perf_analyzer":
            why = "direct-scan CSV (its run JSON is read instead)" if kind == "direct" else "not a known CSV"
            data.skipped.append((path.name, why))
            continue
        if has_server_json:
            data.skipped.append((path.name, "same levels as the run JSON in this directory"))
            continue
        try:
            levels = read_perf_csv(path)
        except (ValueError, KeyError) as exc:
            data.skipped.append((path.name, f"perf_analyzer CSV that does not parse ({exc})"))
            continue
        if not levels:
            data.skipped.append((path.name, "perf_analyzer CSV without data rows"))
            continue
        batch = batch_of_csv(path)
        mode = levels[0].mode
        points = sorted((server_point(lv) for lv in levels), key=lambda p: p.load)
        label = f"{path.stem} b={batch if batch is not None else '?'}"
        data.server.append(ServerSeries(label, path.name, mode, batch, None, points))
        data.used.append(path.name)
    if not data.direct and not data.server and not data.monitors:
        raise ConfigError(
            f"{root} holds no {SCHEMA} run JSON and no perf_analyzer CSV; "
            f"run 'saturate scan direct --out {root}' or point at a result directory"
        )
    return data


@dataclass(frozen=True)
class SaturationRow:
    """Best server throughput at a batch size against the direct-inference ceiling there."""

    batch_size: int
    server_label: str
    direct_label: str
    server_best: float
    best_load: float
    direct_ceiling: float
    direct_sem: float

    @property
    def ratio(self) -> float:
        return self.server_best / self.direct_ceiling if self.direct_ceiling > 0 else float("nan")


def best_point(series: ServerSeries) -> ServerPoint | None:
    """The highest-throughput stable point (any point when none is stable)."""
    pool = [p for p in series.points if p.stable] or series.points
    return max(pool, key=lambda p: p.infer_per_s) if pool else None


def saturation_rows(data: ReportData) -> list[SaturationRow]:
    """Pairs of server series and direct scans at the same batch size (and model, where both say)."""
    rows: list[SaturationRow] = []
    for srv in data.server:
        best = best_point(srv)
        if srv.batch_size is None or best is None:
            continue
        for d in data.direct:
            if srv.model is not None and d.model is not None and srv.model != d.model:
                continue
            for lv in d.ok_levels():
                if lv.get("batch_size") == srv.batch_size:
                    block = lv["direct"]
                    rows.append(SaturationRow(
                        batch_size=srv.batch_size, server_label=srv.label, direct_label=d.label,
                        server_best=best.infer_per_s, best_load=best.load,
                        direct_ceiling=float(block["items_per_s"]),
                        direct_sem=float(block["items_per_s_sem"]),
                    ))
    return sorted(rows, key=lambda r: (r.batch_size, r.server_label))
