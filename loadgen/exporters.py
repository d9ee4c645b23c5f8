"""A run's output formats, one class each behind one protocol, rewritten after every level.

Modelled on hyperfine's ``src/export/`` (one exporter per format behind one trait): each
:class:`Exporter` owns its file and writes it whole and atomically (``saturate.atomic``) from the run
as it stands, so a run cut short leaves every file consistent with the levels measured so far.

    JsonExporter      the run JSON (saturate.run/1, ``--json``)
    CsvExporter       perf_analyzer's CSV (``-f``) and its ``.extra.csv`` beside it (loadgen.extras_csv)
    LatencyExporter   the raw latencies (``--latency-file``): per level ``L<i>`` the latencies in ns,
                      ``D<i>`` the measured duration in ns, ``B<i>`` the batch size — read back by
                      ``scans.jobs.merge``

A new output format is one class here and one line in :func:`exporters_for`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from loadgen.csvfmt import CsvOptions, write_csv
from loadgen.extras_csv import write_extra_csv
from loadgen.result import RunResult, WindowStats, write_json_atomic
from saturate.atomic import atomic_file


@dataclass(frozen=True)
class LevelUpdate:
    """What changed: level ``index``, the windows its result merges; ``accumulate`` adds them to the
    level's earlier ones (``--repeats`` rounds)."""

    index: int
    merged: Sequence[WindowStats]
    accumulate: bool = False


class Exporter(Protocol):
    """One output file of a run."""

    @property
    def path(self) -> Path: ...

    def export(self, run: RunResult, update: LevelUpdate) -> None:
        """Rewrite the file for ``run`` after ``update``."""
        ...


class JsonExporter:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def export(self, run: RunResult, update: LevelUpdate) -> None:
        write_json_atomic(self.path, run.to_dict())


class CsvExporter:
    def __init__(self, path: str | os.PathLike[str], options: CsvOptions) -> None:
        self.path = Path(path)
        self.options = options

    def export(self, run: RunResult, update: LevelUpdate | None = None) -> None:
        write_csv(self.path, run.levels, self.options)
        write_extra_csv(self.path, run.levels)


class LatencyExporter:
    def __init__(self, path: str | os.PathLike[str], batch_size: int) -> None:
        self.path = Path(path)
        self.batch_size = batch_size
        self._arrays: dict[str, np.ndarray[Any, Any]] = {}

    def export(self, run: RunResult, update: LevelUpdate) -> None:
        i, arrays = update.index, self._arrays
        lat = [w.latencies_ns for w in update.merged]
        dur = sum(w.duration_ns for w in update.merged)
        if update.accumulate and f"L{i}" in arrays:
            lat.insert(0, arrays[f"L{i}"])
            dur += int(arrays.get(f"D{i}", 0))
        arrays[f"L{i}"] = np.concatenate(lat) if lat else np.zeros(0, np.int64)
        arrays[f"D{i}"] = np.array(dur, np.int64)
        arrays[f"B{i}"] = np.array(self.batch_size, np.int64)
        with atomic_file(self.path, "wb") as f:
            np.savez(f, **arrays)


def exporters_for(json_file: str | None, csv_file: str | None, csv: CsvOptions,
                  latency_file: str | None, batch_size: int) -> list[Exporter]:
    """The exporters a ``saturate load`` command line asks for (``--json``, ``-f``, ``--latency-file``)."""
    out: list[Exporter] = []
    if json_file:
        out.append(JsonExporter(json_file))
    if csv_file:
        out.append(CsvExporter(csv_file, csv))
    if latency_file:
        out.append(LatencyExporter(latency_file, batch_size))
    return out
