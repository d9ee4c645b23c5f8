"""Torch eager and TorchScript backends (one infer path, two ways to load the module)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch

from saturate.errors import ModelError
from servers.backends.base import (
    PRECISIONS,
    BackendConfig,
    check_outputs,
    device_label,
    gather_inputs,
    require_file,
    torch_device,
)
from servers.export import to_torchscript
from servers.models import Array, ModelOptions, ModelSpec, build_model, synthetic_inputs


class TorchBackend:
    """Runs a ``torch.nn.Module`` (eager, compiled, or scripted) under ``torch.inference_mode``."""

    def __init__(
        self, spec: ModelSpec, module: Callable[..., Any], device: torch.device, precision: str, kind: str
    ) -> None:
        self.spec = spec
        self.module = module
        self.device = device
        self.precision = precision
        self.dtype = PRECISIONS[precision]
        self.kind = kind

    def infer(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        arrays = gather_inputs(self.spec, inputs)
        with torch.inference_mode():
            tensors = [torch.from_numpy(a).to(self.device, self.dtype, non_blocking=True) for a in arrays]
            result = self.module(*tensors)
            outs = result if isinstance(result, tuple | list) else (result,)
            host = [o.float().cpu().numpy() for o in outs]
        return dict(zip(self.spec.output_names, host, strict=False))

    def describe(self) -> str:
        return f"{self.kind} device={device_label(self.device)} precision={self.precision}"


def _state_dict(path: Any) -> dict[str, torch.Tensor]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(
            f"{path} is not a torch state_dict ({type(exc).__name__}); "
            "use --backend torchscript or onnx for those files"
        ) from None
    if isinstance(loaded, dict) and "state_dict" in loaded and isinstance(loaded["state_dict"], dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise ModelError(
            f"{path} does not hold a state_dict of tensors; save one with torch.save(model.state_dict())"
        )
    return loaded


def load_eager(spec: ModelSpec, config: BackendConfig, options: ModelOptions) -> TorchBackend:
    """The zoo model with seeded weights, or with the state_dict in ``config.model_file``."""
    device = torch_device(config.device)
    model = build_model(spec, options)
    if config.model_file is not None:
        state = _state_dict(require_file(config.model_file))
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0] if str(exc) else "mismatch"
            raise ModelError(
                f"{config.model_file} does not fit model {spec.name} ({first}); "
                f"give a state_dict saved from this model"
            ) from None
    model = model.to(device=device, dtype=PRECISIONS[config.precision]).eval()
    module: Callable[..., Any] = model
    if config.compile:
        module = torch.compile(model)
    return probe(
        TorchBackend(spec, module, device, config.precision, "torch"), str(config.model_file or spec.name)
    )


def _schema_names(module: torch.jit.ScriptModule) -> list[str]:
    schema = module.forward.schema  # type: ignore[attr-defined]
    return [arg.name for arg in schema.arguments[1:]]


def load_torchscript(spec: ModelSpec, config: BackendConfig, options: ModelOptions) -> TorchBackend:
    """The TorchScript archive in ``config.model_file``, or the zoo model scripted in memory."""
    device = torch_device(config.device)
    if config.model_file is None:
        module = to_torchscript(build_model(spec, options))
        source = f"{spec.name} (scripted in memory)"
    else:
        path = require_file(config.model_file)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is a supported backend here
                module = torch.jit.load(str(path), map_location=device)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise ModelError(
                f"{path} is not a TorchScript archive ({type(exc).__name__}); "
                f"write one with 'saturate export --format torchscript'"
            ) from None
        names = _schema_names(module)
        if names != list(spec.input_names):
            raise ModelError(
                f"{path} takes inputs {names}, model {spec.name} needs {list(spec.input_names)}; "
                f"export a matching file with 'saturate export --model {spec.name}'"
            )
        source = str(path)
    module = module.to(device=device, dtype=PRECISIONS[config.precision]).eval()
    return probe(TorchBackend(spec, module, device, config.precision, "torchscript"), source)


def probe(backend: TorchBackend, source: str) -> TorchBackend:
    """Run one small batch so that a module that does not fit fails now, with a one-line error."""
    batch = 2
    inputs = synthetic_inputs(backend.spec, batch)
    try:
        outputs = backend.infer(inputs)
    except (RuntimeError, ValueError, TypeError) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{source} fails on {backend.spec.name} inputs ({detail[:160]}); "
            f"use a file exported for this model"
        ) from None
    check_outputs(backend.spec, outputs, batch, source)
    return backend
