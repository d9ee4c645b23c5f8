"""The files of a ``saturate load`` run, rewritten (atomically) after every level: the run JSON
(``saturate.run/1``, ``--json``), the perf_analyzer CSV and its extra columns (``-f``), and the raw
latencies (``--latency-file``: per level ``L<i>`` the latencies in ns, ``D<i>`` the measured duration in
ns, ``B<i>`` the batch size — read back by ``scans.jobs.merge``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from loadgen import energy
from loadgen.config import LoadConfig
from loadgen.csvfmt import CsvOptions, write_csv
from loadgen.extras_csv import write_extra_csv
from loadgen.result import LevelResult, RunResult, WindowStats
from saturate.atomic import atomic_file
from saturate.environment import CLIENT_PACKAGES, environment


class RunWriter:
    """The run JSON, the perf_analyzer CSV and the latency file, rewritten after every level."""

    def __init__(self, cfg: LoadConfig, server_stats: bool) -> None:
        self.cfg = cfg
        self.result = RunResult(tool={"name": "saturate", "version": _version()},
                                env=environment(CLIENT_PACKAGES, gpus=False), config=cfg.to_dict())
        self.csv = CsvOptions(mode=cfg.mode, percentile=cfg.percentile, verbose=cfg.verbose_csv,
                              metrics=cfg.collect_metrics, server_stats=server_stats)
        self._latencies: dict[str, np.ndarray[Any, Any]] = {}

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
        cfg = self.cfg
        if cfg.json_file:
            self.result.write(cfg.json_file)
        if cfg.csv_file:
            write_csv(cfg.csv_file, self.result.levels, self.csv)
            write_extra_csv(cfg.csv_file, self.result.levels)
        if cfg.latency_file:
            lat = [w.latencies_ns for w in merged]
            if accumulate and f"L{i}" in self._latencies:
                lat.insert(0, self._latencies[f"L{i}"])
            dur = sum(w.duration_ns for w in merged)
            if accumulate:
                dur += int(self._latencies.get(f"D{i}", 0))
            self._latencies[f"L{i}"] = np.concatenate(lat) if lat else np.zeros(0, np.int64)
            self._latencies[f"D{i}"] = np.array(dur, np.int64)
            self._latencies[f"B{i}"] = np.array(cfg.batch_size, np.int64)
            with atomic_file(cfg.latency_file, "wb") as f:
                np.savez(f, **self._latencies)


def _version() -> str:
    from saturate.version import saturate_version

    return saturate_version()
