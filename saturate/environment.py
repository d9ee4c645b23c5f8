"""The ``env`` block of every run JSON (``saturate load``, ``scan direct|server|multiproc``): host, CPU
model and count, OS, GPUs and the versions of the libraries that measured — one schema, one function.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

#: The libraries of an in-process measurement (the scans).
PACKAGES: tuple[str, ...] = ("torch", "onnxruntime", "nvidia-pytriton", "tritonclient", "numpy")
#: The libraries of the load client (``loadgen``), which never imports torch.
CLIENT_PACKAGES: tuple[str, ...] = ("tritonclient", "grpcio", "aiohttp", "numpy")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_list() -> list[dict[str, Any]]:
    """GPUs torch can see (index, name, total memory); empty without a GPU build or device."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    out: list[dict[str, Any]] = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        out.append({"index": i, "name": props.name, "mem_total_bytes": int(props.total_memory)})
    return out


def environment(packages: tuple[str, ...] = PACKAGES, *, gpus: bool = True) -> dict[str, Any]:
    """Host, CPU, core count, GPUs (torch's view; ``[]`` when ``gpus`` is false), Python and the versions
    of ``packages`` (None where not installed)."""
    env: dict[str, Any] = {
        "host": platform.node(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "os": platform.platform(),
        "gpus": gpu_list() if gpus else [],
        "python": platform.python_version(),
    }
    for name in packages:
        key = "pytriton" if name == "nvidia-pytriton" else name
        try:
            env[key] = metadata.version(name)
        except metadata.PackageNotFoundError:
            env[key] = None
    return env
