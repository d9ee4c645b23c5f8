"""What a tune writes and prints: ``tune.json``, the ranked table, the winner, the Pareto PNG.

``tune.json`` (``format`` saturate.tune/1, rewritten after every level) holds the settings, every
candidate (its full server configuration, status and reason, every level measured with its tail and
whether that tail is claimable, the concurrency search of each client batch, its best point) and the
winner. The winner is printed as the ``saturate serve`` command that reproduces it, the
``saturate load`` command that loads it at the chosen point, and the PyTriton settings it means,
with the confirmation runs' figures (:mod:`scans.tune.confirm`) beside the search's.
"""

from __future__ import annotations

import io
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loadgen.result import write_json_atomic
from scans.tune.pareto import Point, pareto_front
from scans.tune.space import Candidate

FORMAT = "saturate.tune/1"
JSON_NAME = "tune.json"
PNG_NAME = "pareto.png"


def write_doc(out: Path, doc: Mapping[str, Any]) -> None:
    write_json_atomic(out / JSON_NAME, doc)


def measured_points(doc: Mapping[str, Any]) -> list[Point]:
    """Every level with a claimable tail, over all candidates."""
    pts: list[Point] = []
    for rec in doc.get("candidates", []):
        for lv in rec.get("levels", []):
            if lv.get("tail_valid") and lv.get("tail_ms") is not None and lv.get("throughput", 0) > 0:
                pts.append(
                    Point(
                        rec["candidate"]["name"],
                        int(lv["batch"]),
                        int(lv["concurrency"]),
                        float(lv["throughput"]),
                        float(lv["tail_ms"]),
                    )
                )
    return pts


def ranked(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Candidates by best throughput within the budget (failed and never-met last)."""
    return sorted(doc.get("candidates", []), key=lambda r: -(r.get("best") or {}).get("throughput", -1.0))


def ranked_table(doc: Mapping[str, Any]) -> list[list[str]]:
    pct = doc["config"]["tail"]["percentile"]
    rows = [
        ["rank", "candidate", "status", "batch", "concurrency", "infer/s", f"p{pct} ms", "samples", "levels",
         "confirmed infer/s [min-max]", f"confirmed p{pct} ms"]
    ]  # fmt: skip
    for i, rec in enumerate(ranked(doc), 1):
        best = rec.get("best") or {}
        rows.append(
            [
                str(i),
                rec["candidate"]["name"],
                rec["status"] + (f" ({rec['reason']})" if rec.get("reason") else ""),
                str(best.get("batch", "-")),
                str(best.get("concurrency", "-")),
                f"{best['throughput']:.1f}" if best else "-",
                f"{best['tail_ms']:.2f}" if best else "-",
                str(best.get("samples", "-")),
                str(len(rec.get("levels", []))),
                *confirmed_cells(rec),
            ]
        )
    return rows


def confirmed_cells(rec: Mapping[str, Any]) -> list[str]:
    """The ranked table's confirmation columns: median [min-max] infer/s and median tail, or why not."""
    conf = rec.get("confirmation") or {}
    s = conf.get("summary") or {}
    if not conf:
        return ["-", "-"]
    if s.get("throughput_median") is None:
        return [conf["status"], "-"]
    mark = "" if conf["status"] == "done" else f" ({conf['status']}, {s['runs']}/{s['requested']} runs)"
    tail = "-" if s.get("tail_ms_median") is None else f"{s['tail_ms_median']:.2f}"
    over = " (over budget)" if s.get("within_budget") is False else ""
    return [
        f"{s['throughput_median']:.1f} [{s['throughput_min']:.1f}-{s['throughput_max']:.1f}]{mark}",
        tail + over,
    ]


def format_table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def winner(doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    top = ranked(doc)
    return top[0] if top and top[0].get("best") else None


def candidate_of(rec: Mapping[str, Any]) -> Candidate:
    c = rec["candidate"]
    return Candidate(
        instances=c["instances"],
        max_batch=c["max_batch"],
        max_queue_delay_us=c["max_queue_delay_us"],
        preferred_batch=tuple(c["preferred_batch"]),
        external=c.get("external", False),
    )


def winner_commands(doc: Mapping[str, Any], rec: Mapping[str, Any]) -> dict[str, str]:
    cfg, best = doc["config"], rec["best"]
    cand = candidate_of(rec)
    serve = [
        "saturate",
        "serve",
        "--model",
        cfg["model"],
        "--backend",
        cfg["backend"],
        "--device",
        cfg["device"],
        *cand.serve_flags(),
    ]
    load = [
        "saturate",
        "load",
        "-m",
        cfg["model"],
        "-u",
        "HOST:8001",
        "-b",
        str(best["batch"]),
        "--concurrency-range",
        f"{best['concurrency']}:{best['concurrency']}:1",
        "--percentile",
        str(cfg["tail"]["percentile"]),
        "-p",
        str(cfg["load"]["measurement_interval_ms"]),
    ]
    for name, dims in (cfg["load"].get("shapes") or {}).items():
        load += ["--shape", f"{name}:{','.join(map(str, dims))}"]
    out = {"load": shlex.join(load)}
    if not cand.external:
        out["serve"] = shlex.join(serve)
        out["pytriton"] = cand.pytriton()
    return out


def summary_text(doc: Mapping[str, Any]) -> str:
    """The ranked table, then the winner (what the terminal shows at the end)."""
    lines = [format_table(ranked_table(doc)), ""]
    rec = winner(doc)
    budget, pct = doc["config"]["latency_budget_ms"], doc["config"]["tail"]["percentile"]
    if rec is None:
        lines.append(f"no candidate met the p{pct} budget of {budget:g} ms with a claimable tail")
        return "\n".join(lines)
    best = rec["best"]
    lines.append(
        f"winner: {rec['candidate']['name']}: {best['throughput']:.1f} infer/s at batch {best['batch']}, "
        f"concurrency {best['concurrency']}, p{pct} {best['tail_ms']:.2f} ms (budget {budget:g} ms)"
    )
    lines += confirmed_lines(rec, pct, budget)
    gain = doc.get("gain_over_defaults")
    if gain is not None:
        basis = (
            "from the confirmed medians"
            if doc.get("gain_basis") == "confirmed"
            else "from the search's figures (not both confirmed)"
        )
        lines.append(f"gain over PyTriton's defaults (1 instance, no queue delay): x{gain:.2f}, {basis}")
    for key, cmd in winner_commands(doc, rec).items():
        lines.append(f"  {key}: {cmd}")
    return "\n".join(lines)


def confirmation_of(rec: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``rec``'s confirmation record when it is of ``rec``'s best point (else None)."""
    conf, best = rec.get("confirmation"), rec.get("best") or {}
    point = ("batch", "concurrency")
    if not conf or [conf.get(k) for k in point] != [best.get(k) for k in point]:
        return None
    found: Mapping[str, Any] = conf
    return found


def confirmed_lines(rec: Mapping[str, Any], pct: int, budget: float) -> list[str]:
    """What the winner's confirmation says under the winner line (nothing when there was none)."""
    conf = confirmation_of(rec)
    if conf is None:
        return []
    s = conf.get("summary") or {}
    why = f" ({conf['reason']})" if conf.get("reason") else ""
    if s.get("throughput_median") is None:
        return [f"confirmation {conf['status']}{why}: the search's figures above are unconfirmed"]
    tail = s.get("tail_ms_median")
    out = [
        f"confirmed over {s['runs']} of {s['requested']} fresh runs ({conf['status']}{why}): median "
        f"{s['throughput_median']:.1f} infer/s (min {s['throughput_min']:.1f}, "
        f"max {s['throughput_max']:.1f}), "
        + (f"p{pct} median {tail:.2f} ms" if tail is not None else "no tail")
        + (f", {s['vs_search'] * 100:+.1f} % vs the search" if s.get("vs_search") is not None else "")
    ]
    if s.get("within_budget") is False:
        out.append(
            f"FLAGGED: the confirmed p{pct} median {s['tail_ms_median']:.2f} ms breaks the {budget:g} ms "
            "budget; the search's figures above did not reproduce"
        )
    return out


def defaults_record(doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The 1-instance, no-delay, no-preferred candidate (PyTriton's defaults), when it has a best point."""
    return next(
        (
            r
            for r in doc.get("candidates", [])
            if r["candidate"]["instances"] == 1
            and r["candidate"]["max_queue_delay_us"] == 0
            and not r["candidate"]["preferred_batch"]
            and r.get("best")
        ),
        None,
    )


def gain_over_defaults(doc: Mapping[str, Any]) -> float | None:
    """Winner's throughput over the defaults candidate's (the search's figures; see confirm.gain)."""
    rec, base = winner(doc), defaults_record(doc)
    if rec is None or base is None or not base["best"]["throughput"]:
        return None
    return float(rec["best"]["throughput"]) / float(base["best"]["throughput"])


def pareto_png(doc: Mapping[str, Any], dpi: int = 100) -> bytes | None:
    """Throughput vs tail latency of every claimable level, the front joined, the budget drawn."""
    pts = measured_points(doc)
    if not pts:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        names = list(dict.fromkeys(p.candidate for p in pts))
        for name in names:
            mine = [p for p in pts if p.candidate == name]
            ax.scatter(
                [p.latency_ms for p in mine], [p.throughput for p in mine], s=18, label=name, alpha=0.7
            )
        front = pareto_front(pts)
        ax.plot(
            [p.latency_ms for p in front], [p.throughput for p in front], "k-", lw=1.2, label="Pareto front"
        )
        ax.axvline(doc["config"]["latency_budget_ms"], color="r", ls="--", lw=1, label="budget")
        ax.set_xlabel(f"p{doc['config']['tail']['percentile']} latency (ms)")
        ax.set_ylabel("throughput (infer/s)")
        ax.set_title("saturate tune: throughput vs tail latency")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()
    finally:
        plt.close(fig)
