"""Direct (in-process) ParticleNet inference throughput on the torch backend, items/s at batch 1, 256, 1024.

Usage: ``python benchmarks/direct_cpu.py [--device cpu|cuda:0] [--backend torch|torchscript|onnx]``.
Inputs are P=100 / S=10 synthetic jets made once per batch size; the timer covers host→device copies,
the forward pass, device sync and the copy back (``Backend.infer``). Prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import torch

from servers.backends import BackendConfig, load_backend
from servers.models import get_spec, synthetic_inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--batches", default="1,256,1024")
    parser.add_argument("--min-seconds", type=float, default=2.0)
    args = parser.parse_args()
    spec = get_spec("particlenet")
    backend = load_backend(spec, BackendConfig(kind=args.backend, device=args.device))
    print(
        f"particlenet direct: {backend.describe()} torch={torch.__version__} "
        f"threads={torch.get_num_threads()}"
    )
    for batch in (int(b) for b in args.batches.split(",")):
        x = synthetic_inputs(spec, batch)
        for _ in range(2):  # warm-up
            backend.infer(x)
        times: list[int] = []
        start = time.perf_counter_ns()
        while len(times) < 3 or time.perf_counter_ns() - start < args.min_seconds * 1e9:
            t0 = time.perf_counter_ns()
            backend.infer(x)
            times.append(time.perf_counter_ns() - t0)
        mean_s = sum(times) / len(times) / 1e9
        print(
            f"batch {batch:>5}: {batch / mean_s:>10.1f} items/s  "
            f"({mean_s * 1e3:.2f} ms/batch, {len(times)} runs)"
        )


if __name__ == "__main__":
    main()
