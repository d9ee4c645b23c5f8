"""perf_analyzer's command line: its argument list from a :class:`~loadgen.config.LoadConfig`, and the
full command that runs it from PATH or inside the Triton SDK image under Apptainer.

``pa_arguments(cfg)`` maps every LoadConfig setting perf_analyzer understands to its flag (same
names as ``saturate load``); settings it has no flag for (``--processes``, ``--seed``,
``--max-outstanding``, ``--json``) are left out. ``PaLauncher.command(args)`` prefixes
``apptainer exec [--nv|--rocm] --bind DIR ... IMAGE perf_analyzer`` or the perf_analyzer found on PATH.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from loadgen.config import LoadConfig, Range
from saturate.errors import ConfigError, ToolMissingError
from saturate.tokens import TOKEN_HEADERS

GpuKind = Literal["none", "nvidia", "rocm"]
GPU_FLAGS: dict[str, tuple[str, ...]] = {"none": (), "nvidia": ("--nv",), "rocm": ("--rocm",)}


def token_header(protocol: str, token: str) -> str:
    """perf_analyzer's ``-H`` value carrying ``token`` for ``protocol`` (grpc|http; saturate/tokens.py)."""
    return f"{TOKEN_HEADERS.get(protocol, TOKEN_HEADERS['http'])}:{token}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def range_text(r: Range) -> str:
    """``start:end:step`` as perf_analyzer reads it (integers without a decimal point)."""
    return f"{_num(r.start)}:{_num(r.end)}:{_num(r.step)}"


def pa_arguments(cfg: LoadConfig, csv_file: str | None = None, value: float | None = None) -> list[str]:
    """perf_analyzer's arguments for ``cfg``; ``value`` pins one level, ``csv_file`` overrides ``-f``."""
    args = ["-m", cfg.model, "-u", cfg.url, "-i", cfg.protocol, "-b", str(cfg.batch_size)]
    if cfg.model_version:
        args += ["-x", cfg.model_version]
    if value is not None:
        one = _num(value)
        level = f"{one}:{one}:1"
    else:
        level = range_text(cfg.level_range)
    if cfg.mode == "request_rate":
        args += ["--request-rate-range", level, "--request-distribution", cfg.request_distribution]
    else:
        args += ["--concurrency-range", level]
    for name, dims in cfg.shapes:
        args += ["--shape", f"{name}:{','.join(str(d) for d in dims)}"]
    if cfg.input_data != "random":
        args += ["--input-data", cfg.input_data]
    args += ["--measurement-mode", cfg.measurement_mode]
    if cfg.measurement_mode == "count_windows":
        args += ["--measurement-request-count", str(cfg.measurement_request_count)]
    args += [
        "-p", str(cfg.measurement_interval_ms),
        "-s", _num(cfg.stability_percentage),
        "-r", str(cfg.max_trials),
    ]
    if cfg.percentile is not None:
        args.append(f"--percentile={cfg.percentile}")
    if cfg.latency_threshold_ms:
        args += ["-l", str(cfg.latency_threshold_ms)]
    if cfg.warmup_request_count:
        args += ["--warmup-request-count", str(cfg.warmup_request_count)]
    if cfg.async_relaxation:
        args.append("--async")
    csv = csv_file if csv_file is not None else cfg.csv_file
    if csv:
        args += ["-f", csv]
    if cfg.verbose_csv:
        args.append("--verbose-csv")
    if cfg.collect_metrics:
        args += ["--collect-metrics", "--metrics-url", cfg.resolved_metrics_url.split("://", 1)[-1]]
        args += ["--metrics-interval", str(cfg.metrics_interval_ms)]
    if cfg.access_token:
        args += ["-H", token_header(cfg.protocol, cfg.access_token)]
    if cfg.verbose:
        args.append("-v")
    return args


def csv_path_in(args: Sequence[str]) -> str | None:
    """The ``-f``/``--filename`` value in a perf_analyzer argument list, if any."""
    for i, a in enumerate(args):
        if a in ("-f", "--filename") and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--filename="):
            return a.split("=", 1)[1]
        if a.startswith("-f") and len(a) > 2 and not a.startswith("--"):
            return a[2:]
    return None


def find_binary(name: str) -> str | None:
    """``name`` on PATH, else beside this Python (``make perf-analyzer`` puts it in the venv's bin/)."""
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


@dataclass(frozen=True)
class PaLauncher:
    """Where perf_analyzer runs: ``image`` (an Apptainer .sif) or, without one, ``binary`` on PATH."""

    image: str | None = None
    gpu: GpuKind = "none"
    binary: str = "perf_analyzer"
    apptainer: str = "apptainer"
    binds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.gpu not in GPU_FLAGS:
            raise ConfigError(f"--gpu {self.gpu!r}: choose one of {', '.join(GPU_FLAGS)}")

    def command(self, args: Sequence[str]) -> list[str]:
        """The full argv; checks the image and the tools first (one-line errors)."""
        if self.image is None:
            exe = find_binary(self.binary)
            if exe is None:
                raise ToolMissingError(
                    f"{self.binary} not found on PATH or in {Path(sys.executable).parent}; install it with "
                    "'make perf-analyzer' or pass --image SDK.sif to run it inside the Triton SDK image"
                )
            return [exe, *args]
        if not Path(self.image).is_file():
            raise ConfigError(
                f"image {self.image} not found; build it with "
                "'apptainer build sdk.sif apptainer/sdk.def' (see apptainer/README.md)"
            )
        tool = shutil.which(self.apptainer)
        if tool is None:
            raise ToolMissingError(
                f"{self.apptainer} not found on PATH; install Apptainer (https://apptainer.org) or drop "
                "--image to use perf_analyzer from PATH"
            )
        cmd = [tool, "exec", *GPU_FLAGS[self.gpu]]
        for b in self.binds:
            cmd += ["--bind", b]
        return [*cmd, self.image, self.binary, *args]
