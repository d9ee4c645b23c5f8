"""The report hook: a "Tune" section (ranked table, Pareto plot, winner) when a directory holds tune.json."""

from __future__ import annotations

import json
from pathlib import Path

from scans.report.html import esc, figure, table
from scans.tune import output

HEADING = "Tune: best serving configuration under the latency budget"


def tune_section(source: Path, dpi: int = 100) -> tuple[str, str] | None:
    """(heading, HTML) for ``source/tune.json``, or None when there is none (or it does not parse)."""
    try:
        doc = json.loads((source / output.JSON_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != output.FORMAT:
        return None
    rows = output.ranked_table(doc)
    parts = [table(rows[0], [[esc(c) for c in r] for r in rows[1:]], left=3)]
    png = output.pareto_png(doc, dpi)
    if png is not None:
        parts.append(
            figure(
                png,
                "tune_pareto",
                "throughput vs tail latency of every claimable level, "
                "all candidates; the line is the Pareto front",
            )
        )
    summary = output.summary_text(doc).split("\n\n", 1)[-1]
    parts.append(f"<pre>{esc(summary)}</pre>")
    notes = [
        f"{r['candidate']['name']} batch {b}: {n}"
        for r in doc.get("candidates", [])
        for b, s in r.get("batches", {}).items()
        for n in s.get("notes", [])
    ]
    if notes:
        parts.append(
            "<p>Tail claims resting on too few samples:</p><ul>"
            + "".join(f"<li>{esc(n)}</li>" for n in notes)
            + "</ul>"
        )
    return HEADING, "\n".join(parts)
