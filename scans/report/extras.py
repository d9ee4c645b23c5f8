"""report.html sections for repeated trials, energy and ``saturate compare`` (issue 17).

- "Repeats and energy": per level of every run JSON in the directory (``scan.json``, ``--json``
  files) the mean throughput and p95 with their 95% interval over repeats (``loadgen.repeats``),
  the mean GPU power, inferences per joule and joules per inference (``loadgen.energy``; empty when
  no power was measured), and one plot of throughput against concurrency with the intervals as error
  bars. Left out when no level has repeats or energy.
- "Comparison": ``compare.json``/``compare.png`` written by ``saturate compare --out`` into the
  directory (``scans.compare.output.html_section``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from loadgen.result import SCHEMA, LevelResult, RunResult
from scans.compare.output import html_section


def _runs(source: Path) -> list[tuple[str, list[LevelResult]]]:
    files = [source] if source.is_file() else sorted(source.glob("*.json"))
    out = []
    for f in files:
        try:
            doc = json.loads(f.read_text())
            if isinstance(doc, dict) and doc.get("schema") == SCHEMA:
                out.append((f.name, RunResult.from_dict(doc).levels))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def _stat(level: LevelResult, key: str) -> dict[str, Any]:
    return dict(((level.extras.get("repeats") or {}).get("stats") or {}).get(key) or {})


def _ci(st: dict[str, Any], scale: float = 1.0) -> str:
    if st.get("mean") is None:
        return "-"
    if st.get("ci_low") is None:
        return f"{st['mean'] * scale:.4g}"
    return f"{st['mean'] * scale:.4g} [{st['ci_low'] * scale:.4g}, {st['ci_high'] * scale:.4g}]"


def _num(x: Any) -> str:
    return "-" if x is None else f"{x:.4g}"


def _plot(runs: list[tuple[str, list[LevelResult]]], dpi: int) -> bytes | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = False
    for name, levels in runs:
        for batch in sorted({lv.batch_size or 1 for lv in levels}):
            mine = [lv for lv in levels if (lv.batch_size or 1) == batch]
            pts = sorted(((lv.value, _stat(lv, "infer_per_s")) for lv in mine), key=lambda t: t[0])
            pts = [(x, s) for x, s in pts if s.get("mean") is not None]
            if not pts:
                continue
            xs = [x for x, _ in pts]
            ys = [s["mean"] for _, s in pts]
            lo = [s["mean"] - (s["ci_low"] if s.get("ci_low") is not None else s["mean"]) for _, s in pts]
            hi = [(s["ci_high"] if s.get("ci_high") is not None else s["mean"]) - s["mean"] for _, s in pts]
            ax.errorbar(xs, ys, yerr=[lo, hi], capsize=3, marker="o", label=f"{name} b{batch}")
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("concurrency (or request rate)")
    ax.set_ylabel("infer/s (mean, 95% CI over repeats)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def repeats_energy_section(source: Path, dpi: int = 100) -> tuple[str, str] | None:
    from scans.report.html import esc, figure, table

    runs = _runs(source)
    has = any(lv.extras.get("repeats") or (lv.extras.get("energy") or {}).get("power_w") is not None
              for _, levels in runs for lv in levels)
    if not has:
        return None
    parts = []
    for name, levels in runs:
        rows = []
        for lv in levels:
            en = lv.extras.get("energy") or {}
            rows.append([esc(f"{lv.mode} {lv.value:g} b{lv.batch_size or 1}"),
                         esc((lv.extras.get("repeats") or {}).get("n", 1)),
                         esc(_ci(_stat(lv, "infer_per_s")) if _stat(lv, "infer_per_s") else
                             _num(lv.throughput.infer_per_s)),
                         esc(_ci(_stat(lv, "p95_us"), 1e-3)),
                         esc(_num(en.get("power_w"))), esc(_num(en.get("infer_per_j"))),
                         esc(_num(en.get("j_per_infer"))), esc(en.get("source") or "-")])
        parts.append(f"<h3>{esc(name)}</h3>" + table(
            ["level", "repeats", "infer/s [95% CI]", "p95 ms [95% CI]", "power W", "infer/J", "J/infer",
             "power from"], rows))
    png = _plot(runs, dpi)
    if png is not None:
        parts.append(figure(png, "repeats", "throughput vs load, mean and 95% interval over repeats"))
    return "Repeats and energy", "".join(parts)


def report_sections(source: Path, dpi: int = 100) -> list[tuple[str, str]]:
    out = []
    for sec in (repeats_energy_section(source, dpi), html_section(source) if source.is_dir() else None):
        if sec is not None:
            out.append(sec)
    return out
