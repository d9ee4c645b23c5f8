"""``saturate monitor summarize FILE``: per-phase mean/max table and a PNG timeline with phases shaded."""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from monitors.schema import METRICS, SEED_COLUMNS, fmt
from saturate.errors import ConfigError

_SEED_MAP = {"GPU Util (%)": "gpu_util_pct", "GPU Mem (%)": "gpu_mem_util_pct",
             "CPU Util (%)": "cpu_util_pct", "RAM Util (%)": "ram_util_pct"}


@dataclass
class Series:
    """All rows of one CSV, column-wise: time (s since first row), device, phase, metrics."""

    t: list[float] = field(default_factory=list)
    device: list[str] = field(default_factory=list)
    phase: list[str] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})


def _num(text: str | None) -> float:
    if text is None or not text.strip():
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


def load(path: str) -> Series:
    """Read a tidy or seed monitor CSV; a one-line ConfigError if it is neither."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, skipinitialspace=True))
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror or exc}; pass a CSV written by saturate monitor") from None
    if not rows:
        raise ConfigError(f"{path} is empty; pass a CSV written by saturate monitor")
    return series_of(rows, path)


def series_of(rows: list[list[str]], path: str) -> Series:
    """The :class:`Series` of a monitor CSV's rows (``rows[0]`` its header); ``path`` names it in errors."""
    header = [h.strip() for h in rows[0]]
    s = Series()
    if "unix_ns" in header and "device" in header:
        ix = {h: i for i, h in enumerate(header)}
        t_ns = [int(r[ix["unix_ns"]]) for r in rows[1:] if len(r) == len(header)]
        body = [r for r in rows[1:] if len(r) == len(header)]
        t0 = t_ns[0] if t_ns else 0
        for r, ns in zip(body, t_ns, strict=False):
            s.t.append((ns - t0) / 1e9)
            s.device.append(r[ix["device"]])
            s.phase.append(r[ix["phase"]] if "phase" in ix else "")
            for m in METRICS:
                s.values[m].append(_num(r[ix[m]]) if m in ix else math.nan)
        return s
    if header == list(SEED_COLUMNS):
        body = [r for r in rows[1:] if len(r) == len(header)]
        times = [dt.datetime.strptime(r[0].strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp() for r in body]
        for r, ts in zip(body, times, strict=False):
            s.t.append(ts - times[0])
            s.device.append("gpu")
            s.phase.append("")
            for m in METRICS:
                s.values[m].append(math.nan)
            for col, m in _SEED_MAP.items():
                s.values[m][-1] = _num(r[header.index(col)])
        return s
    raise ConfigError(f"{path} is not a monitor CSV (header {','.join(header[:4])}...); "
                      "pass a CSV written by saturate monitor")


def _finite(xs: Iterable[float]) -> list[float]:
    return [x for x in xs if not math.isnan(x)]


def summary(s: Series) -> list[dict[str, object]]:
    """One entry per (phase, device) in order of appearance: rows and mean/max of each filled metric."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(s.phase, s.device, strict=False)):
        groups.setdefault(key, []).append(i)
    out: list[dict[str, object]] = []
    for (phase, device), idx in groups.items():
        entry: dict[str, object] = {"phase": phase, "device": device, "rows": len(idx),
                                    "seconds": s.t[idx[-1]] - s.t[idx[0]]}
        for m in METRICS:
            vals = _finite(s.values[m][i] for i in idx)
            if vals:
                entry[m] = (sum(vals) / len(vals), max(vals))
        out.append(entry)
    return out


def format_table(entries: list[dict[str, object]]) -> str:
    """A plain-text table: phase, device, rows, then 'mean/max' for every metric that has data."""
    metrics = [m for m in METRICS if any(m in e for e in entries)]
    head = ["phase", "device", "rows", *(m.removesuffix("_pct").removesuffix("_mib") + " mean/max"
                                         for m in metrics)]
    body = []
    for e in entries:
        cells = [str(e["phase"]) or "-", str(e["device"]), str(e["rows"])]
        for m in metrics:
            mm = e.get(m)
            cells.append(f"{fmt(round(mm[0], 1))}/{fmt(round(mm[1], 1))}" if isinstance(mm, tuple) else "")
        body.append(cells)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in [head, *body])
    return "\n".join(lines)


def phase_spans(s: Series) -> list[tuple[float, float, str]]:
    """Contiguous runs of one phase label as (start s, end s, label); unlabelled runs are left out."""
    spans: list[tuple[float, float, str]] = []
    for t, label in zip(s.t, s.phase, strict=False):
        if spans and spans[-1][2] == label:
            spans[-1] = (spans[-1][0], t, label)
        else:
            spans.append((t, t, label))
    return [sp for sp in spans if sp[2]]


def plot(s: Series, png: str, title: str) -> None:
    """Util/SM, memory, power and CPU/RAM against time, one panel each, phases shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("utilization [%]", ["gpu_util_pct", "gpu_mem_util_pct", "sm_active_pct", "sm_occupancy_pct",
                             "tensor_active_pct"]),
        ("GPU memory used [MiB]", ["gpu_mem_used_mib"]),
        ("power [W]", ["power_w"]),
        ("host [%]", ["cpu_util_pct", "ram_util_pct"]),
    ]
    fig, axes = plt.subplots(len(panels), 1, sharex=True, figsize=(10, 9))
    devices = list(dict.fromkeys(s.device))
    spans = phase_spans(s)
    for ax, (ylabel, metrics) in zip(axes, panels, strict=False):
        drawn = False
        for dev in devices:
            idx = [i for i, d in enumerate(s.device) if d == dev]
            for m in metrics:
                ys = [s.values[m][i] for i in idx]
                if _finite(ys):
                    ax.plot([s.t[i] for i in idx], ys, lw=1, label=f"{dev} {m}")
                    drawn = True
        if drawn:
            ax.legend(fontsize=7, loc="upper right")
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="gray")
        for j, (a, b, _label) in enumerate(spans):
            ax.axvspan(a, b, color="C0" if j % 2 == 0 else "C1", alpha=0.12, lw=0)
        ax.set_ylabel(ylabel, fontsize=8)
    for a, b, label in spans:
        axes[0].text((a + b) / 2, 1.02, label, transform=axes[0].get_xaxis_transform(), ha="center",
                     fontsize=7, rotation=30)
    axes[-1].set_xlabel("time [s]")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
