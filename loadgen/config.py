"""`LoadConfig`: every `saturate load` setting after defaults, and the range/shape parsers.

Each setting has one role (:data:`ROLES`): the ``endpoint`` (which server; may change between runs of
one study), the ``target`` (what is sent), the ``levels`` (which concurrencies / rates, batch), the
``rule`` (how a level is measured and judged), the ``outputs`` (where results go and what is printed)
and the ``run`` (when it starts, what it is gated on). :func:`identity` — what must match for
``--resume`` — is the ``target`` and ``rule`` settings; a new setting declares its role in ROLES.

Defaults follow perf_analyzer (`-p 5000`, `-s 10`, `-r 10`, count windows of 50 requests,
metrics every 1000 ms). Parsers raise :class:`~saturate.errors.ConfigError` with one line that
names the fix.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from loadgen.schedules import Schedule
from loadgen.shapes import ShapeDist
from loadgen.stability import StabilityRule
from saturate.errors import ConfigError

Protocol = Literal["grpc", "http"]
Distribution = Literal["constant", "poisson"]
MeasurementMode = Literal["time_windows", "count_windows"]
#: `--driver`: which loop keeps a closed level's requests in flight (loadgen.threaded, loadgen.native_loop)
DRIVERS = ("auto", "native", "native-sync", "threads", "asyncio")
#: the drivers that run on gRPC's C core (loadgen.native_loop)
NATIVE_DRIVERS = ("native", "native-sync")
#: `--sender`: what the threads send gRPC through (loadgen.clients.native_grpc)
SENDERS = ("auto", "native", "python")

#: The furthest ahead `--start-at` may be (seconds): a wait longer than a day is a typo.
MAX_START_WAIT_S = 86400
#: Safety stop for open-ended sweeps (`end` 0 with a latency threshold).
MAX_OPEN_ENDED_LEVELS = 256


@dataclass(frozen=True)
class Range:
    """A perf_analyzer range `start:end:step`; `end == 0` means open-ended (needs a latency limit)."""

    start: float
    end: float
    step: float

    def values(self) -> Iterator[float]:
        """The level values in order; open-ended ranges stop after MAX_OPEN_ENDED_LEVELS."""
        if self.end == 0:
            for i in range(MAX_OPEN_ENDED_LEVELS):
                yield self.start + i * self.step
            return
        for i in itertools.count():
            v = self.start + i * self.step
            if v > self.end + 1e-9:
                return
            yield v


def parse_range(text: str, flag: str, integer: bool) -> Range:
    """Parse `start[:end[:step]]` as perf_analyzer does; a missing end means one level."""
    parts = text.split(":")
    if not 1 <= len(parts) <= 3 or any(p.strip() == "" for p in parts):
        raise ConfigError(f"{flag} {text!r}: expected start[:end[:step]], e.g. 1:8:1")
    try:
        nums = [int(p) if integer else float(p) for p in parts]
    except ValueError:
        kind = "integers" if integer else "numbers"
        raise ConfigError(f"{flag} {text!r}: start, end and step must be {kind}") from None
    start = nums[0]
    end = nums[1] if len(nums) > 1 else start
    step = nums[2] if len(nums) > 2 else 1
    if start <= 0:
        raise ConfigError(f"{flag} {text!r}: start must be > 0")
    if step <= 0:
        raise ConfigError(f"{flag} {text!r}: step must be > 0")
    if end != 0 and end < start:
        raise ConfigError(f"{flag} {text!r}: end {end} is below start {start}; write {end}:{start}")
    return Range(float(start), float(end), float(step))


def parse_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """Parse `--shape NAME:d1,d2,...` (dims without the batch dimension)."""
    name, sep, dims = text.rpartition(":")
    if not sep or not name or not dims:
        raise ConfigError(f"--shape {text!r}: expected NAME:d1,d2 (dims without the batch dimension)")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        raise ConfigError(f"--shape {text!r}: dims must be integers, e.g. pf_points:2,100") from None
    if any(d <= 0 for d in shape):
        raise ConfigError(f"--shape {text!r}: every dim must be > 0")
    return name, shape


@dataclass(frozen=True)
class LoadConfig:
    """Every `saturate load` setting after defaults (times in ms as on the command line)."""

    model: str
    url: str = ""
    protocol: Protocol = "grpc"
    model_version: str = ""
    batch_size: int = 1
    concurrency_range: Range | None = None
    request_rate_range: Range | None = None
    request_distribution: Distribution = "constant"
    shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    input_data: str = "random"
    measurement_interval_ms: int = 5000
    measurement_mode: MeasurementMode = "time_windows"
    measurement_request_count: int = 50
    stability_percentage: float = 10.0
    max_trials: int = 10
    percentile: int | None = None
    latency_threshold_ms: int = 0
    warmup_request_count: int = 0
    async_relaxation: bool = False
    csv_file: str | None = None
    verbose_csv: bool = False
    collect_metrics: bool = False
    metrics_url: str | None = None
    metrics_interval_ms: int = 1000
    processes: int = 1
    #: `--processes auto`: start with `processes`, add one while the verdict says `client` (loadgen.autoproc)
    processes_auto: bool = False
    event_loop: str = "uvloop"
    #: `--driver`: closed loops on threads (blocking sends) or coroutines (loadgen.threaded)
    driver: str = "auto"
    #: `--sender`: the threaded driver's gRPC sender, native (C core) or grpcio (loadgen.clients.native_grpc)
    sender: str = "auto"
    json_file: str | None = None
    latency_file: str | None = None
    start_at: float | None = None
    access_token: str | None = None
    request_timeout_s: float = 30.0
    seed: int = 0
    max_outstanding: int = 0
    continue_on_unstable: bool = False
    verbose: bool = False
    shape_dist: ShapeDist | None = None  # --shape-dist/--dim-dist/--dims-file (loadgen.shapes)
    schedule: Schedule | None = None  # --request-intervals / --request-rate-ramp (loadgen.schedules)
    quiet: bool = False
    repeats: int = 1  # --repeats: every level measured N times, round-robin (loadgen.repeats)
    slo: tuple[str, ...] = ()  # --slo gate expressions (loadgen.gates), checked after the sweep
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.concurrency_range is None and self.request_rate_range is None:
            object.__setattr__(self, "concurrency_range", Range(1, 1, 1))
        if not self.url:
            object.__setattr__(self, "url", "localhost:8001" if self.protocol == "grpc" else "localhost:8000")
        self.validate()

    @property
    def mode(self) -> Literal["concurrency", "request_rate"]:
        return "request_rate" if self.request_rate_range is not None else "concurrency"

    @property
    def level_range(self) -> Range:
        r = self.request_rate_range if self.request_rate_range is not None else self.concurrency_range
        assert r is not None
        return r

    @property
    def resolved_metrics_url(self) -> str:
        """perf_analyzer's default: `<host of -u>:8002/metrics`."""
        if self.metrics_url:
            url = self.metrics_url
        else:
            host = self.url.split("://")[-1].rsplit(":", 1)[0]
            url = f"{host}:8002/metrics"
        return url if "://" in url else f"http://{url}"

    @property
    def client_sender(self) -> str:
        """The `--sender` the client is made with: `--driver native[-sync]` needs the native one."""
        return "native" if self.driver in NATIVE_DRIVERS else self.sender

    def levels(self) -> Iterator[float]:
        return self.level_range.values()

    def validate(self) -> None:
        if self.concurrency_range is not None and self.request_rate_range is not None:
            raise ConfigError("give either --concurrency-range or --request-rate-range, not both")
        if self.level_range.end == 0 and self.latency_threshold_ms <= 0:
            raise ConfigError("a range with end 0 needs --latency-threshold MS to know where to stop")
        checks: list[tuple[bool, str]] = [
            (self.batch_size >= 1, "-b must be >= 1"),
            (self.measurement_interval_ms > 0, "-p/--measurement-interval must be > 0 ms"),
            (self.measurement_request_count > 0, "--measurement-request-count must be > 0"),
            (self.stability_percentage > 0, "-s/--stability-percentage must be > 0"),
            (self.max_trials >= 1, "-r/--max-trials must be >= 1"),
            (self.percentile is None or 1 <= self.percentile <= 99, "--percentile must be between 1 and 99"),
            (self.latency_threshold_ms >= 0, "--latency-threshold must be >= 0 ms"),
            (self.warmup_request_count >= 0, "--warmup-request-count must be >= 0"),
            (self.metrics_interval_ms > 0, "--metrics-interval must be > 0 ms"),
            (self.processes >= 1, "--processes must be >= 1"),
            (self.max_outstanding >= 0, "--max-outstanding must be >= 0 (0 = no cap)"),
            (0 <= self.request_timeout_s <= 86400, "--request-timeout must be between 0 (none) and 86400 s"),
            (0 <= self.seed < 2**32, "--seed must be between 0 and 2**32-1"),
            (self.start_at is None or self.start_at - time.time() <= MAX_START_WAIT_S,
             f"--start-at must be a UNIX time within {MAX_START_WAIT_S // 3600} h from now (date +%s)"),
            (self.repeats >= 1, "--repeats must be >= 1"),
            (self.event_loop in ("uvloop", "asyncio"), "--event-loop must be uvloop or asyncio"),
            (self.driver in DRIVERS, f"--driver must be one of {', '.join(DRIVERS)}"),
            (self.driver not in NATIVE_DRIVERS or (self.protocol == "grpc" and self.sender != "python"),
             f"--driver {self.driver} runs gRPC's C core: it needs -i grpc and not --sender python"),
            (self.driver not in NATIVE_DRIVERS or self.shape_dist is None,
             f"--driver {self.driver} does not count drawn shapes: use --driver threads or asyncio with "
             "--shape-dist"),
            # whether the native sender is built is checked where the client is made (loadgen.clients)
            (self.sender in SENDERS, "--sender must be auto, native or python"),
            (self.sender != "native" or self.protocol == "grpc", "--sender native is for -i grpc only"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if self.warmup_request_count and sum(1 for _ in itertools.islice(self.levels(), 2)) > 1:
            raise ConfigError("--warmup-request-count needs a single concurrency or rate, not a range")
        if self.processes > 1 and self.mode == "concurrency" and self.level_range.start < self.processes:
            raise ConfigError(
                f"--processes {self.processes} needs concurrency >= {self.processes} "
                "(each process keeps >= 1 request in flight)"
            )
        if (self.processes > 1 or self.processes_auto) and (
                self.shape_dist is not None or self.schedule is not None):
            raise ConfigError("--shape-dist and recorded/ramped schedules run in one process; "
                              "drop --processes")
        from loadgen.gates import parse_all

        parse_all(self.slo, "--slo")  # a malformed gate is one line before anything is measured
        if self.event_loop == "uvloop":
            from loadgen.eventloop import available

            if not available("uvloop"):
                raise ConfigError("--event-loop uvloop needs the uvloop package: pip install uvloop, "
                                  "or pass --event-loop asyncio")
        names = [n for n, _ in self.shapes]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ConfigError(f"--shape given twice for {sorted(dup)[0]!r}")

    def stability_rule(self) -> StabilityRule:
        """The stability rule these settings ask for (``-s``, ``-r``, ``--percentile``, ...)."""
        return StabilityRule(
            stability_pct=self.stability_percentage,
            max_trials=self.max_trials,
            percentile=self.percentile,
            latency_threshold_ms=float(self.latency_threshold_ms),
            throughput_relaxation=self.async_relaxation,
            count_windows=self.measurement_mode == "count_windows",
        )

    def to_dict(self) -> dict[str, Any]:
        """Every setting, JSON-friendly (for the run JSON's `config`)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            if isinstance(v, Range):
                v = {"start": v.start, "end": v.end, "step": v.step}
            elif f.name == "shapes":
                v = {n: list(d) for n, d in v}
            elif f.name in ("shape_dist", "schedule"):
                v = None if v is None else v.to_dict()
            elif f.name == "slo":
                v = list(v)
            elif f.name == "access_token" and v:
                v = "***"
            out[f.name] = v
        out["mode"] = self.mode
        return out


Role = Literal["endpoint", "target", "levels", "rule", "outputs", "run"]

#: Each LoadConfig setting's role (see the module doc); tests check that every field has one.
ROLES: dict[str, Role] = {
    **dict.fromkeys(("url", "access_token", "metrics_url"), "endpoint"),
    **dict.fromkeys(("model", "protocol", "model_version", "shapes", "input_data", "shape_dist", "seed",
                     "request_distribution", "schedule", "request_timeout_s"), "target"),
    **dict.fromkeys(("batch_size", "concurrency_range", "request_rate_range"), "levels"),
    **dict.fromkeys(("measurement_interval_ms", "measurement_mode", "measurement_request_count",
                     "stability_percentage", "max_trials", "percentile", "latency_threshold_ms",
                     "warmup_request_count", "async_relaxation", "collect_metrics", "metrics_interval_ms",
                     "processes", "processes_auto", "event_loop", "driver", "sender", "max_outstanding",
                     "repeats", "continue_on_unstable"), "rule"),
    **dict.fromkeys(("csv_file", "verbose_csv", "json_file", "latency_file", "verbose", "quiet", "extra"),
                    "outputs"),
    **dict.fromkeys(("start_at", "slo"), "run"),
}
IDENTITY_ROLES: frozenset[Role] = frozenset({"target", "rule"})


def identity(load: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a recorded ``config.load`` block that must match for ``--resume``.

    Keys this version does not know (an older file's) count, so a changed meaning never resumes.
    """
    return {k: v for k, v in load.items() if ROLES.get(k, "target") in IDENTITY_ROLES}
