"""``saturate report DIR --compare DIR2``: both runs drawn on the same axes (overlays), and both
headlines side by side. The full comparison (differences, histograms) is the compare command's.

Run A (DIR) is drawn solid with circles, run B (DIR2) dashed with squares, in the same colour per
batch size: throughput against load, and p95 latency against throughput; direct scans likewise.
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from saturate.errors import ConfigError
from scans.report.headline import Headline, from_directory
from scans.report.html import esc, figure, table
from scans.report.readers import ReportData, ServerSeries, load_directory

STYLE = {"A": {"linestyle": "-", "marker": "o"}, "B": {"linestyle": "--", "marker": "s"}}


def _server(ax_t: Axes, ax_l: Axes, runs: dict[str, ReportData]) -> bool:
    colours: dict[int | None, str] = {}
    cycle = iter(f"C{i}" for i in range(100))
    drew = False
    for tag, data in runs.items():
        for s in data.server:
            colour = colours.setdefault(s.batch_size, next(cycle))
            pts = sorted(s.points, key=lambda p: p.load)
            label = f"{tag}: b={s.batch_size if s.batch_size is not None else '?'}"
            ax_t.plot([p.load for p in pts], [p.infer_per_s for p in pts], color=colour, label=label,
                      **STYLE[tag])  # type: ignore[arg-type]
            lat = [(p.infer_per_s, p.p95_us / 1e3) for p in pts if p.p95_us is not None]
            if lat:
                ax_l.plot(*zip(*lat, strict=True), color=colour, label=label, **STYLE[tag])  # type: ignore[arg-type]
            drew = True
    return drew


def _mode(series: list[ServerSeries]) -> str:
    return "request rate (req/s)" if series and series[0].mode == "request_rate" else "concurrency"


def overlay_figure(a: ReportData, b: ReportData) -> Figure | None:
    """Throughput vs load and p95 vs throughput of both runs; None when neither has server levels."""
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax_t, ax_l = fig.subplots(1, 2)
    if not _server(ax_t, ax_l, {"A": a, "B": b}):
        return None
    for ax, x, y, title in ((ax_t, _mode(a.server or b.server), "infer/s", "throughput, A solid / B dashed"),
                            (ax_l, "infer/s", "p95 latency (ms)", "p95 latency against throughput")):
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def direct_figure(a: ReportData, b: ReportData) -> Figure | None:
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.subplots()
    drew = False
    for tag, data in (("A", a), ("B", b)):
        for d in data.direct:
            lv = d.ok_levels()
            if lv:
                ax.plot([x["batch_size"] for x in lv], [x["direct"]["items_per_s"] for x in lv],
                        label=f"{tag}: {d.label}", **STYLE[tag])  # type: ignore[arg-type]
                drew = True
    if not drew:
        return None
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch")
    ax.set_ylabel("items/s")
    ax.set_title("direct inference, A solid / B dashed")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _png(fig: Figure, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _headline_rows(tag: str, hs: list[Headline]) -> list[list[str]]:
    return [[esc(tag), esc(h.source), esc(" ".join(h.sentences()))] for h in hs]


def compare_section(a_dir: Path, a: ReportData, b_dir: Path, plot_dir: Path, dpi: int) -> str:
    """The report section for `--compare`: overlay plots (also written as PNGs) and both headlines."""
    if not b_dir.is_dir():
        raise ConfigError(f"--compare {b_dir}: not a directory; give a second result directory")
    b = load_directory(b_dir)
    parts = [f'<p class="note">A = {esc(a_dir)} (solid), B = {esc(b_dir)} (dashed).</p>']
    for name, fig in (("compare_server", overlay_figure(a, b)), ("compare_direct", direct_figure(a, b))):
        if fig is None:
            continue
        png = _png(fig, dpi)
        (plot_dir / f"{name}.png").write_bytes(png)
        parts.append(figure(png, name, f"{name.replace('_', ' ')}: both runs on the same axes"))
    rows = (_headline_rows("A", from_directory(a_dir, [n for n in a.used if n.endswith(".json")]))
            + _headline_rows("B", from_directory(b_dir, [n for n in b.used if n.endswith(".json")])))
    if rows:
        parts.append(table(["run", "file", "headline"], rows, left=3))
    return "".join(parts)
