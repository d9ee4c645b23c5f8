"""The answer first: a scan's headline, for the top of report.html, the last lines of a scan on the
terminal, and ``summary.json``.

From a run JSON (``saturate.run/1``) with a server scan's ``analysis``: the best throughput within the
latency budget (the knee) and at which batch and concurrency; what saturated first (the first level,
in load order within the knee's batch, whose verdict is not ``none``, with its first reason as
evidence); the client's own cost, GPU utilisation and SM activity at the knee level; and whether
every level was valid. A direct scan's headline is its best items/s and at which batch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scans.analysis import level_name
from scans.report.html import esc

SUMMARY_SCHEMA = "saturate.summary/1"
SUMMARY_NAME = "summary.json"


@dataclass(frozen=True)
class Headline:
    """The headline numbers of one run JSON (None where the run has no such number)."""

    source: str
    kind: str  # "server" or "direct"
    budget_ms: float | None = None
    best_infer_per_s: float | None = None
    batch_size: int | None = None
    concurrency: int | None = None
    p95_ms: float | None = None
    level: str | None = None
    saturated_first: str | None = None  # verdict of the first saturated level ("none": nothing)
    saturated_level: str | None = None
    saturated_evidence: str | None = None
    client_cpu_us_per_request: float | None = None
    client_cpu_pct_per_process: float | None = None
    gpu_util_pct: float | None = None
    sm_active_pct: float | None = None
    levels: int = 0
    invalid_levels: list[str] = field(default_factory=list)
    traffic: str | None = None  # "drawn shapes P~poisson(40), S~poisson(5)" (None: fixed shapes)

    @property
    def all_valid(self) -> bool:
        return not self.invalid_levels

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "all_valid": self.all_valid}

    def sentences(self) -> list[str]:
        """The headline as plain sentences (terminal lines; the HTML uses the same text)."""
        if self.kind == "direct":
            if self.best_infer_per_s is None:
                return [f"{self.source}: no batch size completed"]
            return [f"Best direct throughput: {self.best_infer_per_s:.4g} items/s at batch "
                    f"{self.batch_size}.", *self._traffic(), _validity(self)]
        budget = "no latency budget" if self.budget_ms is None else f"the {self.budget_ms:g} ms p95 budget"
        if self.best_infer_per_s is None:
            out = [f"No level stayed within {budget}."]
        else:
            p95 = "" if self.p95_ms is None else f" (p95 {self.p95_ms:.3g} ms)"
            out = [f"Best within {budget}: {self.best_infer_per_s:.4g} infer/s at batch {self.batch_size}, "
                   f"concurrency {self.concurrency}{p95}."]
        out += self._traffic()
        if self.saturated_first in (None, "none"):
            out.append("Nothing saturated within the grid: more load may still give more throughput.")
        else:
            why = f": {self.saturated_evidence}" if self.saturated_evidence else ""
            out.append(f"Saturated first: {self.saturated_first} at {self.saturated_level}{why}.")
        if self.best_infer_per_s is not None:
            cpu = ("unknown" if self.client_cpu_us_per_request is None else
                   f"{self.client_cpu_us_per_request:.0f} µs CPU per request")
            if self.client_cpu_pct_per_process is not None:
                cpu += f" ({self.client_cpu_pct_per_process:.0f}% of a core per process)"
            out.append(f"Client's own cost at {self.level}: {cpu}.")
            gpu = "no GPU samples" if self.gpu_util_pct is None else f"utilisation {self.gpu_util_pct:.0f}%"
            sm = "" if self.sm_active_pct is None else f", SM activity {self.sm_active_pct:.0f}%"
            out.append(f"GPU at {self.level}: {gpu}{sm}.")
        out.append(_validity(self))
        return out


    def _traffic(self) -> list[str]:
        return [] if self.traffic is None else [f"Traffic: {self.traffic}."]


def _traffic_of(config: Any) -> str | None:
    """The shape distribution a run recorded in its config (scan server: under ``load``)."""
    if not isinstance(config, dict):
        return None
    dist = (config.get("load") or {}).get("shape_dist") if "load" in config else config.get("shape_dist")
    if not isinstance(dist, dict):
        return None
    parts = [str(d) for d in dist.get("dims") or []]
    if dist.get("dims_file"):
        parts.append(f"rows of {dist['dims_file']}")
    return "drawn shapes " + ", ".join(parts) if parts else None


def _validity(h: Headline) -> str:
    if h.all_valid:
        return f"All {h.levels} levels valid."
    shown = ", ".join(h.invalid_levels[:6]) + (" …" if len(h.invalid_levels) > 6 else "")
    return f"{len(h.invalid_levels)} of {h.levels} levels not valid: {shown}."


def _name(raw: dict[str, Any]) -> str:
    return level_name(int(raw.get("concurrency") or 0), int(raw.get("batch_size") or 1))


def _reason_text(reasons: list[Any]) -> str | None:
    return str(reasons[0]).rstrip(".") if reasons else None


def from_run(doc: dict[str, Any], source: str) -> Headline | None:
    """The headline of one run JSON document; None when it holds neither a server scan nor a direct scan."""
    levels = [lv for lv in doc.get("levels") or [] if isinstance(lv, dict)]
    direct = [lv for lv in levels if lv.get("mode") == "direct"]
    if direct:
        ok = [lv for lv in direct if (lv.get("direct") or {}).get("status") == "ok"]
        best = max(ok, key=lambda lv: lv["direct"]["items_per_s"], default=None)
        bad = [f"b{lv.get('batch_size')} ({(lv.get('direct') or {}).get('status')})" for lv in direct
               if lv not in ok]
        if best is None:
            return Headline(source, "direct", levels=len(direct), invalid_levels=bad)
        return Headline(source, "direct", best_infer_per_s=best["direct"]["items_per_s"],
                        batch_size=best.get("batch_size"), levels=len(direct), invalid_levels=bad,
                        traffic=_traffic_of(doc.get("config")))
    an = doc.get("analysis")
    served = [lv for lv in levels if lv.get("mode") in ("concurrency", "request_rate")]
    if not isinstance(an, dict) or not served:
        return None
    verdicts: dict[str, Any] = an.get("verdicts") or {}
    knee = an.get("knee") or {}
    invalid = [f"{_name(lv)} ({lv.get('stability')})" for lv in served
               if not (verdicts.get(_name(lv)) or lv.get("verdict") or {}).get("valid", lv.get("stable"))]
    kb = knee.get("batch_size")
    order = sorted((lv for lv in served if kb is None or lv.get("batch_size") == kb),
                   key=lambda lv: (lv.get("concurrency") or 0, lv.get("request_rate") or 0))
    first = next((lv for lv in order if (verdicts.get(_name(lv)) or {}).get("saturated", "none") != "none"),
                 None)
    first_v = verdicts.get(_name(first)) if first else None
    kv = verdicts.get(str(knee.get("level"))) or {}
    ev = kv.get("evidence") or {}
    knee_raw = next((lv for lv in served if _name(lv) == knee.get("level")), None)
    cpu_us = None if knee_raw is None else (knee_raw.get("client") or {}).get("cpu_us_per_request")
    return Headline(
        source, "server", budget_ms=an.get("latency_budget_ms"), best_infer_per_s=knee.get("infer_per_s"),
        batch_size=kb, concurrency=knee.get("concurrency"), p95_ms=knee.get("p95_ms"),
        level=knee.get("level"), saturated_first="none" if first_v is None else first_v.get("saturated"),
        saturated_level=None if first is None else _name(first),
        saturated_evidence=None if first_v is None else _reason_text(list(first_v.get("reasons") or [])),
        client_cpu_us_per_request=cpu_us, client_cpu_pct_per_process=ev.get("client_cpu_pct_per_process"),
        gpu_util_pct=ev.get("gpu_util_pct"), sm_active_pct=ev.get("sm_active_pct"), levels=len(served),
        invalid_levels=invalid, traffic=_traffic_of(doc.get("config")))


def from_file(path: Path) -> Headline | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return from_run(doc, path.name) if isinstance(doc, dict) else None


def from_directory(root: Path, names: list[str]) -> list[Headline]:
    """Headlines of the run JSONs `names` in `root`: server scans first, then direct scans."""
    found = [h for h in (from_file(root / n) for n in names) if h is not None]
    return sorted(found, key=lambda h: h.kind != "server")


def write_summary(out: Path, headlines: list[Headline]) -> Path:
    """``summary.json``: the machine-readable headline of every run in the report."""
    target = out / SUMMARY_NAME
    doc = {"schema": SUMMARY_SCHEMA, "runs": [h.to_dict() for h in headlines]}
    target.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


def html_section(headlines: list[Headline]) -> str:
    """The report's opening box; empty when no run has a headline."""
    if not headlines:
        return ""
    parts = []
    for h in headlines:
        items = "".join(f"<li>{esc(s)}</li>" for s in h.sentences())
        parts.append(f'<div class="headline" data-source="{esc(h.source)}"><h2>The answer '
                     f'<span class="note">({esc(h.kind)} scan, {esc(h.source)})</span></h2>'
                     f"<ul>{items}</ul></div>")
    return "".join(parts)


def terminal_lines(path: Path) -> list[str]:
    """The headline of one run JSON as the last lines a scan prints (none when it has no headline)."""
    h = from_file(path)
    return [] if h is None else h.sentences()
