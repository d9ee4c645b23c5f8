"""The utilization sidecar: samples GPU, CPU and memory utilization into a tidy CSV.

Library use::

    from monitors import Monitor, MonitorConfig
    with Monitor(MonitorConfig(out="mon.csv", interval_s=0.25)) as m:
        m.phase("b=64 c=8")
        ...

The CLI (``saturate monitor``) lives in :mod:`monitors.cli`.
"""

from __future__ import annotations

from monitors.config import MonitorConfig
from monitors.monitor import Monitor
from monitors.schema import COLUMNS, SEED_COLUMNS, Reading
from monitors.source import Source

__all__ = ["COLUMNS", "SEED_COLUMNS", "Monitor", "MonitorConfig", "Reading", "Source"]
