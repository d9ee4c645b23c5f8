"""perf_analyzer's CSV (`-f FILE`): one writer and one reader for theirs and ours.

Header construction follows perf_analyzer's ``report_writer.cc`` (see shared/reference/perf_analyzer.md
§3): first column ``Concurrency`` or ``Request Rate``; server columns only with server statistics;
``--percentile=N`` inserts ``pN latency`` in sorted place; ``--verbose-csv`` appends ``Avg latency``
(only without ``--percentile``), ``request/response`` and ``response wait``; with ``--collect-metrics`` too,
four GPU columns whose cells are ``<uuid>:<value>;`` per GPU. Times are integer µs, Inferences/Second
has 6 significant digits, rows are sorted by ascending Inferences/Second.

Both perf_analyzer's files and ours parse into :class:`PaRow`, the one row type the report reads.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saturate.errors import UsageError

STANDARD_PERCENTILES = (50, 90, 95, 99)
SERVER_COLUMNS = (
    ("Network+Server Send/Recv", "network_server_us"),
    ("Server Queue", "queue_us"),
    ("Server Compute Input", "compute_input_us"),
    ("Server Compute Infer", "compute_infer_us"),
    ("Server Compute Output", "compute_output_us"),
)
GPU_COLUMNS = (
    ("Avg GPU Utilization", "util"),
    ("Avg GPU Power Usage", "power_w"),
    ("Max GPU Memory Usage", "mem_used_bytes"),
    ("Total GPU Memory", "mem_total_bytes"),
)
MODE_COLUMN = {"concurrency": "Concurrency", "request_rate": "Request Rate"}


@dataclass(frozen=True)
class CsvOptions:
    """The perf_analyzer options that shape the CSV header."""

    mode: str = "concurrency"
    percentile: int | None = None
    verbose: bool = False
    metrics: bool = False
    server_stats: bool = True

    def percentiles(self) -> list[int]:
        return sorted(set(STANDARD_PERCENTILES) | ({self.percentile} if self.percentile else set()))

    def header(self) -> list[str]:
        head = [MODE_COLUMN[self.mode], "Inferences/Second", "Client Send"]
        if self.server_stats:
            head += [name for name, _ in SERVER_COLUMNS]
        head += ["Client Recv"] + [f"p{p} latency" for p in self.percentiles()]
        if self.verbose:
            head += ([] if self.percentile else ["Avg latency"]) + ["request/response", "response wait"]
            if self.metrics:
                head += [name for name, _ in GPU_COLUMNS]
        return head


@dataclass(frozen=True)
class PaRow:
    """One level as a perf_analyzer CSV row (µs integers; GPU cells per UUID)."""

    mode: str
    value: float
    infer_per_s: float
    client_send_us: int
    client_recv_us: int
    latency_us: dict[str, int]
    server: dict[str, int] | None = None
    request_response_us: int | None = None
    response_wait_us: int | None = None
    gpu: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def from_level(cls, level: Mapping[str, Any]) -> PaRow:
        """The CSV view of a run-JSON level (``levels[]`` entry)."""
        mode = str(level["mode"])
        value = float(level["concurrency"] if mode == "concurrency" else level["request_rate"])
        lat = {k: int(v) for k, v in (level.get("latency_us") or {}).items()}
        client = level.get("client") or {}
        send, recv = int(client.get("send_us", 0)), int(client.get("recv_us", 0))
        srv = level.get("server")
        server: dict[str, int] | None = None
        if srv is not None:
            parts = {key: int(srv.get(key, 0)) for _, key in SERVER_COLUMNS[1:]}
            accounted = sum(parts.values())
            server = {"network_server_us": max(0, lat.get("avg", 0) - send - recv - accounted), **parts}
        gpu_level = level.get("gpu") or {}
        gpu = {key: dict(cells) for key, cells in gpu_level.items() if isinstance(cells, Mapping)}
        return cls(
            mode=mode,
            value=value,
            infer_per_s=float(level["throughput"]["infer_per_s"]),
            client_send_us=send,
            client_recv_us=recv,
            latency_us=lat,
            server=server,
            request_response_us=send + recv,
            response_wait_us=max(0, lat.get("avg", 0) - send - recv),
            gpu=gpu,
        )


def _gpu_cell(cells: Mapping[str, float]) -> str:
    return "".join(f"{uuid}:{value:g};" for uuid, value in cells.items())


def format_rows(rows: Sequence[PaRow], opts: CsvOptions) -> str:
    """The whole CSV text for ``rows`` under ``opts`` (sorted by Inferences/Second)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(opts.header())
    for row in sorted(rows, key=lambda r: r.infer_per_s):
        first = str(int(row.value)) if opts.mode == "concurrency" else f"{row.value:g}"
        cells: list[str | int] = [first, f"{row.infer_per_s:.6g}", row.client_send_us]
        if opts.server_stats:
            server = row.server or {}
            cells += [server.get(key, 0) for _, key in SERVER_COLUMNS]
        cells.append(row.client_recv_us)
        cells += [row.latency_us.get(f"p{p}", 0) for p in opts.percentiles()]
        if opts.verbose:
            if not opts.percentile:
                cells.append(row.latency_us.get("avg", 0))
            cells += [row.request_response_us or 0, row.response_wait_us or 0]
            if opts.metrics:
                cells += [_gpu_cell(row.gpu.get(key, {})) for _, key in GPU_COLUMNS]
        writer.writerow(cells)
    return buf.getvalue()


def csv_text(
    levels: Sequence[Mapping[str, Any]],
    mode: str,
    percentile: int | None,
    verbose: bool,
    metrics: bool,
    server_stats: bool,
) -> str:
    """perf_analyzer's CSV for run-JSON levels (the runner rewrites it after every level)."""
    opts = CsvOptions(mode, percentile, verbose, metrics, server_stats)
    return format_rows([PaRow.from_level(lv) for lv in levels], opts)


def _parse_gpu(cell: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in filter(None, cell.split(";")):
        uuid, _, value = item.rpartition(":")
        out[uuid] = float(value)
    return out


def options_from_header(header: Sequence[str]) -> CsvOptions:
    """The options that produce ``header`` (a percentile inside the standard four is indistinguishable)."""
    modes = {name: mode for mode, name in MODE_COLUMN.items()}
    if not header or header[0] not in modes or "Inferences/Second" not in header:
        raise UsageError(
            f"not a perf_analyzer CSV (header starts {','.join(header[:2])!r}); "
            "expected 'Concurrency' or 'Request Rate' then 'Inferences/Second'"
        )
    pcts = [int(h[1:].split()[0]) for h in header if h.startswith("p") and h.endswith(" latency")]
    extra = [p for p in pcts if p not in STANDARD_PERCENTILES]
    verbose = "request/response" in header
    percentile = extra[0] if extra else (95 if verbose and "Avg latency" not in header else None)
    return CsvOptions(
        mode=modes[header[0]],
        percentile=percentile,
        verbose=verbose,
        metrics="Avg GPU Utilization" in header,
        server_stats="Server Queue" in header,
    )


def parse_csv(text: str, source: str = "<csv>") -> tuple[CsvOptions, list[PaRow]]:
    """Parse perf_analyzer's CSV text (theirs or ours) into its options and rows."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    opts = options_from_header(header)
    rows: list[PaRow] = []
    for number, cells in enumerate(reader, start=2):
        if not cells:
            continue
        if len(cells) != len(header):
            raise UsageError(
                f"{source}:{number}: {len(cells)} cells for {len(header)} columns; the file is damaged"
            )
        rec = dict(zip(header, cells, strict=True))
        try:
            lat = {f"p{p}": int(rec[f"p{p} latency"]) for p in opts.percentiles()}
            if "Avg latency" in rec:
                lat["avg"] = int(rec["Avg latency"])
            server = {key: int(rec[name]) for name, key in SERVER_COLUMNS} if opts.server_stats else None
            rows.append(
                PaRow(
                    mode=opts.mode,
                    value=float(rec[header[0]]),
                    infer_per_s=float(rec["Inferences/Second"]),
                    client_send_us=int(rec["Client Send"]),
                    client_recv_us=int(rec["Client Recv"]),
                    latency_us=lat,
                    server=server,
                    request_response_us=int(rec["request/response"]) if opts.verbose else None,
                    response_wait_us=int(rec["response wait"]) if opts.verbose else None,
                    gpu={key: _parse_gpu(rec[name]) for name, key in GPU_COLUMNS if rec.get(name)},
                )
            )
        except ValueError as exc:
            raise UsageError(f"{source}:{number}: {exc}; not a perf_analyzer CSV row") from None
    return opts, rows


def read_csv(path: Path) -> tuple[CsvOptions, list[PaRow]]:
    """Read a perf_analyzer-style CSV file (theirs or ours)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}; check the path") from None
    return parse_csv(text, str(path))
