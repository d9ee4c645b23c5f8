"""ONNX Runtime backend: provider choice (CPU/CUDA/ROCm/MIGraphX/TensorRT) and graph optimisation level."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnxruntime as ort

from saturate.errors import BackendError, ConfigError, ModelError
from servers.backends.base import (
    ONNX_PROVIDERS,
    BackendConfig,
    check_outputs,
    gather_inputs,
    parse_device,
    require_file,
)
from servers.export import onnx_bytes
from servers.models import Array, ModelOptions, ModelSpec, build_model, synthetic_inputs

_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_GPU_ORDER = ("cuda", "rocm", "migraphx")


class OnnxBackend:
    """Runs an ``onnxruntime.InferenceSession``; :attr:`provider` is the provider that really runs it."""

    def __init__(self, spec: ModelSpec, session: Any, device: str) -> None:
        self.spec = spec
        self.session = session
        self.device = device
        self.provider: str = session.get_providers()[0]

    def infer(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        feed = dict(zip(self.spec.input_names, gather_inputs(self.spec, inputs), strict=True))
        outs = self.session.run(list(self.spec.output_names), feed)
        return {
            name: np.asarray(o, dtype=np.float32)
            for name, o in zip(self.spec.output_names, outs, strict=True)
        }

    def describe(self) -> str:
        return f"onnx device={self.device} provider={self.provider} precision=fp32"


def choose_providers(config: BackendConfig, available: list[str]) -> list[Any]:
    """Providers for the session, best first; unavailable ones are an error unless CPU fallback is allowed."""
    kind, index = parse_device(config.device)
    if config.onnx_provider != "auto":
        wanted = [config.onnx_provider]
    elif kind == "cpu":
        wanted = ["cpu"]
    else:
        wanted = [p for p in _GPU_ORDER if ONNX_PROVIDERS[p] in available] or ["cuda"]
    name = wanted[0]
    provider = ONNX_PROVIDERS[name]
    if provider not in available:
        if not config.allow_cpu_fallback:
            raise BackendError(
                f"ONNX Runtime provider {provider} is not available here (have: {', '.join(available)}); "
                f"install the matching onnxruntime build or pass --allow-cpu-fallback"
            )
        print(
            f"saturate: warning: {provider} not available, falling back to CPUExecutionProvider",
            file=sys.stderr,
        )
        return ["CPUExecutionProvider"]
    if name == "cpu":
        return ["CPUExecutionProvider"]
    return [(provider, {"device_id": index}), "CPUExecutionProvider"]


def _check_graph(spec: ModelSpec, session: Any, source: str) -> None:
    got = {i.name: len(i.shape) for i in session.get_inputs()}
    want = {t.name: 1 + len(t.shape) for t in spec.inputs}
    if got != want:
        raise ModelError(
            f"{source} has inputs {sorted(got)} (ranks {got}), model {spec.name} needs {want}; "
            f"export a matching file with 'saturate export --model {spec.name} --format onnx'"
        )
    outs = {o.name for o in session.get_outputs()}
    if not set(spec.output_names) <= outs:
        raise ModelError(
            f"{source} has outputs {sorted(outs)}, model {spec.name} needs {list(spec.output_names)}"
        )


def load_onnx(spec: ModelSpec, config: BackendConfig, options: ModelOptions) -> OnnxBackend:
    """Session over ``config.model_file``, or over the zoo model exported in memory."""
    if config.precision != "fp32":
        raise ConfigError(
            "the ONNX backend runs the graph's own precision; use --precision fp32 "
            "(or --backend torch for fp16/bf16)"
        )
    if config.compile:
        raise ConfigError("--compile is for --backend torch; drop it for onnx")
    options_ = ort.SessionOptions()
    options_.graph_optimization_level = _LEVELS[config.graph_opt_level]
    options_.log_severity_level = 3
    providers = choose_providers(config, ort.get_available_providers())
    if config.model_file is None:
        model: bytes | str = onnx_bytes(build_model(spec, options), spec)
        source = f"{spec.name} (exported in memory)"
    else:
        model = str(require_file(config.model_file))
        source = model
    try:
        session = ort.InferenceSession(model, sess_options=options_, providers=providers)
    except Exception as exc:
        if "provider" in str(exc).lower():
            raise BackendError(
                f"ONNX Runtime could not start {providers[0]} ({str(exc).splitlines()[0][:120]}); "
                f"pass --allow-cpu-fallback or --device cpu"
            ) from None
        raise ModelError(
            f"{source} is not a loadable ONNX model ({type(exc).__name__}); "
            f"write one with 'saturate export --format onnx'"
        ) from None
    _check_graph(spec, session, source)
    backend = OnnxBackend(spec, session, config.device)
    batch = 2
    try:
        outputs = backend.infer(synthetic_inputs(spec, batch))
    except Exception as exc:
        raise ModelError(
            f"{source} fails on {spec.name} inputs ({str(exc).splitlines()[0][:160]}); "
            f"use a file exported for this model"
        ) from None
    check_outputs(spec, outputs, batch, source)
    return backend
