"""``saturate scan direct``: in-process batch scan of a zoo model through the servers backends.

Per batch size: a pool of synthetic input sets is made outside the timer; warm-up calls run until
both ``warmup_trials`` calls and ``warmup_ns`` have passed (the seed scans dropped a single trial,
which left their small-batch latencies ten times too high); then ``trials`` timed calls, back to back
(sync) or with ``in_flight`` batches in flight on worker threads (async, each with its own CUDA
stream or IOBinding). Statistics are in :mod:`scans.direct.timing`. The run JSON and CSV are rewritten after
every batch size; an out-of-memory error at a batch size is recorded and ends the scan cleanly.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from loadgen.repeats import order
from loadgen.shapes import ShapeDist
from saturate.environment import environment
from saturate.errors import ConfigError
from scans.direct.direct_shapes import pool_sizes, symbol_sizes
from scans.direct.directio import DirectLevel, write_outputs
from scans.direct.runners import Call, Runner, is_oom, make_runner
from scans.direct.timing import summarize_times
from servers.backends import BackendConfig, load_backend
from servers.models import Array, ModelOptions, get_spec, synthetic_inputs

MODES: tuple[str, ...] = ("sync", "async")


@dataclass(frozen=True)
class DirectConfig:
    """Every setting of a direct scan (the run JSON's ``config`` block is this, after defaults)."""

    model: str = "particlenet"
    backend: str = "torch"
    device: str = "cpu"
    precision: str = "fp32"
    model_file: str | None = None
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    trials: int = 100
    warmup_trials: int = 10
    warmup_ns: int = 1_000_000_000
    mode: str = "sync"
    in_flight: int = 1
    sizes: Mapping[str, int] = field(default_factory=dict)
    input_pool: int = 4
    seed: int = 0
    shape_dist: ShapeDist | None = None  # drawn sizes per input set (scans.direct.direct_shapes)
    repeats: int = 1  # --repeats: every batch size N times, round-robin (loadgen.repeats)

    def __post_init__(self) -> None:
        if not self.batch_sizes:
            raise ConfigError("the batch list is empty; give e.g. --batch-sizes 1,2,4")
        bad = [b for b in self.batch_sizes if b < 1]
        if bad:
            raise ConfigError(f"batch size {bad[0]} must be at least 1; give e.g. --batch-sizes 1,2,4")
        if self.trials < 2:
            raise ConfigError(f"--trials {self.trials}: need at least 2 timed trials for a standard error")
        if self.warmup_trials < 0 or self.warmup_ns < 0:
            raise ConfigError("--warmup-trials and --warmup-seconds must not be negative")
        if self.mode not in MODES:
            raise ConfigError(f"unknown mode {self.mode!r}; use --mode sync or --mode async")
        if self.in_flight < 1:
            raise ConfigError(f"--in-flight {self.in_flight} must be at least 1")
        if self.mode == "sync" and self.in_flight != 1:
            raise ConfigError("--in-flight needs --mode async (sync mode keeps one batch in flight)")
        if self.repeats < 1:
            raise ConfigError(f"--repeats {self.repeats} must be at least 1")
        if self.input_pool < 1:
            raise ConfigError("--input-pool must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["batch_sizes"] = list(self.batch_sizes)
        d["sizes"] = dict(self.sizes)
        d["warmup_seconds"] = self.warmup_ns / 1e9
        d["shape_dist"] = None if self.shape_dist is None else self.shape_dist.to_dict()
        return d


def _warm_up(run: Callable[[int], object], chunk: int, trials: int, min_ns: int) -> tuple[int, int]:
    """Call ``run(chunk)`` until both ``trials`` calls and ``min_ns`` have passed; returns (calls, ns)."""
    start = time.perf_counter_ns()
    done = 0
    while done < trials or time.perf_counter_ns() - start < min_ns:
        run(chunk)
        done += chunk
    return done, time.perf_counter_ns() - start


def time_sync(call: Call, pool: Sequence[Mapping[str, Array]], trials: int) -> list[int]:
    """``trials`` back-to-back calls, each timed with ``perf_counter_ns``."""
    times: list[int] = []
    for i in range(trials):
        inputs = pool[i % len(pool)]
        t0 = time.perf_counter_ns()
        call(inputs)
        times.append(time.perf_counter_ns() - t0)
    return times


def time_async(
    workers: Sequence[Call], pool: Sequence[Mapping[str, Array]], trials: int
) -> tuple[list[int], int]:
    """``trials`` calls shared by ``len(workers)`` threads; returns per-call times and the wall span."""
    lock = threading.Lock()
    next_index = [0]
    times: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(workers) + 1)

    def loop(call: Call) -> None:
        barrier.wait()
        while True:
            with lock:
                i = next_index[0]
                if i >= trials or errors:
                    return
                next_index[0] = i + 1
            try:
                t0 = time.perf_counter_ns()
                call(pool[i % len(pool)])
                dt = time.perf_counter_ns() - t0
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                return
            with lock:
                times.append(dt)

    threads = [threading.Thread(target=loop, args=(w,), daemon=True) for w in workers]
    for t in threads:
        t.start()
    start = time.perf_counter_ns()
    barrier.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter_ns() - start
    if errors:
        raise errors[0]
    return times, wall


def measure_batch(runner: Runner, cfg: DirectConfig, batch: int, model_options: ModelOptions) -> DirectLevel:
    """Warm-up and timed calls at one batch size; an OOM becomes a level with status ``oom``."""
    spec = get_spec(cfg.model, model_options)
    warm_calls, warm_ns = 0, 0
    try:
        sizes = pool_sizes(spec, cfg.shape_dist, cfg.sizes, cfg.seed, cfg.input_pool)
        pool = [synthetic_inputs(spec, batch, s, seed=cfg.seed + i) for i, s in enumerate(sizes)]
        workers = [runner.worker() for _ in range(cfg.in_flight)]
        if cfg.mode == "sync":
            warm_calls, warm_ns = _warm_up(lambda n: time_sync(workers[0], pool, n), 1,
                                           cfg.warmup_trials, cfg.warmup_ns)
            runner.reset_peak()
            times, wall = time_sync(workers[0], pool, cfg.trials), None
        else:
            warm_calls, warm_ns = _warm_up(lambda n: time_async(workers, pool, n), cfg.in_flight,
                                           cfg.warmup_trials, cfg.warmup_ns)
            runner.reset_peak()
            times, wall_ns = time_async(workers, pool, cfg.trials)
            wall = wall_ns
    except Exception as exc:
        if not is_oom(exc):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return DirectLevel(batch_size=batch, mode=cfg.mode, in_flight=cfg.in_flight, status="oom",
                           error=first[:200], warmup_trials=warm_calls, warmup_ns=warm_ns)
    summary = summarize_times(times, batch, wall)
    return DirectLevel(
        batch_size=batch, mode=cfg.mode, in_flight=cfg.in_flight, summary=summary,
        peak_mem_bytes=runner.peak_bytes(), rss_bytes=_rss_bytes(),
        warmup_trials=warm_calls, warmup_ns=warm_ns,
    )


def _rss_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # psutil missing or no /proc: the field is optional
        return None


def _progress(level: DirectLevel, out: TextIO) -> None:
    if level.summary is None:
        print(f"scan direct: batch {level.batch_size}: out of memory ({level.error}); scan ends here",
              file=out, flush=True)
        return
    s = level.summary
    print(
        f"scan direct: batch {level.batch_size:>5}: {s.items_per_s:12.1f} ± {s.items_per_s_sem:.1f} items/s  "
        f"median {s.median_ns / 1e6:.3f} ms  p95 {s.p95_ns / 1e6:.3f} ms  "
        f"({s.n} trials after {level.warmup_trials} warm-up)",
        file=out, flush=True,
    )


def run_direct_scan(
    cfg: DirectConfig,
    out_dir: Path,
    model_options: ModelOptions | None = None,
    progress: TextIO | None = None,
    on_level: Callable[[DirectLevel], None] | None = None,
) -> list[DirectLevel]:
    """Load the backend once, scan every batch size, rewrite ``direct.json``/``direct.csv`` after each."""
    opts = model_options or ModelOptions()
    err = progress if progress is not None else sys.stderr
    spec = get_spec(cfg.model, opts)
    spec.sizes(cfg.sizes)  # unknown or bad --points/--svs fail before the model loads
    if cfg.shape_dist is not None:
        symbol_sizes(spec, cfg.shape_dist)  # a misfit distribution fails before the model loads too
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {out_dir} ({exc.strerror}); give a writable --out") from None
    bcfg = BackendConfig(kind=cfg.backend, device=cfg.device, precision=cfg.precision,
                         model_file=Path(cfg.model_file) if cfg.model_file else None)
    backend = load_backend(spec, bcfg, opts)
    runner = make_runner(backend, cfg.device)
    print(f"scan direct: {spec.name} on {backend.describe()}, {cfg.mode} mode, "
          f"batches {list(cfg.batch_sizes)}, writing {out_dir}", file=err, flush=True)
    env = environment()
    config = cfg.to_dict() | {"backend_describe": backend.describe(), "runner": type(runner).__name__}
    levels: dict[int, DirectLevel] = {}
    trials: dict[int, list[DirectLevel]] = {}
    for _, batch in order(list(dict.fromkeys(cfg.batch_sizes)), cfg.repeats):
        level = measure_batch(runner, cfg, batch, opts)
        if level.status == "ok":
            trials.setdefault(batch, []).append(level)
            if cfg.repeats > 1:
                level = replace(level, trials=tuple(trials[batch]))
        elif batch in trials:  # out of memory on a later repeat: keep the repeats that ran
            level = replace(trials[batch][-1], trials=tuple(trials[batch]) if cfg.repeats > 1 else ())
        levels[batch] = level
        write_outputs(out_dir, env, config, list(levels.values()))
        _progress(level, err)
        if on_level is not None:
            on_level(level)
        if level.status == "oom":  # out of memory ends the scan (later repeats too)
            break
    return list(levels.values())
