"""The report's figures, drawn with matplotlib's object API on the Agg canvas (no pyplot state).

Each ``plot_*`` returns a :class:`Figure` or None when the data for it is absent; :data:`PLOTS`
lists them with their file names and captions, in page order.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import matplotlib
import matplotlib.style

matplotlib.use("Agg")

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from monitors.summarize import Series
from saturate.errors import ToolMissingError
from scans.report.readers import ReportData, ServerSeries, saturation_rows

STYLES: tuple[str, ...] = ("default", "mplhep")


@contextlib.contextmanager
def style_context(style: str) -> Iterator[None]:
    """matplotlib defaults, or mplhep's CMS style (a ToolMissingError when mplhep is not installed)."""
    if style == "default":
        yield
        return
    if style != "mplhep":
        raise ToolMissingError(f"unknown plot style {style!r}; use default or mplhep")
    try:
        import mplhep  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise ToolMissingError(
            "--style mplhep needs the mplhep package; install it with 'pip install mplhep' or drop --style"
        ) from None
    with matplotlib.style.context(mplhep.style.CMS):
        yield


def _figure(width: float, height: float) -> Figure:
    """A figure of ``width`` by ``height`` inches at 10-12 pt text, grown with the style's font size."""
    scale = max(1.0, float(matplotlib.rcParams["font.size"]) / 12.0)
    return Figure(figsize=(width * scale, height * scale), layout="constrained")


def _log2_batches(ax: Axes) -> None:
    """Log-2 x axis labelled 1, 2, 4, … rather than 2^0, 2^1, …"""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))


def _finish(ax: Axes, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")


def plot_direct(data: ReportData) -> Figure | None:
    """Direct scan: items/s ± SEM and latency (mean ± SEM, median, p95) against batch, log x."""
    series = [d for d in data.direct if d.ok_levels()]
    if not series:
        return None
    fig = _figure(11, 4.5)
    ax_t, ax_l = fig.subplots(1, 2)
    for d in series:
        lv = d.ok_levels()
        b = [x["batch_size"] for x in lv]
        blk = [x["direct"] for x in lv]
        ax_t.errorbar(b, [x["items_per_s"] for x in blk], yerr=[x["items_per_s_sem"] for x in blk],
                      marker="o", capsize=3, label=d.label)
        line = ax_l.errorbar(b, [x["mean_us"] / 1e3 for x in blk], yerr=[x["sem_us"] / 1e3 for x in blk],
                             marker="o", capsize=3, label=f"{d.label} mean ± SEM")
        color = line.lines[0].get_color()
        ax_l.plot(b, [x["median_us"] / 1e3 for x in blk], ls="--", color=color, label=f"{d.label} median")
        ax_l.plot(b, [x["p95_us"] / 1e3 for x in blk], ls=":", color=color, label=f"{d.label} p95")
    for ax in (ax_t, ax_l):
        _log2_batches(ax)
    ax_l.set_yscale("log")
    _finish(ax_t, "batch size", "items / s", "Direct inference throughput")
    _finish(ax_l, "batch size", "latency per batch [ms]", "Direct inference latency")
    return fig


def _load_plot(series: list[ServerSeries], xlabel: str, title: str, diagonal: bool) -> Figure | None:
    if not series:
        return None
    fig = _figure(7, 4.5)
    ax = fig.subplots()
    top = 0.0
    for s in series:
        pts = sorted(s.points, key=lambda p: p.load)
        ax.plot([p.load for p in pts], [p.infer_per_s for p in pts], marker="o", label=s.label)
        unstable = [p for p in pts if not p.stable]
        if unstable:
            ax.plot([p.load for p in unstable], [p.infer_per_s for p in unstable], "x", color="red", ms=9)
        top = max([top, *(p.load for p in pts)])
    if diagonal and top > 0:
        ax.plot([0, top], [0, top], color="grey", ls=":", label="rate = throughput (batch 1)")
    ax.set_ylim(bottom=0)
    if not diagonal:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _finish(ax, xlabel, "inferences / s", title)
    return fig


def plot_throughput_concurrency(data: ReportData) -> Figure | None:
    """Server throughput against concurrency, one line per batch size / source (red x: unstable)."""
    series = [s for s in data.server if s.mode == "concurrency"]
    return _load_plot(series, "concurrency (requests in flight)", "Throughput vs concurrency", False)


def plot_throughput_rate(data: ReportData) -> Figure | None:
    """Measured throughput against the target request rate."""
    series = [s for s in data.server if s.mode == "request_rate"]
    return _load_plot(series, "target request rate [1/s]", "Throughput vs request rate", True)


def plot_latency_throughput(data: ReportData) -> Figure | None:
    """p50 (solid) and p95 (dashed) latency against throughput; a scan's p95 budget and knee (star)."""
    series = [s for s in data.server if any(p.p50_us is not None for p in s.points)]
    if not series:
        return None
    fig = _figure(7, 4.5)
    ax = fig.subplots()
    for s in series:
        pts = sorted(s.points, key=lambda p: p.infer_per_s)
        x = [p.infer_per_s for p in pts]
        (line,) = ax.plot(x, [(p.p50_us or 0) / 1e3 for p in pts], marker="o", label=f"{s.label} p50")
        if all(p.p95_us is not None for p in pts):
            ax.plot(x, [(p.p95_us or 0) / 1e3 for p in pts], marker="s", ls="--", color=line.get_color(),
                    label=f"{s.label} p95")
    for an in data.analyses.values():  # a server scan's latency budget and its knee
        if an.get("latency_budget_ms") is not None:
            ax.axhline(float(an["latency_budget_ms"]), color="grey", ls=":", label="p95 budget")
        knee = an.get("knee")
        if knee and knee.get("p95_ms") is not None:
            ax.plot([knee["infer_per_s"]], [knee["p95_ms"]], "*", color="black", ms=14, zorder=5,
                    label=f"knee {knee['level']}")
    ax.set_ylim(bottom=0)
    _finish(ax, "inferences / s", "latency [ms]", "Latency vs throughput")
    return fig


BREAKDOWN: tuple[tuple[str, str], ...] = (
    ("client_send_us", "client send"),
    ("network_us", "network + server send/recv"),
    ("queue_us", "server queue"),
    ("compute_input_us", "compute input"),
    ("compute_infer_us", "compute infer"),
    ("compute_output_us", "compute output"),
    ("client_recv_us", "client recv"),
)


def plot_breakdown(data: ReportData) -> Figure | None:
    """Stacked per-request time per level: client, network, queue, compute input/infer/output."""
    bars: list[tuple[str, dict[str, float]]] = []
    for s in data.server:
        for p in sorted(s.points, key=lambda p: p.load):
            if p.has_breakdown:
                load = f"c{p.load:g}" if s.mode == "concurrency" else f"r{p.load:g}"
                bars.append((f"{s.label}\n{load}", {k: float(getattr(p, k) or 0.0) for k, _ in BREAKDOWN}))
    if not bars:
        return None
    fig = _figure(max(7.0, 0.55 * len(bars) + 3), 5)
    ax = fig.subplots()
    x = list(range(len(bars)))
    bottom = [0.0] * len(bars)
    for key, name in BREAKDOWN:
        vals = [b[1][key] / 1e3 for b in bars]
        ax.bar(x, vals, bottom=bottom, label=name)
        bottom = [a + v for a, v in zip(bottom, vals, strict=True)]
    ax.set_xticks(x, [b[0] for b in bars], rotation=60, ha="right", fontsize="x-small")
    _finish(ax, "", "time per request [ms]", "Where a request's time goes (per level)")
    return fig


def plot_saturation(data: ReportData) -> Figure | None:
    """Best server throughput vs the direct-inference ceiling per batch, and their ratio."""
    rows = saturation_rows(data)
    if not rows:
        return None
    fig = _figure(8, 6)
    ax, ax_r = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    for label in sorted({r.direct_label for r in rows}):
        by_batch = {r.batch_size: r for r in rows if r.direct_label == label}
        sel = [by_batch[b] for b in sorted(by_batch)]
        ax.errorbar([r.batch_size for r in sel], [r.direct_ceiling for r in sel],
                    yerr=[r.direct_sem for r in sel], marker="o", capsize=3, label=f"direct: {label}")
    for label in sorted({r.server_label for r in rows}):
        sel = [r for r in rows if r.server_label == label]
        (mark,) = ax.plot([r.batch_size for r in sel], [r.server_best for r in sel], "s", ms=8,
                          label=f"server best: {label}")
        ax_r.plot([r.batch_size for r in sel], [r.ratio for r in sel], "s", ms=8, label=label,
                  color=mark.get_color())
    ax_r.axhline(1.0, color="grey", ls=":")
    _log2_batches(ax)
    ax.set_yscale("log")
    _finish(ax, "", "items / s", "Server throughput vs direct-inference ceiling")
    _finish(ax_r, "batch size", "server / direct", "")
    return fig


GPU_METRICS: tuple[tuple[str, str], ...] = (("gpu_util_pct", "util"), ("sm_active_pct", "SM active"),
                                           ("tensor_active_pct", "tensor active"))


def _spans(phases: list[str], t: list[float]) -> list[tuple[float, float, str]]:
    """Contiguous runs of one non-empty phase as (start s, end s, label)."""
    spans: list[tuple[float, float, str]] = []
    for ti, label in zip(t, phases, strict=True):
        if spans and spans[-1][2] == label:
            spans[-1] = (spans[-1][0], ti, label)
        else:
            spans.append((ti, ti, label))
    return [sp for sp in spans if sp[2]]


def _lines(ax: Axes, s: Series, keep: Callable[[str], bool], metrics: tuple[tuple[str, str], ...]) -> bool:
    drawn = False
    for dev in dict.fromkeys(d for d in s.device if keep(d)):
        idx = [i for i, d in enumerate(s.device) if d == dev]
        for key, name in metrics:
            ys = [s.values[key][i] for i in idx]
            if any(not math.isnan(y) for y in ys):
                ax.plot([s.t[i] for i in idx], ys, lw=1.2, label=f"{dev} {name}")
                drawn = True
    return drawn


def plot_utilization(data: ReportData) -> Figure | None:
    """GPU and CPU utilization against time from the monitor CSV, the scan's levels shaded."""
    if not data.monitors:
        return None
    m = data.monitors[0]
    s = m.series
    fig = _figure(11, 6)
    ax_g, ax_c = fig.subplots(2, 1, sharex=True)
    if not _lines(ax_g, s, lambda d: d != "host" and not d.startswith("pid:"), GPU_METRICS):
        ax_g.text(0.5, 0.5, "no GPU source on this host", transform=ax_g.transAxes, ha="center",
                  va="center", color="grey")
    _lines(ax_c, s, lambda d: d == "host", (("cpu_util_pct", "CPU"), ("ram_util_pct", "RAM")))
    _lines(ax_c, s, lambda d: d.startswith("pid:"), (("cpu_util_pct", "CPU (% of a core)"),))
    spans = _spans(s.phase, s.t)
    for ax in (ax_g, ax_c):
        for j, (a, b, _label) in enumerate(spans):
            ax.axvspan(a, b, color="C0" if j % 2 == 0 else "C1", alpha=0.12, lw=0)
        ax.set_ylim(bottom=0)
    for a, b, label in spans:
        ax_g.text((a + b) / 2, 1.01, label, transform=ax_g.get_xaxis_transform(), ha="left",
                  va="bottom", fontsize="x-small", rotation=45)
    ax_g.set_ylim(0, 105)
    _finish(ax_g, "", "GPU [%]", "")
    _finish(ax_c, f"time [s] ({m.source})", "host [%]", "")
    return fig


@dataclass(frozen=True)
class PlotSpec:
    name: str
    caption: str
    draw: Callable[[ReportData], Figure | None]


PLOTS: tuple[PlotSpec, ...] = (
    PlotSpec("direct_scan", "Direct inference: throughput (± SEM) and latency per batch size.", plot_direct),
    PlotSpec("throughput_vs_concurrency", "Server throughput against concurrency per batch size "
             "(red x: level not stable).", plot_throughput_concurrency),
    PlotSpec("throughput_vs_request_rate", "Measured throughput against the target request rate.",
             plot_throughput_rate),
    PlotSpec("latency_vs_throughput", "p50 (solid) and p95 (dashed) latency against throughput; dotted: "
             "the p95 budget, star: the knee (best throughput within it).",
             plot_latency_throughput),
    PlotSpec("server_breakdown", "Average time per request by stage, per level (server statistics).",
             plot_breakdown),
    PlotSpec("utilization_timeline", "GPU and CPU utilization from the monitor against time; shaded bands "
             "are the scan's levels (labelled c<concurrency>_b<batch>).", plot_utilization),
    PlotSpec("saturation_ratio", "Best server throughput against the direct-inference ceiling at the same "
             "batch size; the lower panel is the saturation ratio.", plot_saturation),
)
