"""Timed calls of a loaded backend: one batch in, wait for the device, done.

A :class:`Runner` hands out per-thread *calls* (``worker()``); a call runs one batch to completion,
so ``perf_counter_ns`` around it measures the whole thing:

- torch / TorchScript: host→device copy, forward, device→host copy, then ``torch.cuda.synchronize``
  of the worker's own stream on a GPU (CUDA or ROCm; each async worker gets its own stream);
- ONNX Runtime on a GPU: IOBinding (inputs bound from host memory, outputs bound on the device and
  copied back), with ``synchronize_inputs``/``synchronize_outputs`` around ``run_with_iobinding``;
- anything else (ONNX Runtime on the CPU): the backend's ``infer``.

Peak device memory comes from torch's allocator on a torch GPU backend; elsewhere it is None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch

from servers.backends import Backend
from servers.backends.base import parse_device
from servers.models import Array

Call = Callable[[Mapping[str, Array]], None]

_OOM_MARKERS = ("out of memory", "can't allocate memory", "failed to allocate memory", "bad_alloc")


class Runner(Protocol):
    """Per-thread timed calls plus the device-memory counters of one loaded backend."""

    def worker(self) -> Call:
        """A call for the current thread (its own CUDA stream / IOBinding where that applies)."""
        ...

    def reset_peak(self) -> None:
        """Start a new peak-memory interval."""
        ...

    def peak_bytes(self) -> int | None:
        """Peak device memory since :meth:`reset_peak`, or None where it cannot be measured."""
        ...


def is_oom(exc: BaseException) -> bool:
    """True for an out-of-memory error of torch (CUDA/ROCm/CPU), ONNX Runtime or Python."""
    if isinstance(exc, MemoryError | torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return any(marker in text for marker in _OOM_MARKERS)


class InferRunner:
    """Calls ``backend.infer`` (already synchronous on the CPU); no device-memory counter."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def worker(self) -> Call:
        def call(inputs: Mapping[str, Array]) -> None:
            self.backend.infer(inputs)

        return call

    def reset_peak(self) -> None:
        return None

    def peak_bytes(self) -> int | None:
        return None


class TorchGpuRunner:
    """A torch backend on a GPU: each worker runs on its own CUDA stream and synchronises it."""

    def __init__(self, backend: Backend, device: torch.device) -> None:
        self.backend = backend
        self.device = device

    def worker(self) -> Call:
        stream = torch.cuda.Stream(device=self.device)  # type: ignore[no-untyped-call]

        def call(inputs: Mapping[str, Array]) -> None:
            with torch.cuda.stream(stream):
                self.backend.infer(inputs)
            stream.synchronize()

        return call

    def reset_peak(self) -> None:
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)

    def peak_bytes(self) -> int | None:
        return int(torch.cuda.max_memory_allocated(self.device))


class OrtIoBindingRunner:
    """ONNX Runtime on a GPU through IOBinding; one binding per worker thread."""

    def __init__(self, session: Any, input_names: tuple[str, ...], output_names: tuple[str, ...],
                 device_type: str, device_id: int) -> None:
        self.session = session
        self.input_names = input_names
        self.output_names = output_names
        self.device_type = device_type
        self.device_id = device_id

    def worker(self) -> Call:
        binding = self.session.io_binding()

        def call(inputs: Mapping[str, Array]) -> None:
            for name in self.input_names:
                binding.bind_cpu_input(name, inputs[name])
            for name in self.output_names:
                binding.bind_output(name, self.device_type, self.device_id)
            binding.synchronize_inputs()
            self.session.run_with_iobinding(binding)
            binding.synchronize_outputs()
            binding.copy_outputs_to_cpu()

        return call

    def reset_peak(self) -> None:
        return None

    def peak_bytes(self) -> int | None:
        return None


def make_runner(backend: Backend, device: str) -> Runner:
    """The runner that times ``backend`` correctly on ``device`` (see the module docstring)."""
    kind, index = parse_device(device)
    module_device = getattr(backend, "device", None)
    if isinstance(module_device, torch.device) and module_device.type == "cuda":
        return TorchGpuRunner(backend, module_device)
    session = getattr(backend, "session", None)
    provider = str(getattr(backend, "provider", "CPUExecutionProvider"))
    if kind == "cuda" and session is not None and provider != "CPUExecutionProvider":
        return OrtIoBindingRunner(session, backend.spec.input_names, backend.spec.output_names, "cuda", index)
    return InferRunner(backend)
