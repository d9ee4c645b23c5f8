"""Recorded and ramped open-loop schedules: `--request-intervals FILE` and `--request-rate-ramp A:B:Ts`.

`--request-intervals` reads perf_analyzer's format (one interval in µs per line; perf_analyzer
src/custom_load_manager.cc reads the file and cycles through it): request k is sent at the sum of
the first k+1 intervals, and the list repeats. The level is measured like any request-rate level
(windows until stable) at the file's mean rate; its result's ``traffic.schedule`` records how late
the sends were against the file (share later than 1 ms, p50/p99 lag).

`--request-rate-ramp A:B:Ts` raises the offered rate linearly from A to B requests/s over T seconds
(send k at the t solving A·t + (B-A)·t²/(2T) = k); it is not a stability decision: `run_ramp`
cuts `-p` windows for the whole ramp and reports, per window, the offered rate against the achieved
throughput and latency (``saturate.ramp/1`` JSON).
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from loadgen.drivers import DELAY_TOLERANCE_NS
from loadgen.result import WindowStats, write_json_atomic
from loadgen.windows import window_summary
from saturate.errors import ConfigError

if TYPE_CHECKING:
    from loadgen.runner import LoadSession

I64 = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True)
class Schedule:
    """An open-loop send schedule that is not a constant/Poisson rate."""

    kind: Literal["intervals", "ramp"]
    intervals_us: tuple[int, ...] = ()
    source: str = ""
    start_rate: float = 0.0
    end_rate: float = 0.0
    duration_s: float = 0.0

    @property
    def mean_rate(self) -> float:
        if self.kind == "intervals":
            return len(self.intervals_us) * 1e6 / sum(self.intervals_us)
        return (self.start_rate + self.end_rate) / 2

    @property
    def period_ns(self) -> int:
        """After this long the schedule repeats (a ramp does not repeat within its duration)."""
        if self.kind == "intervals":
            return sum(self.intervals_us) * 1000
        return round(self.duration_s * 1e9) + 1

    def offsets(self) -> I64:
        """Send times in ns from the level start, for one period."""
        if self.kind == "intervals":
            out: I64 = np.cumsum(np.asarray(self.intervals_us, dtype=np.int64)) * 1000
            return out
        a, t_end = self.start_rate, self.duration_s
        slope = (self.end_rate - a) / t_end
        n = max(1, math.floor(a * t_end + slope * t_end * t_end / 2))
        k = np.arange(n, dtype=np.float64)
        t = k / a if abs(slope) < 1e-12 else (-a + np.sqrt(a * a + 2 * slope * k)) / slope
        return np.asarray(t * 1e9, dtype=np.int64)

    def rate_at(self, t_s: float) -> float:
        """The offered rate (requests/s) at `t_s` seconds into the schedule."""
        if self.kind == "intervals":
            return self.mean_rate
        return self.start_rate + (self.end_rate - self.start_rate) * min(max(t_s, 0.0), self.duration_s) / (
            self.duration_s)

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "intervals":
            return {"kind": "intervals", "file": self.source, "intervals": len(self.intervals_us),
                    "mean_rate": self.mean_rate, "period_s": self.period_ns / 1e9}
        return {"kind": "ramp", "start_rate": self.start_rate, "end_rate": self.end_rate,
                "duration_s": self.duration_s}


def read_intervals(path: str) -> Schedule:
    """perf_analyzer's `--request-intervals` file: one interval in µs per line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--request-intervals {path}: no such file (one interval in microseconds a line)")
    values: list[int] = []
    for i, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            v = int(line.strip())
        except ValueError:
            raise ConfigError(f"--request-intervals {path}: line {i} {line.strip()[:20]!r} is not an integer "
                              "number of microseconds") from None
        if v < 0:
            raise ConfigError(f"--request-intervals {path}: line {i} is negative")
        values.append(v)
    if not values or sum(values) <= 0:
        raise ConfigError(f"--request-intervals {path}: needs at least one interval > 0 µs")
    return Schedule("intervals", tuple(values), source=path)


def parse_ramp(text: str) -> Schedule:
    """`START:END:DURATION` with the duration in s (`60s`, `60`) or ms (`500ms`)."""
    parts = text.split(":")
    hint = "expected START:END:DURATION, e.g. 100:1000:60s"
    if len(parts) != 3:
        raise ConfigError(f"--request-rate-ramp {text!r}: {hint}")
    dur = parts[2].strip().lower()
    scale = 1e-3 if dur.endswith("ms") else 1.0
    dur = dur.removesuffix("ms").removesuffix("s")
    try:
        start, end, duration = float(parts[0]), float(parts[1]), float(dur) * scale
    except ValueError:
        raise ConfigError(f"--request-rate-ramp {text!r}: {hint}") from None
    if start <= 0 or end <= 0 or duration <= 0:
        raise ConfigError(f"--request-rate-ramp {text!r}: rates and duration must be > 0")
    return Schedule("ramp", start_rate=start, end_rate=end, duration_s=duration)


def send_lag(windows: list[WindowStats]) -> dict[str, Any]:
    """How late the sends were against the schedule (intended → actual send), from open-loop windows."""
    lags = [w.latencies_ns - w.service_ns for w in windows
            if w.service_ns is not None and len(w.latencies_ns)]
    lag = np.concatenate(lags) if lags else np.zeros(0, np.int64)
    if not len(lag):
        return {"requests": 0}
    return {"requests": len(lag), "late_share": float(np.mean(lag > DELAY_TOLERANCE_NS)),
            "lag_p50_us": float(np.percentile(lag, 50)) / 1e3,
            "lag_p99_us": float(np.percentile(lag, 99)) / 1e3, "lag_max_us": float(lag.max()) / 1e3}


async def run_ramp(session: LoadSession) -> int:
    """Measure a `--request-rate-ramp`: `-p` windows over the ramp, offered vs achieved per window."""
    cfg = session.cfg
    sched = cfg.schedule
    assert sched is not None and sched.kind == "ramp"
    window_ns = cfg.measurement_interval_ms * 1_000_000
    count = max(1, math.ceil(sched.duration_s * 1e9 / window_ns))
    source = session.source
    points: list[dict[str, Any]] = []
    await source.start_level(sched.start_rate)
    try:
        t0 = edge = time.perf_counter_ns()
        await source.reset(edge)
        for _ in range(count):
            await asyncio.sleep(max(0.0, (edge + window_ns - time.perf_counter_ns()) / 1e9))
            edge = time.perf_counter_ns()
            w = await source.cut(edge)
            s = window_summary(w, cfg.batch_size, cfg.percentile)
            mid = ((w.start_ns + w.end_ns) / 2 - t0) / 1e9
            lat = s.latency
            point = {"t_s": round(mid, 3), "offered_rps": sched.rate_at(mid),
                     "achieved_rps": s.completed * 1e9 / max(1, w.duration_ns), "infer_per_s": s.infer_per_s,
                     "completed": s.completed, "failed": s.failed, "delayed": s.delayed, "dropped": s.dropped,
                     "latency_us": None if lat is None else lat.to_dict(), "send_lag": send_lag([w])}
            points.append(point)
            p50 = "-" if lat is None else f"{lat.p(50) / 1e3:.0f}"
            p95 = "-" if lat is None else f"{lat.p(95) / 1e3:.0f}"
            print(f"  ramp t={mid:6.1f} s  offered {point['offered_rps']:8.1f}/s  achieved "
                  f"{point['achieved_rps']:8.1f}/s  p50 {p50} us  p95 {p95} us", file=sys.stderr, flush=True)
            if cfg.json_file:
                write_json_atomic(cfg.json_file, ramp_doc(cfg.to_dict(), points))
    finally:
        await source.stop_level()
    if cfg.json_file:
        write_json_atomic(cfg.json_file, ramp_doc(cfg.to_dict(), points))
    return 0


def ramp_doc(config: dict[str, Any], points: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schema": "saturate.ramp/1", "config": config, "points": points}
