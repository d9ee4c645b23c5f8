"""``saturate demo``: the whole path on this machine, in a few minutes.

1. direct scan of the model in-process (batch 1 and 16, a few dozen trials): the ceiling;
2. serve the model (``saturate serve`` subprocess on free loopback ports, always stopped) and scan it:
   concurrency 1, 2, 4, 8 x batch 1, 16 with short windows, the monitor beside it;
3. ``saturate report`` on the directory: PNGs and one report.html, whose path is printed.

The directory is the demo's own (marked by a ``.saturate-demo`` file): a rerun replaces its results.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from loadgen.config import LoadConfig
from saturate.errors import ConfigError
from scans.direct.direct_scan import DirectConfig, run_direct_scan
from scans.report.build import ReportConfig, make_report
from scans.server.server_scan import ScanConfig, ServerScan
from scans.server.serverproc import ServeConfig, zoo_shapes
from servers.backends import BACKENDS
from servers.models import get_spec

MARKER = ".saturate-demo"
RESULTS = ("scan.json", "direct.json", "direct.csv", "monitor.csv", "scan.log", "server.log", "report.html")


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("demo-results")
    model: str = "particlenet"
    backend: str = "torch"
    device: str = "auto"
    concurrencies: tuple[int, ...] = (1, 2, 4, 8)
    batch_sizes: tuple[int, ...] = (1, 16)
    interval_ms: int = 1000
    max_trials: int = 5
    direct_trials: int = 30
    latency_budget_ms: float = 250.0

    def __post_init__(self) -> None:
        get_spec(self.model)
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}; choose one of: {', '.join(BACKENDS)}")
        if self.interval_ms < 100 or self.max_trials < 3 or self.direct_trials < 2:
            raise ConfigError("the demo needs -p >= 100 ms, -r >= 3 and --direct-trials >= 2")


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def prepare_out(out: Path) -> None:
    """Create the demo directory, or clear the results of an earlier demo in it (nothing else)."""
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ConfigError(f"{out} is not empty and not a demo directory; give an empty or new --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("results of saturate demo; a rerun replaces them\n")
    for name in RESULTS:
        (out / name).unlink(missing_ok=True)
    for csv in out.glob("b*.csv"):
        csv.unlink()
    shutil.rmtree(out / "plots", ignore_errors=True)


def say(text: str) -> None:
    print(f"saturate demo: {text}", file=sys.stderr, flush=True)


def run_demo(cfg: DemoConfig) -> int:
    """Direct scan, server scan, report; prints report.html's path on stdout. Returns the exit code."""
    t0 = time.monotonic()
    device = resolve_device(cfg.device)
    prepare_out(cfg.out)
    batches = ",".join(map(str, cfg.batch_sizes))
    say(f"1/3 direct scan of {cfg.model} ({cfg.backend}/{device}), batch {batches}")
    run_direct_scan(DirectConfig(model=cfg.model, backend=cfg.backend, device=device,
                                 batch_sizes=cfg.batch_sizes, trials=cfg.direct_trials, warmup_trials=3,
                                 warmup_ns=300_000_000), cfg.out)
    say(f"2/3 server scan: concurrency {','.join(map(str, cfg.concurrencies))} x batch {batches}, "
        f"{cfg.interval_ms} ms windows, at most {cfg.max_trials} per level")
    scan = ScanConfig(
        out=cfg.out, load=LoadConfig(model=cfg.model, measurement_interval_ms=cfg.interval_ms,
                                     max_trials=cfg.max_trials, shapes=zoo_shapes(cfg.model)),
        concurrencies=cfg.concurrencies, batch_sizes=cfg.batch_sizes, latency_budget_ms=cfg.latency_budget_ms,
        # max batch = the largest scanned batch: the batcher merges small requests but never several
        # big ones into one execution that outlasts a short window
        serve=ServeConfig(model=cfg.model, backend=cfg.backend, device=device, max_queue_delay_us=200,
                          max_batch=max(cfg.batch_sizes)),
    )
    code = ServerScan(scan).run()
    if code >= 128 or not (cfg.out / "scan.json").is_file():  # interrupted, or nothing measured
        return code
    say("3/3 report" + (" (of flagged levels: the scan exited 1, see its last lines)" if code else ""))
    html = make_report(ReportConfig(source=cfg.out, out=cfg.out,
                                    title=f"saturate demo: {cfg.model} on {cfg.backend}/{device}"))
    html = html.resolve()
    say(f"done in {time.monotonic() - t0:.0f} s; open {html}")
    print(html)
    return code
