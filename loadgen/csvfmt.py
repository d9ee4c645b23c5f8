"""perf_analyzer's CSV (``-f FILE``): the writer and one reader for theirs and ours.

Header order (perf_analyzer src/report_writer.cc, ``ReportWriter::GenerateReport``):
``Concurrency`` | ``Request Rate``, ``Inferences/Second``, ``Client Send``, [server columns when the
server has statistics], ``Client Recv``, ``p50/p90/p95/p99 latency`` with ``--percentile=N`` inserted
in sorted place; ``--verbose-csv`` appends [``Avg latency`` only without ``--percentile``],
``request/response``, ``response wait`` and, with ``--collect-metrics`` too, four GPU columns whose
cells are ``<uuid>:<value>;`` per GPU (empty without GPUs). Times are integer µs truncated from ns;
Inferences/Second and Request Rate print like C++'s default ostream (``%g``, 6 significant digits);
rows are sorted by ascending Inferences/Second. Lines end in ``\\n``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadgen.result import (
    ClientStats,
    GpuSummary,
    LatencySummary,
    LevelResult,
    ServerSummary,
    Throughput,
)
from loadgen.stats import percentile_set
from saturate.atomic import write_atomic

SERVER_COLUMNS = (
    "Network+Server Send/Recv",
    "Server Queue",
    "Server Compute Input",
    "Server Compute Infer",
    "Server Compute Output",
)
GPU_COLUMNS = ("Avg GPU Utilization", "Avg GPU Power Usage", "Max GPU Memory Usage", "Total GPU Memory")
MODE_COLUMN = {"concurrency": "Concurrency", "request_rate": "Request Rate"}
REPORTABLE = ("stable", "throughput_only")  # levels perf_analyzer would record


@dataclass(frozen=True)
class CsvOptions:
    """The perf_analyzer options that shape the CSV.

    ``avg_latency_column`` only matters with ``verbose`` and no ``percentile``; it is False when a
    file read back had ``--percentile`` set to one of 50/90/95/99 (no column shows which).
    """

    mode: str = "concurrency"
    percentile: int | None = None
    verbose: bool = False
    metrics: bool = False
    server_stats: bool = True
    avg_latency_column: bool = True

    def header(self) -> list[str]:
        cols = [MODE_COLUMN[self.mode], "Inferences/Second", "Client Send"]
        if self.server_stats:
            cols += SERVER_COLUMNS
        cols.append("Client Recv")
        cols += [f"p{p} latency" for p in percentile_set(self.percentile)]
        if self.verbose:
            if self.percentile is None and self.avg_latency_column:
                cols.append("Avg latency")
            cols += ["request/response", "response wait"]
            if self.metrics:
                cols += GPU_COLUMNS
        return cols

    def header_line(self) -> str:
        return ",".join(self.header())


def fmt_g(x: float) -> str:
    """A double as C++'s default ``ostream << double`` prints it (``%g``, precision 6)."""
    return f"{x:g}"


def _gpu_cell(values: dict[str, float] | dict[str, int], integer: bool) -> str:
    return "".join(f"{k}:{int(v) if integer else fmt_g(float(v))};" for k, v in sorted(values.items()))


def row(level: LevelResult, opts: CsvOptions) -> list[str]:
    """One data row for ``level`` (µs truncated from ns, as perf_analyzer prints them)."""
    c = level.client
    out = [str(level.concurrency) if opts.mode == "concurrency" else fmt_g(level.value)]
    out += [fmt_g(level.throughput.infer_per_s), str(c.send_ns // 1000)]
    if opts.server_stats:
        s = level.server
        if s is None:
            out += ["0"] * len(SERVER_COLUMNS)
        else:
            out += [
                str(v // 1000)
                for v in (
                    s.network_server_ns,
                    s.queue_ns,
                    s.compute_input_ns,
                    s.compute_infer_ns,
                    s.compute_output_ns,
                )
            ]
    out.append(str(c.recv_ns // 1000))
    out += [str(level.latency.percentiles_ns[p] // 1000) for p in percentile_set(opts.percentile)]
    if opts.verbose:
        if opts.percentile is None and opts.avg_latency_column:
            out.append(str((level.latency.avg_ns or 0) // 1000))
        out.append(str(c.send_ns // 1000 + c.recv_ns // 1000))
        out.append(str(c.response_wait_us if c.response_wait_us is not None else 0))
        if opts.metrics:
            g = level.gpu or GpuSummary()
            out += [
                _gpu_cell(g.util, False),
                _gpu_cell(g.power_w, False),
                _gpu_cell(g.mem_used_bytes, True),
                _gpu_cell(g.mem_total_bytes, True),
            ]
    return out


def render(levels: Iterable[LevelResult], opts: CsvOptions, *, include_unreported: bool = False) -> str:
    """The whole file: header, then the levels sorted by ascending Inferences/Second.

    Like perf_analyzer, only levels it would record (stable, or throughput-only stable) are written
    unless ``include_unreported``; the run JSON keeps every level.
    """
    chosen = [lv for lv in levels if include_unreported or lv.stability in REPORTABLE]
    chosen.sort(key=lambda lv: lv.throughput.infer_per_s)
    lines = [opts.header_line()] + [",".join(row(lv, opts)) for lv in chosen]
    return "\n".join(lines) + "\n"


def write_csv(
    path: str | os.PathLike[str],
    levels: Iterable[LevelResult],
    opts: CsvOptions,
    *,
    include_unreported: bool = False,
) -> None:
    """(Re)write the CSV atomically; call after every level so a crash leaves the levels so far."""
    write_atomic(path, render(levels, opts, include_unreported=include_unreported), newline="")


# ------------------------------------------------------------------------------------------ reader


@dataclass(frozen=True)
class CsvTable:
    """A parsed perf_analyzer-format CSV: its header, the options it implies, and the levels (file order)."""

    header: list[str]
    options: CsvOptions
    levels: list[LevelResult]


def _gpu_parse(cell: str, integer: bool) -> dict[str, float] | dict[str, int]:
    out: dict[str, float] = {}
    for item in cell.split(";"):
        if not item:
            continue
        uuid, _, value = item.rpartition(":")
        out[uuid] = float(value)
    if integer:
        return {k: int(v) for k, v in out.items()}
    return out


def options_from_header(header: Sequence[str]) -> CsvOptions:
    if header[0] not in ("Concurrency", "Request Rate"):
        raise ValueError(f"not a perf_analyzer CSV: first column is {header[0]!r}")
    ps = [int(h[1:-8]) for h in header if h.startswith("p") and h.endswith(" latency")]
    extra = [p for p in ps if p not in (50, 90, 95, 99)]
    verbose = "request/response" in header
    return CsvOptions(
        mode="concurrency" if header[0] == "Concurrency" else "request_rate",
        percentile=extra[0] if extra else None,
        verbose=verbose,
        metrics="Avg GPU Utilization" in header,
        server_stats="Server Queue" in header,
        avg_latency_column="Avg latency" in header or not verbose,
    )


def parse_csv(text: str) -> CsvTable:
    """Parse perf_analyzer's CSV or ours into :class:`LevelResult` objects (µs → ns; missing → None)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ValueError("empty CSV")
    header = lines[0].split(",")
    opts = options_from_header(header)
    levels = []
    for ln in lines[1:]:
        cells = ln.split(",")
        if len(cells) != len(header):
            raise ValueError(f"row has {len(cells)} cells, header {len(header)}: {ln!r}")
        levels.append(_level(dict(zip(header, cells, strict=True)), opts))
    return CsvTable(header=header, options=opts, levels=levels)


def read_csv(path: str | os.PathLike[str]) -> CsvTable:
    return parse_csv(Path(path).read_text())


def _level(r: dict[str, str], opts: CsvOptions) -> LevelResult:
    def ns(col: str) -> int:
        return int(r[col]) * 1000

    pct = {
        int(k[1:-8]): int(v) * 1000
        for k, v in r.items()
        if k.startswith("p") and k.endswith(" latency") and k[1:-8].isdigit()
    }
    send, recv = ns("Client Send"), ns("Client Recv")
    request_ns = None
    if "response wait" in r:
        request_ns = (int(r["response wait"]) + int(r["Client Send"]) + int(r["Client Recv"])) * 1000
    server = None
    if opts.server_stats:
        server = ServerSummary(
            queue_ns=ns("Server Queue"),
            compute_input_ns=ns("Server Compute Input"),
            compute_infer_ns=ns("Server Compute Infer"),
            compute_output_ns=ns("Server Compute Output"),
            network_server_ns=ns("Network+Server Send/Recv"),
            cache_hit_ns=ns("Server Cache Hit") if "Server Cache Hit" in r else None,
            cache_miss_ns=ns("Server Cache Miss") if "Server Cache Miss" in r else None,
        )
    gpu = None
    if opts.metrics:
        gpu = GpuSummary(
            util=dict(_gpu_parse(r["Avg GPU Utilization"], False)),
            power_w=dict(_gpu_parse(r["Avg GPU Power Usage"], False)),
            mem_used_bytes={k: int(v) for k, v in _gpu_parse(r["Max GPU Memory Usage"], True).items()},
            mem_total_bytes={k: int(v) for k, v in _gpu_parse(r["Total GPU Memory"], True).items()},
        )
    rate = opts.mode == "request_rate"
    first = r[MODE_COLUMN[opts.mode]]
    return LevelResult(
        mode="request_rate" if rate else "concurrency",
        concurrency=None if rate else int(first),
        request_rate=float(first) if rate else None,
        batch_size=None,
        stable=True,
        stability="stable",
        percentile=opts.percentile,
        throughput=Throughput(infer_per_s=float(r["Inferences/Second"])),
        latency=LatencySummary(
            percentiles_ns=dict(sorted(pct.items())),
            avg_ns=ns("Avg latency") if "Avg latency" in r else None,
        ),
        client=ClientStats(send_ns=send, recv_ns=recv, request_ns=request_ns),
        server=server,
        gpu=gpu,
    )
