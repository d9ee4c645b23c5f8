"""``saturate demo --tune``: a small tune on this machine (GPU when present, else CPU).

Why a flag and not part of ``saturate demo``: the demo's scans already use most of its few-minute
budget on the CPU, and every tune candidate starts its own server (on 2 CPU cores a ParticleNet
PyTriton server takes 10-30 s to become ready) before its concurrency search, so even three
candidates would double the demo's time. ``--tune`` runs only the tune: a quick search over instances
1, 2 and queue delay 0, 1000 µs (at most 3 candidates), the demo's p95 budget, short windows, into
``OUT/tune`` (replaced on a rerun), then the report there.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from loadgen.config import LoadConfig, Range
from scans.tune.runner import TuneConfig
from scans.tune.search import SearchRule
from scans.tune.serving import zoo_shapes
from scans.tune.space import TuneSpace
from scans.tune.validity import TailRule


@dataclasses.dataclass(frozen=True)
class DemoTune:
    out: Path
    model: str = "particlenet"
    backend: str = "torch"
    device: str = "cpu"
    latency_budget_ms: float = 250.0
    interval_ms: int = 1000
    max_trials: int = 5

    def config(self) -> TuneConfig:
        load = LoadConfig(model=self.model, concurrency_range=Range(1, 1, 1),
                          measurement_interval_ms=self.interval_ms, max_trials=self.max_trials, percentile=95,
                          warmup_request_count=20, shapes=zoo_shapes(self.model))
        return TuneConfig(out=self.out / "tune", load=load,
                          space=TuneSpace(batch_sizes=(1,), instances=(1, 2), max_queue_delay_us=(0, 1000)),
                          rule=SearchRule(budget_ms=self.latency_budget_ms, max_concurrency=16),
                          tail=TailRule(percentile=95, confidence=0.9, margin_points=2.5),
                          backend=self.backend, device=self.device, search="quick", max_candidates=3,
                          confirm_runs=2)


def run_demo_tune(demo: DemoTune) -> int:
    from scans.tune.cli import tune_and_report

    shutil.rmtree(demo.out / "tune", ignore_errors=True)
    return tune_and_report(demo.config())
