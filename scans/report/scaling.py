"""Scaling tables from sweep results (``sweep.jsonl``): exploration, strong and weak scaling (DLBS).

Each successful sweep line gives points ``(model, device, N, b, items/s)``: ``N`` replicas
(processes, server instances, GPUs), ``b`` items per replica per call. The batch time is derived from the
measured throughput, ``t_N = N·b·1000 / items_per_s`` (ms for one call on every replica), so the tables and
the throughput agree. Duplicate points (e.g. several load levels) keep the highest throughput.

- **exploration**: rows (model, device, N), columns the effective batch ``N·b``: batch time, items/s.
- **strong scaling** (fixed effective batch ``B = N·b``): rows (model, device, B), columns N: time,
  items/s, speedup ``thr_N / thr_N0`` and efficiency ``100·N0·t_N0 / (N·t_N)`` against the smallest N of
  the row (``N0 = 1``: DLBS's ``100·t1 / (N·tN)``).
- **weak scaling** (fixed per-replica ``b``): rows (model, device, b), columns N: time, items/s, speedup
  ``thr_N / thr_1`` and efficiency ``100·t1 / tN``; a row without N = 1 is dropped, as DLBS does.

Outputs: ``scaling.csv`` (tidy, one line per table cell), ``scaling.md`` (pivot tables), ``scaling.png``
(strong-scaling speedup and weak-scaling efficiency against N, ideal lines dashed) and an HTML fragment.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS_NAME = "sweep.jsonl"
SCALE_PARAMS: tuple[str, ...] = ("processes", "replicas", "instances", "gpus", "devices", "n",
                                 "exp.replicas", "exp.num_gpus", "exp.n")
CSV_HEADER: tuple[str, ...] = ("table", "model", "device", "batch", "n", "time_ms", "items_per_s",
                               "speedup", "efficiency_pct")


@dataclass(frozen=True)
class Point:
    """One measured configuration: ``n`` replicas of batch ``batch`` giving ``items_per_s`` in all."""

    model: str
    device: str
    n: int
    batch: int
    items_per_s: float

    @property
    def effective_batch(self) -> int:
        return self.n * self.batch

    @property
    def time_ms(self) -> float:
        return self.effective_batch * 1000.0 / self.items_per_s


@dataclass(frozen=True)
class Cell:
    """One cell of a scaling table (``batch``: effective for exploration/strong, per replica for weak)."""

    table: str
    model: str
    device: str
    batch: int
    n: int
    time_ms: float
    items_per_s: float
    speedup: float | None = None
    efficiency_pct: float | None = None


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, list):
        return len(value)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.isdigit():
            return int(text)
        return len([x for x in text.replace(";", ",").split(",") if x.strip()])
    return None


def _replicas(params: Mapping[str, Any], results: Mapping[str, Any], scale_by: str | None) -> int:
    if scale_by is None and isinstance(results.get("processes"), int):
        return int(results["processes"])
    for name in (scale_by,) if scale_by else SCALE_PARAMS:
        n = _count(params.get(name)) if name else None
        if n is not None and n > 0:
            return n
    return 1


def points_from_records(records: Iterable[Mapping[str, Any]], scale_by: str | None = None) -> list[Point]:
    """Points of the successful sweep lines (highest throughput per duplicate configuration)."""
    best: dict[tuple[str, str, int, int], Point] = {}
    for rec in records:
        if rec.get("status") != "ok":
            continue
        params, results = rec.get("params") or {}, rec.get("results") or {}
        model = str(params.get("exp.model") or params.get("model") or params.get("model_name")
                    or params.get("m") or "model")
        device = str(params.get("exp.device") or params.get("device") or "cpu")
        n = _replicas(params, results, scale_by)
        levels = results.get("levels") or [results]
        for lv in levels:
            b, thr = lv.get("batch_size"), lv.get("items_per_s")
            if not isinstance(b, int) or not isinstance(thr, int | float) or thr <= 0:
                continue
            p = Point(model, device, n, b, float(thr))
            key = (model, device, n, b)
            if key not in best or best[key].items_per_s < p.items_per_s:
                best[key] = p
    return sorted(best.values(), key=lambda p: (p.model, p.device, p.n, p.batch))


def read_points(path: Path, scale_by: str | None = None) -> list[Point]:
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return points_from_records([r for r in records if isinstance(r, dict)], scale_by)


def exploration(points: Sequence[Point]) -> list[Cell]:
    return [Cell("exploration", p.model, p.device if p.n == 1 else f"{p.device} x{p.n}", p.effective_batch,
                 p.n, p.time_ms, p.items_per_s) for p in points]


def strong_scaling(points: Sequence[Point]) -> list[Cell]:
    rows: dict[tuple[str, str, int], list[Point]] = {}
    for p in points:
        rows.setdefault((p.model, p.device, p.effective_batch), []).append(p)
    cells: list[Cell] = []
    for (model, device, big_b), pts in sorted(rows.items()):
        pts = sorted(pts, key=lambda p: p.n)
        base = pts[0]
        for p in pts:
            cells.append(Cell("strong", model, device, big_b, p.n, p.time_ms, p.items_per_s,
                              p.items_per_s / base.items_per_s,
                              round(100.0 * base.n * base.time_ms / (p.n * p.time_ms), 2)))
    return cells


def weak_scaling(points: Sequence[Point]) -> list[Cell]:
    rows: dict[tuple[str, str, int], list[Point]] = {}
    for p in points:
        rows.setdefault((p.model, p.device, p.batch), []).append(p)
    cells: list[Cell] = []
    for (model, device, b), pts in sorted(rows.items()):
        one = [p for p in pts if p.n == 1]
        if not one:
            continue
        base = one[0]
        for p in sorted(pts, key=lambda p: p.n):
            cells.append(Cell("weak", model, device, b, p.n, p.time_ms, p.items_per_s,
                              p.items_per_s / base.items_per_s, round(100.0 * base.time_ms / p.time_ms, 2)))
    return cells


def all_cells(points: Sequence[Point]) -> list[Cell]:
    return [*exploration(points), *strong_scaling(points), *weak_scaling(points)]


def csv_text(cells: Sequence[Cell]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for c in cells:
        w.writerow([c.table, c.model, c.device, c.batch, c.n, f"{c.time_ms:.6g}", f"{c.items_per_s:.6g}",
                    "" if c.speedup is None else f"{c.speedup:.4g}",
                    "" if c.efficiency_pct is None else f"{c.efficiency_pct:.2f}"])
    return buf.getvalue()


@dataclass(frozen=True)
class Pivot:
    """A titled table: header and rows of already formatted text cells."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


_METRICS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "exploration": (("time_ms", "Batch time (ms)", ".3f"), ("items_per_s", "Items per second", ".1f")),
    "strong": (("time_ms", "Batch time (ms)", ".3f"), ("items_per_s", "Items per second", ".1f"),
               ("speedup", "Speedup = thr_N / thr_N0", ".2f"),
               ("efficiency_pct", "Efficiency = 100% * N0*t_N0 / (N*t_N)", ".2f")),
    "weak": (("time_ms", "Batch time (ms)", ".3f"), ("items_per_s", "Items per second", ".1f"),
             ("speedup", "Speedup = thr_N / thr_1", ".2f"),
             ("efficiency_pct", "Efficiency = 100% * t1 / tN", ".2f")),
}
_TITLES = {"exploration": "Exploration", "strong": "Strong scaling (effective batch B = N*b)",
           "weak": "Weak scaling (per-replica batch b)"}


def _row_key(c: Cell) -> tuple[Any, ...]:
    return (c.model, c.device) if c.table == "exploration" else (c.model, c.device, c.batch)


def _col(c: Cell) -> int:
    return c.batch if c.table == "exploration" else c.n


def pivots(cells: Sequence[Cell]) -> list[Pivot]:
    """The pivot tables: exploration rows by effective batch, strong/weak rows by N."""
    out: list[Pivot] = []
    for table, metrics in _METRICS.items():
        mine = [c for c in cells if c.table == table]
        if not mine:
            continue
        cols = sorted({_col(c) for c in mine})
        row_keys = sorted({_row_key(c) for c in mine})
        extra = () if table == "exploration" else ("B" if table == "strong" else "b",)
        names = [f"b={x}" if table == "exploration" else f"N={x}" for x in cols]
        header = ("model", "device", *extra, *names)
        for attr, name, spec in metrics:
            index = {(_row_key(c), _col(c)): getattr(c, attr) for c in mine}
            rows = tuple(
                (*(str(k) for k in key),
                 *("-" if index.get((key, x)) is None else format(index[(key, x)], spec) for x in cols))
                for key in row_keys)
            out.append(Pivot(f"{_TITLES[table]}: {name}", header, rows))
    return out


def markdown(tables: Sequence[Pivot]) -> str:
    parts = []
    for t in tables:
        lines = [f"### {t.title}", "", "| " + " | ".join(t.header) + " |",
                 "|" + "|".join("---" for _ in t.header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in t.rows]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def chart_png(cells: Sequence[Cell], dpi: int = 100) -> bytes | None:
    """Strong-scaling speedup and weak-scaling efficiency against N (None without multi-N rows)."""
    strong = [c for c in cells if c.table == "strong"]
    weak = [c for c in cells if c.table == "weak"]
    if not any(c.n > 1 for c in strong) and not any(c.n > 1 for c in weak):
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    ax1, ax2 = fig.subplots(1, 2)
    ns: list[int] = sorted({c.n for c in cells if c.table != "exploration"})
    for ax, group, key, label in ((ax1, strong, "speedup", "speedup thr_N / thr_N0"),
                                  (ax2, weak, "efficiency_pct", "efficiency (%)")):
        series: dict[str, list[Cell]] = {}
        for c in group:
            name = f"{c.model} {c.device} {'B' if c.table == 'strong' else 'b'}={c.batch}"
            series.setdefault(name, []).append(c)
        drawn = 0
        for name, pts in series.items():
            if len(pts) > 1:
                ax.plot([c.n for c in pts], [getattr(c, key) for c in pts], "o-", label=name)
                drawn += 1
        if not drawn:
            ax.text(0.5, 0.5, "no row measured at two or more N", transform=ax.transAxes, ha="center",
                    color="0.4")
        if key == "speedup":
            ax.plot(ns, [n / ns[0] for n in ns], "k--", lw=1, label="ideal")
            ax.set_title("Strong scaling")
        else:
            ax.axhline(100.0, color="k", ls="--", lw=1, label="ideal")
            ax.set_title("Weak scaling")
        ax.set_xlabel("N (replicas / processes)")
        ax.set_ylabel(label)
        ax.set_xticks(ns)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def html_fragment(tables: Sequence[Pivot], figure_html: str = "") -> str:
    """The report section: a note, the chart (already an HTML ``<figure>``) and the pivot tables."""
    from scans.report.html import esc, table

    parts = ['<p class="note">From sweep.jsonl: batch time t_N = N·b·1000 / items/s; strong scaling keeps '
             "N·b fixed, weak scaling keeps b fixed (DLBS definitions).</p>", figure_html]
    for t in tables:
        parts.append(f"<h3>{esc(t.title)}</h3>" + table(t.header, [[esc(c) for c in r] for r in t.rows],
                                                         left=3 if len(t.header) > 2 else 2))
    return "".join(parts)


@dataclass(frozen=True)
class ScalingOutput:
    cells: tuple[Cell, ...]
    tables: tuple[Pivot, ...]
    png: bytes | None
    files: tuple[Path, ...]


def write_scaling(source: Path, out: Path, dpi: int = 100,
                  scale_by: str | None = None) -> ScalingOutput | None:
    """Read ``source/sweep.jsonl``; write scaling.csv/.md/.png under ``out``; None without sweep points."""
    path = source / RESULTS_NAME
    if not path.is_file():
        return None
    points = read_points(path, scale_by)
    if not points:
        return None
    cells = all_cells(points)
    tables = pivots(cells)
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "scaling.csv", out / "scaling.md"]
    files[0].write_text(csv_text(cells))
    files[1].write_text(markdown(tables))
    png = chart_png(cells, dpi)
    if png is not None:
        (out / "scaling.png").write_bytes(png)
        files.append(out / "scaling.png")
    return ScalingOutput(tuple(cells), tuple(tables), png, tuple(files))
