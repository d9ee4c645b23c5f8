"""Backends behind one :class:`Backend` protocol: torch eager, TorchScript, ONNX Runtime."""

from __future__ import annotations

from servers.backends.base import BACKENDS, Backend, BackendConfig, gpu_platform
from servers.models import ModelOptions, ModelSpec


def load_backend(spec: ModelSpec, config: BackendConfig, options: ModelOptions | None = None) -> Backend:
    """Load ``spec`` on the backend, device and precision of ``config``; checked by one probe batch."""
    opts = options or ModelOptions()
    if config.kind == "torch":
        from servers.backends.torch_backend import load_eager

        return load_eager(spec, config, opts)
    if config.kind == "torchscript":
        from servers.backends.torch_backend import load_torchscript

        return load_torchscript(spec, config, opts)
    from servers.backends.onnx_backend import load_onnx

    return load_onnx(spec, config, opts)


__all__ = ["BACKENDS", "Backend", "BackendConfig", "gpu_platform", "load_backend"]
