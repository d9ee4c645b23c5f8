"""One self-contained HTML page: inline CSS, PNGs as base64 data URIs, no scripts, no external links."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from typing import Any

from scans.report.readers import ReportData, SaturationRow

CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .88em; }
th, td { border: 1px solid #ccc; padding: .25em .55em; text-align: right; }
th { background: #f0f0f0; } td.l, th.l { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: .9em; } .bad { color: #b00; } .note { color: #555; }
.headline { background: #f4f8ff; border: 1px solid #9bb7e0; padding: .2em 1em; margin: 1em 0; }
.headline h2 { border: none; margin-top: .4em; } .headline li { margin: .25em 0; }
"""


DASH = "\u2013"  # en dash for a missing value


def esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def fmt(x: Any, digits: int = 4) -> str:
    """Numbers with ``digits`` significant digits; None as a dash."""
    if x is None:
        return DASH
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return esc(x)


def table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """An HTML table; cells are already-escaped strings, the first ``left`` columns left-aligned."""

    def cls(i: int) -> str:
        return ' class="l"' if i < left else ""

    head = "".join(f"<th{cls(i)}>{esc(h)}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def direct_tables(data: ReportData) -> str:
    parts = []
    for d in data.direct:
        rows = []
        for lv in d.levels:
            b = lv.get("direct") or {}
            if b.get("status") != "ok":
                rows.append([fmt(lv.get("batch_size")), f'<span class="bad">{esc(b.get("status"))}</span>',
                             *[DASH] * 8, esc(b.get("error") or "")])
                continue
            mem = b.get("peak_mem_bytes")
            rows.append([
                fmt(lv.get("batch_size")), "ok", fmt(b.get("trials")),
                f'{fmt(b["items_per_s"])} ± {fmt(b["items_per_s_sem"], 2)}',
                f'{fmt(b["mean_us"] / 1e3)} ± {fmt(b["sem_us"] / 1e3, 2)}',
                fmt(b["std_us"] / 1e3), fmt(b["median_us"] / 1e3), fmt(b["p95_us"] / 1e3),
                fmt(b["avg_time_us"] / 1e3), DASH if mem is None else fmt(mem / 2**20), "",
            ])
        header = ["batch", "status", "trials", "items/s ± SEM", "mean ms ± SEM", "std ms", "median ms",
                  "p95 ms", "avg time ms", "peak dev MiB", "note"]
        parts.append(f"<h3>{esc(d.label)} <span class=\"note\">({esc(d.source)})</span></h3>"
                     + table(header, rows, left=0))
    return "".join(parts)


def server_tables(data: ReportData) -> str:
    parts = []
    for s in data.server:
        rows = []
        for p in sorted(s.points, key=lambda p: p.load):
            rows.append([
                fmt(p.load), fmt(p.infer_per_s), fmt(p.p50_us and p.p50_us / 1e3),
                fmt(p.p95_us and p.p95_us / 1e3), fmt(p.p99_us and p.p99_us / 1e3),
                fmt(p.queue_us and p.queue_us / 1e3), fmt(p.compute_infer_us and p.compute_infer_us / 1e3),
                fmt(p.network_us and p.network_us / 1e3),
                fmt(p.client_own_us and p.client_own_us / 1e3),
                DASH if p.gpu_util is None else f"{100 * p.gpu_util:.0f}%",
                "yes" if p.stable else '<span class="bad">no</span>',
                DASH if p.saturated is None else esc(p.saturated),
            ])
        load = "concurrency" if s.mode == "concurrency" else "request rate"
        header = [load, "infer/s", "p50 ms", "p95 ms", "p99 ms", "queue ms", "compute infer ms",
                  "network ms", "client's own ms", "GPU util", "stable", "saturated"]
        parts.append(f"<h3>{esc(s.label)} <span class=\"note\">({esc(s.source)}, batch "
                     f"{esc(s.batch_size if s.batch_size is not None else 'unknown')})</span></h3>"
                     + table(header, rows, left=0))
    return "".join(parts)


def saturation_table(rows: list[SaturationRow]) -> str:
    body = [[fmt(r.batch_size), esc(r.server_label), esc(r.direct_label), fmt(r.server_best),
             fmt(r.best_load), f"{fmt(r.direct_ceiling)} ± {fmt(r.direct_sem, 2)}", f"{r.ratio:.3f}"]
            for r in rows]
    header = ["batch", "server series", "direct scan", "best server infer/s", "at load",
              "direct items/s ± SEM", "ratio"]
    return table(header, body, left=0)


def analysis_tables(data: ReportData) -> str:
    """Per server-scan JSON: the knee within the latency budget (overall, per batch) and each verdict."""
    parts = []
    for name, an in data.analyses.items():
        budget = an.get("latency_budget_ms")
        knees = [("all", an.get("knee")), *(an.get("knee_per_batch") or {}).items()]
        rows = [[esc(b), DASH, DASH, DASH, DASH, "no level within the budget"] if k is None else
                [esc(b), esc(k.get("level")), fmt(k.get("infer_per_s")), fmt(k.get("p95_ms")),
                 esc(k.get("saturated")), "" if k.get("valid", True) else "no stable level; best measured"]
                for b, k in knees]
        verdicts = [[esc(lv), esc(v.get("saturated")), fmt(v.get("valid")),
                     esc("; ".join(str(r) for r in v.get("reasons") or []))]
                    for lv, v in (an.get("verdicts") or {}).items()]
        parts.append(
            f"<h3>{esc(name)}</h3><p class=\"note\">Knee: the highest throughput whose p95 stays within "
            f"{'no budget' if budget is None else esc(f'{budget:g} ms')}.</p>"
            + table(["batch", "knee level", "infer/s", "p95 ms", "saturated", "note"], rows, left=2)
            + table(["level", "saturated", "valid", "evidence and reasons"], verdicts, left=4))
    return "".join(parts)


def env_tables(data: ReportData) -> str:
    parts = []
    for name, env in data.envs.items():
        rows = [[esc(k), esc(v)] for k, v in env.items()]
        cfg = data.configs.get(name, {})
        cfg_rows = [[esc(k), esc(v)] for k, v in cfg.items()]
        parts.append(f"<h3>{esc(name)}</h3>" + table(["environment", "value"], rows, left=2)
                     + table(["setting", "value"], cfg_rows, left=2))
    return "".join(parts) or '<p class="note">No run JSON here: perf_analyzer CSVs carry no environment.</p>'


def page(title: str, data: ReportData, figures: list[str], saturation: list[SaturationRow],
         generated: str, extra: Sequence[tuple[str, str]] = (), headline: str = "") -> str:
    """The whole report page as one string; ``extra``: (title, HTML) sections such as scaling."""
    sections = [f"<h1>{esc(title)}</h1>",
                f'<p class="note">saturate report, generated {esc(generated)}; read '
                f'{esc(", ".join(data.used))}.</p>', headline]
    if figures:
        sections += ["<h2>Plots</h2>", *figures]
    if saturation:
        sections += ["<h2>Saturation: server vs direct inference</h2>", saturation_table(saturation)]
    if data.analyses:
        sections += ["<h2>Knee and saturation verdicts</h2>", analysis_tables(data)]
    if data.direct:
        sections += ["<h2>Direct inference scans</h2>",
                     '<p class="note">items/s = total items / total time (SEM by error propagation of the '
                     "mean call time); SEM = std/√n over the timed trials after warm-up.</p>",
                     direct_tables(data)]
    if data.server:
        sections += ["<h2>Server levels</h2>", server_tables(data)]
    for heading, body in extra:
        sections += [f"<h2>{esc(heading)}</h2>", body]
    sections += ["<h2>Environment and settings</h2>", env_tables(data)]
    if data.skipped:
        sections += ["<h2>Files not used</h2>",
                     table(["file", "why"], [[esc(f), esc(w)] for f, w in data.skipped], left=2)]
    body = "\n".join(sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<link rel="icon" href="data:,">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")
