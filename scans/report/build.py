"""``saturate report DIR``: read a result directory, draw the PNGs, write one self-contained page.

Output: ``OUT/plots/<name>.png`` for every plot that has data, and ``OUT/report.html`` with the same
images embedded as data URIs (the page opens anywhere, alone), tables and the environment.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

from saturate.atomic import write_atomic
from saturate.errors import ConfigError
from scans.report import headline
from scans.report.extras import report_sections
from scans.report.html import figure, page
from scans.report.plots import PLOTS, STYLES, style_context
from scans.report.readers import ReportData, load_directory, saturation_rows
from scans.report.scaling import html_fragment, write_scaling

HTML_NAME = "report.html"
PLOT_DIR = "plots"


@dataclass(frozen=True)
class ReportConfig:
    source: Path
    out: Path
    style: str = "default"
    title: str = "saturate report"
    dpi: int = 100
    compare: Path | None = None  # --compare DIR2: overlays (scans.report.overlay)

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ConfigError(f"unknown plot style {self.style!r}; use one of: {', '.join(STYLES)}")


def make_report(cfg: ReportConfig) -> Path:
    """Write the plots and ``report.html``; returns the page's path."""
    scaling = write_scaling(cfg.source, cfg.out, cfg.dpi)  # sweep.jsonl → scaling.csv/.md/.png
    from scans.tune.report import tune_section  # issue #16: a tune directory's section
    tune = tune_section(cfg.source, cfg.dpi)
    try:
        data = load_directory(cfg.source)
    except ConfigError:
        if scaling is None and tune is None:
            raise
        data = ReportData()  # a sweep or tune directory: its own section only
    plot_dir = cfg.out / PLOT_DIR
    try:
        plot_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot write to {cfg.out} ({exc.strerror}); give a writable --out") from None
    figures: list[str] = []
    with style_context(cfg.style):
        for spec in PLOTS:
            fig = spec.draw(data)
            if fig is None:
                (plot_dir / f"{spec.name}.png").unlink(missing_ok=True)  # stale from an earlier report
                continue
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=cfg.dpi)
            png = buf.getvalue()
            (plot_dir / f"{spec.name}.png").write_bytes(png)
            figures.append(figure(png, spec.name, spec.caption))
    extra: list[tuple[str, str]] = []
    if scaling is not None:
        chart = "" if scaling.png is None else figure(scaling.png, "scaling", "strong and weak scaling vs N")
        extra.append(("Scaling", html_fragment(scaling.tables, chart)))
    if cfg.compare is not None:
        from scans.report.overlay import compare_section

        section = compare_section(cfg.source, data, cfg.compare, plot_dir, cfg.dpi)
        extra.insert(0, (f"Compared with {cfg.compare}", section))
    headlines = headline.from_directory(cfg.source, [n for n in data.used if n.endswith(".json")])
    headline.write_summary(cfg.out, headlines)
    extra += report_sections(cfg.source, cfg.dpi)  # issue 17: repeats' intervals, energy, compare
    if tune is not None:
        extra.append(tune)
        data.skipped = [s for s in data.skipped if s[0] != "tune.json"]
    text = page(cfg.title, data, figures, saturation_rows(data), time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                extra, headline=headline.html_section(headlines))
    return write_atomic(cfg.out / HTML_NAME, text)
