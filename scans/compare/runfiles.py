"""Result sources for compare: saturate's run JSON (``saturate.run/1``) or perf_analyzer CSVs.

A path is a run JSON, a perf_analyzer-format CSV (perf_analyzer's own or ours, via
``loadgen.csvfmt.read_csv``), or a directory: its run JSONs when it has any (``scan.json``,
``--json`` files), else its CSVs (``*.extra.csv`` and ``monitor.csv`` skipped). A CSV has no batch
column: ``b16.csv``/``…_b16.csv`` names give it, else the batch is unknown and matches any.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from loadgen.csvfmt import read_csv
from loadgen.result import SCHEMA, LevelResult, RunResult
from saturate.errors import ConfigError

_BATCH = re.compile(r"(?:^|_)b(\d+)(?:[_.]|$)")


@dataclass(frozen=True)
class Run:
    """One compared run: where it came from and its levels."""

    label: str
    levels: list[LevelResult]


def _csv_levels(path: Path) -> list[LevelResult]:
    try:
        table = read_csv(path)
    except (ValueError, KeyError, IndexError) as exc:
        raise ConfigError(f"{path}: not a perf_analyzer CSV ({exc})") from None
    m = _BATCH.search(path.stem)
    out = []
    for lv in table.levels:
        if lv.batch_size is None and m is not None:
            from dataclasses import replace

            lv = replace(lv, batch_size=int(m.group(1)))
        out.append(lv)
    return out


def _json_levels(path: Path) -> list[LevelResult] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        return None
    try:
        return RunResult.from_dict(doc).levels
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: does not parse as a {SCHEMA} run ({exc})") from None


def load_run(path: Path) -> Run:
    """The levels of one file or directory (ConfigError naming the fix when there are none)."""
    if not path.exists():
        raise ConfigError(f"{path}: no such file or directory; give result files or directories")
    if path.is_file():
        if path.suffix == ".csv":
            return Run(str(path), _csv_levels(path))
        levels = _json_levels(path)
        if levels is None:
            raise ConfigError(f"{path}: not a {SCHEMA} JSON or a perf_analyzer CSV")
        return Run(str(path), levels)
    found: list[LevelResult] = []
    for f in sorted(path.glob("*.json")):
        found += _json_levels(f) or []
    if not found:
        for f in sorted(path.glob("*.csv")):
            if f.name.endswith(".extra.csv") or f.name == "monitor.csv":
                continue
            try:
                found += _csv_levels(f)
            except ConfigError:
                continue
    if not found:
        raise ConfigError(f"{path}: no {SCHEMA} JSON or perf_analyzer CSV in this directory")
    return Run(str(path), found)
