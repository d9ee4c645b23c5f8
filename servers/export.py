"""Export zoo models to TorchScript and ONNX with dynamic batch and point axes.

ONNX uses torch's TorchScript-based exporter (``dynamo=False``) on purpose: the torch.export-based
default needs ``onnxscript``, and the legacy exporter handles this model's dynamic kNN fine.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any, BinaryIO, cast

import torch

from saturate.errors import ConfigError
from servers.models import ModelSpec, synthetic_inputs

FORMATS: tuple[str, ...] = ("onnx", "torchscript")
DEFAULT_OPSET = 17


def example_tensors(spec: ModelSpec, batch: int = 2) -> tuple[torch.Tensor, ...]:
    """Synthetic example inputs in the model's argument order."""
    arrays = synthetic_inputs(spec, batch, seed=1234)
    return tuple(torch.from_numpy(arrays[name]) for name in spec.input_names)


def onnx_dynamic_axes(spec: ModelSpec) -> dict[str, dict[int, str]]:
    """Axis 0 is the batch ``N``; named variable dims become named ONNX axes (``n_pf``)."""
    axes: dict[str, dict[int, str]] = {}
    for tensor in (*spec.inputs, *spec.outputs):
        named = {0: "N"}
        for i, dim in enumerate(tensor.shape, start=1):
            if isinstance(dim, str):
                named[i] = spec.dynamic_axes.get(dim, dim)
        axes[tensor.name] = named
    return axes


def export_onnx(
    model: torch.nn.Module, spec: ModelSpec, target: str | Path | BinaryIO, opset: int = DEFAULT_OPSET
) -> None:
    """Write ``model`` as ONNX with the spec's tensor names and dynamic batch/point axes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy-exporter deprecation notices: chosen on purpose
        torch.onnx.export(
            model.eval(),
            example_tensors(spec),
            cast(Any, target if not isinstance(target, Path) else str(target)),  # BytesIO works too
            input_names=list(spec.input_names),
            output_names=list(spec.output_names),
            dynamic_axes=onnx_dynamic_axes(spec),
            opset_version=opset,
            dynamo=False,
        )


def onnx_bytes(model: torch.nn.Module, spec: ModelSpec, opset: int = DEFAULT_OPSET) -> bytes:
    """The ONNX graph of ``model`` in memory."""
    buffer = io.BytesIO()
    export_onnx(model, spec, buffer, opset)
    return buffer.getvalue()


def to_torchscript(model: torch.nn.Module) -> torch.jit.ScriptModule:
    """``torch.jit.script`` of the model: control flow and all axes stay dynamic."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is a supported format here
        scripted: torch.jit.ScriptModule = torch.jit.script(model.eval())
    return scripted


def export_file(
    model: torch.nn.Module, spec: ModelSpec, fmt: str, path: Path, opset: int = DEFAULT_OPSET
) -> None:
    """Write ``model`` to ``path`` in ``fmt`` (``onnx`` or ``torchscript``)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if not path.parent.is_dir():
        raise ConfigError(f"directory {path.parent} does not exist; create it or choose another -o FILE")
    if fmt == "onnx":
        export_onnx(model, spec, path, opset)
    else:
        to_torchscript(model).save(str(path))
