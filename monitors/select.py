"""Build the sources a MonitorConfig asks for; ``auto`` picks the best GPU source that works here."""

from __future__ import annotations

from monitors.amd import AmdSmiCliSource, AmdSmiSource
from monitors.config import MonitorConfig
from monitors.host import HostSource
from monitors.nvidia_smi import NvidiaSmiSource
from monitors.nvml import NvmlSource
from monitors.rocm_smi import RocmSmiSource
from monitors.source import Source
from monitors.triton_metrics import TritonMetricsSource
from saturate.errors import ToolMissingError, UsageError

#: Best first: libraries before CLIs, NVIDIA before AMD (a node has one or the other).
AUTO_ORDER: tuple[str, ...] = ("nvml", "nvidia-smi", "amdsmi", "rocm-smi", "amd-smi")


def make_source(name: str, cfg: MonitorConfig) -> Source:
    """One unopened source by name."""
    if name == "nvml":
        return NvmlSource(cfg.gpus, gpm=cfg.gpm)
    if name == "nvidia-smi":
        return NvidiaSmiSource(cfg.interval_s, cfg.gpus)
    if name == "amdsmi":
        return AmdSmiSource(cfg.gpus)
    if name == "rocm-smi":
        return RocmSmiSource(cfg.interval_s, cfg.gpus)
    if name == "amd-smi":
        return AmdSmiCliSource(cfg.interval_s, cfg.gpus)
    if name == "triton":
        assert cfg.metrics_url is not None
        return TritonMetricsSource(cfg.metrics_url, cfg.interval_s)
    if name == "host":
        return HostSource(cfg.pids)
    raise ValueError(name)


def open_sources(cfg: MonitorConfig) -> tuple[list[Source], list[str]]:
    """Open what ``cfg.sources`` names plus host. Returns (sources, notes for the user).

    An explicitly named source that is missing raises ToolMissingError (exit 2); under ``auto`` the
    first GPU source that opens wins, and when none does a single note says so (host-only rows).
    """
    opened: list[Source] = []
    notes: list[str] = []
    try:
        for name in dict.fromkeys(cfg.sources):
            if name == "host":
                continue
            if name == "auto":
                tried = []
                for candidate in AUTO_ORDER:
                    src = make_source(candidate, cfg)
                    try:
                        src.open()
                    except ToolMissingError as exc:
                        tried.append(f"{candidate}: {exc}")
                        continue
                    opened.append(src)
                    notes.append(f"GPU source: {candidate}")
                    break
                else:
                    notes.append("no GPU tool found, writing host-only rows (" + "; ".join(tried) + ")")
                continue
            src = make_source(name, cfg)
            try:
                src.open()
            except ToolMissingError as exc:
                raise ToolMissingError(
                    f"--source {name} is not available: {exc}; use --source auto or host") from None
            opened.append(src)
        host = make_source("host", cfg)
        host.open()
        opened.append(host)
    except UsageError:
        for src in opened:
            src.close()
        raise
    return opened, notes
