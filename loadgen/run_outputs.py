"""The files of a ``saturate load`` run, rewritten (atomically) after every level: the run JSON
(``--json``), the perf_analyzer CSV and its extra columns (``-f``) and the raw latencies
(``--latency-file``), one :class:`loadgen.exporters.Exporter` each.
"""

from __future__ import annotations

import dataclasses

from loadgen import energy
from loadgen.config import LoadConfig
from loadgen.csvfmt import CsvOptions
from loadgen.exporters import Exporter, LevelUpdate, exporters_for
from loadgen.result import LevelResult, RunResult, WindowStats
from saturate.environment import CLIENT_PACKAGES, environment


class RunWriter:
    """The run and its exporters: every file rewritten after every level."""

    def __init__(self, cfg: LoadConfig, server_stats: bool) -> None:
        self.cfg = cfg
        self.result = RunResult(tool={"name": "saturate", "version": _version()},
                                env=environment(CLIENT_PACKAGES, gpus=False), config=cfg.to_dict())
        csv = CsvOptions(mode=cfg.mode, percentile=cfg.percentile, verbose=cfg.verbose_csv,
                         metrics=cfg.collect_metrics, server_stats=server_stats)
        self.exporters: list[Exporter] = exporters_for(cfg.json_file, cfg.csv_file, csv, cfg.latency_file,
                                                       cfg.batch_size)

    def add(self, level: LevelResult, merged: list[WindowStats]) -> None:
        """Record a level; ``merged``: the windows its result merges (their raw latencies go to the file)."""
        self.put(len(self.result.levels), level, merged)

    def put(self, i: int, level: LevelResult, merged: list[WindowStats], accumulate: bool = False) -> None:
        """Set level ``i`` (append when ``i`` is the next one); ``accumulate``: add to its latencies."""
        level = dataclasses.replace(level, extras={**level.extras, "energy": energy.for_level(level)})
        if i == len(self.result.levels):
            self.result.levels.append(level)
        else:
            self.result.levels[i] = level
        update = LevelUpdate(i, merged, accumulate)
        for exporter in self.exporters:
            exporter.export(self.result, update)


def _version() -> str:
    from saturate.version import saturate_version

    return saturate_version()
