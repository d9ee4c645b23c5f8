"""Compare's outputs: the console table, ``compare.json``, ``compare.csv``, ``compare.png`` and the
HTML section ``saturate report`` puts in report.html when the directory holds a ``compare.json``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadgen.result import write_json_atomic
from scans.compare.significance import METRICS, Change, LevelChange

JSON_NAME = "compare.json"
CSV_NAME = "compare.csv"
PNG_NAME = "compare.png"
_MARK = {"improved": "+", "regressed": "!", "same": "=", "unknown": "?"}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}%"


def cell(c: Change) -> str:
    ci = "" if c.ci_low is None else f" [{_pct(c.ci_low)}, {_pct(c.ci_high)}]"
    return f"{_pct(c.rel)}{ci} {_MARK[c.status]}"


def console_table(base: str, other: str, rows: Sequence[LevelChange]) -> str:
    head = (f"compare: {other} vs {base} (change [95% CI]; ! regressed, + improved, "
            "= no significant change, ? no interval)")
    lines = [head, f"{'level':<14}" + "".join(f"{m:>30}" for m in METRICS)]
    for r in rows:
        lines.append(f"{r.name:<14}" + "".join(f"{cell(r.changes[m]):>30}" for m in METRICS))
    if not rows:
        lines.append("(no level of B matches a level of A on mode, batch and concurrency/rate)")
    return "\n".join(lines)


Compared = Sequence[tuple[str, list[LevelChange]]]


def document(base: str, others: Compared, verdict: dict[str, Any]) -> dict[str, Any]:
    return {"schema": "saturate.compare/1", "baseline": base,
            "runs": [{"label": lab, "levels": [r.to_dict() for r in rows]} for lab, rows in others],
            "gates": verdict}


def write_csv(path: Path, others: Sequence[tuple[str, list[LevelChange]]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "level", "metric", "a", "b", "change", "ci_low", "ci_high", "basis", "status"])
        for lab, rows in others:
            for r in rows:
                for m in METRICS:
                    c = r.changes[m]
                    w.writerow([lab, r.name, m, *("" if v is None else f"{v:.6g}"
                                                  for v in (c.a, c.b, c.rel, c.ci_low, c.ci_high)),
                                c.basis or "", c.status])


Bar = tuple[float, float, float]  # value, error below, error above


def _bars(rows: Sequence[LevelChange], metric: str, side: str) -> dict[str, Bar]:
    out: dict[str, Bar] = {}
    for r in rows:
        c = r.changes[metric]
        v = c.a if side == "a" else c.b
        if v is None:
            continue
        lo = hi = 0.0
        if side == "b" and c.a is not None and None not in (c.rel, c.ci_low, c.ci_high):
            lo, hi = (c.rel - c.ci_low) * c.a, (c.ci_high - c.rel) * c.a  # type: ignore[operator]
        out[r.name] = (v, lo, hi)
    return out


def plot(others: Sequence[tuple[str, list[LevelChange]]], base: str) -> bytes | None:
    """Throughput and p95 per level, A and each other run side by side (error bars: 95% CI)."""
    if not any(rows for _, rows in others):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    names = list(dict.fromkeys(r.name for _, rows in others for r in rows))
    width = 0.8 / (1 + len(others))
    panels = ((axes[0], "throughput", "infer/s", 1.0), (axes[1], "p95", "p95 ms", 1e-6))
    for ax, metric, unit, scale in panels:
        series = [(base, _bars(others[0][1], metric, "a"))]
        series += [(lab, _bars(rows, metric, "b")) for lab, rows in others]
        for j, (lab, bars) in enumerate(series):
            idx = [i for i, n in enumerate(names) if n in bars]
            vals = [bars[names[i]] for i in idx]
            ax.bar([i + j * width for i in idx], [v[0] * scale for v in vals], width, capsize=3,
                   yerr=[[v[1] * scale for v in vals], [v[2] * scale for v in vals]],
                   label=Path(lab).name or lab)
        ax.set_xticks([i + width * len(others) / 2 for i in range(len(names))], names, rotation=30)
        ax.set_ylabel(unit)
    axes[0].legend(fontsize="small")
    fig.suptitle("compare: per level (error bars: 95% CI of the difference, on B)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def write_all(out: Path, doc: dict[str, Any], others: Sequence[tuple[str, list[LevelChange]]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / JSON_NAME, doc)
    write_csv(out / CSV_NAME, others)
    png = plot(others, doc["baseline"])
    if png is not None:
        (out / PNG_NAME).write_bytes(png)


def html_section(source: Path) -> tuple[str, str] | None:
    """("Comparison", HTML) from ``source/compare.json`` (+ its PNG), None when there is none."""
    path = source / JSON_NAME
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    from scans.report.html import esc, figure, table

    parts = [f"<p>baseline: {esc(doc.get('baseline'))}; change = B/A - 1 [95% CI]; "
             "! regressed, + improved, = no significant change, ? no interval</p>"]
    for run in doc.get("runs") or []:
        rows = []
        for lv in run.get("levels") or []:
            ch = lv.get("changes") or {}
            cells = [esc(cell(Change(**ch[m]))) if m in ch else "-" for m in METRICS]
            rows.append([esc(lv.get("level")), *cells])
        parts.append(f"<h3>{esc(run.get('label'))}</h3>" + table(["level", *METRICS], rows))
    gates = doc.get("gates") or {}
    if gates.get("gates"):
        state = "passed" if gates.get("passed") else f"{len(gates.get('failures') or [])} failed"
        parts.append(f"<p>gates ({esc(', '.join(gates['gates']))}): {esc(state)}</p>")
    png = source / PNG_NAME
    if png.is_file():
        parts.append(figure(png.read_bytes(), "compare", "A vs B per level"))
    return "Comparison", "".join(parts)
