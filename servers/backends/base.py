"""The Backend protocol, its frozen config, and device/precision helpers shared by the backends."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from saturate.errors import BackendError, ConfigError, ModelError
from servers.models import Array, ModelSpec

BACKENDS: tuple[str, ...] = ("torch", "torchscript", "onnx")
PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
ONNX_PROVIDERS: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
GRAPH_OPT_LEVELS: tuple[str, ...] = ("disable", "basic", "extended", "all")


class Backend(Protocol):
    """Runs one batch of a zoo model: arrays keyed by input name in, arrays keyed by output name out."""

    spec: ModelSpec

    def infer(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        """Outputs (float32, on the host) for one batch; inputs are looked up by name."""
        ...

    def describe(self) -> str:
        """One line: backend, device/provider, precision."""
        ...


@dataclass(frozen=True)
class BackendConfig:
    """How to run a model: which backend, where, at what precision, from which file."""

    kind: str = "torch"
    device: str = "cpu"
    precision: str = "fp32"
    compile: bool = False
    model_file: Path | None = None
    onnx_provider: str = "auto"
    graph_opt_level: str = "all"
    allow_cpu_fallback: bool = False

    def __post_init__(self) -> None:
        if self.kind not in BACKENDS:
            raise BackendError(f"unknown backend {self.kind!r}; choose one of: {', '.join(BACKENDS)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; choose one of: {', '.join(PRECISIONS)}")
        if self.onnx_provider != "auto" and self.onnx_provider not in ONNX_PROVIDERS:
            raise ConfigError(
                f"unknown ONNX provider {self.onnx_provider!r}; "
                f"choose auto or one of: {', '.join(ONNX_PROVIDERS)}"
            )
        if self.graph_opt_level not in GRAPH_OPT_LEVELS:
            raise ConfigError(
                f"unknown graph optimisation level {self.graph_opt_level!r}; "
                f"choose one of: {', '.join(GRAPH_OPT_LEVELS)}"
            )
        parse_device(self.device)


def parse_device(device: str) -> tuple[str, int]:
    """``cpu`` → ("cpu", 0); ``cuda`` / ``cuda:N`` → ("cuda", N); anything else is an error."""
    if device == "cpu":
        return "cpu", 0
    if device == "cuda":
        return "cuda", 0
    kind, _, index = device.partition(":")
    if kind == "cuda" and index.isdigit():
        return "cuda", int(index)
    raise BackendError(f"unknown device {device!r}; use cpu or cuda:N (ROCm GPUs are cuda:N too)")


def gpu_platform() -> str:
    """``rocm`` under a HIP build of torch, else ``cuda``."""
    return "rocm" if getattr(torch.version, "hip", None) else "cuda"


def torch_device(device: str) -> torch.device:
    """A torch device that exists here; a GPU asked for without one is a :class:`BackendError`."""
    kind, index = parse_device(device)
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise BackendError(f"device {device} asked for but torch sees no GPU here; use --device cpu")
    count = torch.cuda.device_count()
    if index >= count:
        raise BackendError(
            f"device {device} asked for but only {count} GPU(s) are visible; use cuda:0..cuda:{count - 1}"
        )
    return torch.device("cuda", index)


def device_label(device: torch.device) -> str:
    """``cpu``, ``cuda:0``, or ``cuda:0 (rocm)`` for a HIP build."""
    if device.type == "cpu":
        return "cpu"
    label = f"cuda:{device.index or 0}"
    return f"{label} (rocm)" if gpu_platform() == "rocm" else label


def require_file(path: Path) -> Path:
    """``path`` if it is a readable file, else a :class:`ModelError` naming the fix."""
    if not path.is_file():
        raise ModelError(
            f"model file {path} not found; give an existing file or drop --model-file for seeded weights"
        )
    return path


def gather_inputs(spec: ModelSpec, inputs: Mapping[str, Array]) -> list[Array]:
    """The inputs in the spec's order, looked up by name; a missing name is a :class:`ModelError`."""
    missing = [name for name in spec.input_names if name not in inputs]
    if missing:
        raise ModelError(f"inputs {missing} missing for model {spec.name}; it needs {list(spec.input_names)}")
    return [np.ascontiguousarray(inputs[name]) for name in spec.input_names]


def check_outputs(spec: ModelSpec, outputs: Mapping[str, Array], batch: int, source: str) -> None:
    """A :class:`ModelError` unless ``outputs`` have the spec's names and per-item shapes."""
    for tensor in spec.outputs:
        got = outputs.get(tensor.name)
        want = (batch, *tensor.triton_shape)
        if got is None or got.shape != want:
            shape = None if got is None else tuple(got.shape)
            raise ModelError(
                f"{source} gives {tensor.name} shape {shape}, model {spec.name} needs {want}; "
                f"export a matching file with 'saturate export --model {spec.name}'"
            )
