"""perf_analyzer's stability rule, in one place: when a level is stable, and what it is called if not.

The rule (perf_analyzer src/inference_profiler.cc, ``DetermineStability`` / ``IsDoneProfiling``):

- A request belongs to the window in which it **completes** (:class:`loadgen.drivers.Recorder`).
- Stable when at least ``STABILITY_WINDOW`` (3) windows exist and over the last 3 every throughput is
  > 0 and ``max/min <= 1 + s/100`` for throughput **and** for the stabilising latency (average, or
  p``--percentile``). An empty window counts as throughput 0 and infinite latency.
- At most ``max_trials`` windows. Early stop when ``--latency-threshold`` is set and any of the last 3
  windows has a stabilising latency >= the limit.
- Async relaxation (PA ``--async``; our clients are always asynchronous): after max trials, a level
  whose throughput alone is stable counts as stable, flagged ``stability="throughput_only"``.
- The reported numbers merge the last 3 windows: :meth:`StabilityRule.merged` says which, for every
  caller (:func:`loadgen.level.build_level`, the runner's latency file, ``scans/jobs/merge.py``).

A new stability rule lands here: :func:`is_stable`, :func:`over_threshold` and :func:`outcome` are the
decisions, :func:`outcome_message` perf_analyzer's words for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from loadgen.result import LevelResult, Mode, Stability, WindowSummary
from loadgen.stats import percentile_set

STABILITY_WINDOW = 3
"""Windows the rule looks at and a level merges (perf_analyzer's fixed 3)."""

T = TypeVar("T")


def merged(windows: Sequence[T], n: int = STABILITY_WINDOW) -> list[T]:
    """The windows a level's numbers come from: the last ``n`` (fewer if fewer exist)."""
    return list(windows[-n:]) if n > 0 else []


@dataclass(frozen=True)
class StabilityRule:
    """The knobs of the stability rule (``-s``, ``-r``, ``--percentile``, ``--latency-threshold``)."""

    stability_pct: float = 10.0
    max_trials: int = 10
    percentile: int | None = None
    latency_threshold_ms: float = 0.0  # 0: no limit
    throughput_relaxation: bool = True
    count_windows: bool = False  # only changes the advice in messages (-p vs --measurement-request-count)
    stability_window: int = STABILITY_WINDOW

    def __post_init__(self) -> None:
        if self.stability_pct < 0:
            raise ValueError("stability percentage must be >= 0")
        if self.max_trials < 1:
            raise ValueError("max trials must be >= 1")
        if self.stability_window < 1:
            raise ValueError("stability window must be >= 1")
        percentile_set(self.percentile)  # validates 1..99

    @property
    def window_flag(self) -> str:
        return "--measurement-request-count" if self.count_windows else "--measurement-interval"

    def merged(self, windows: Sequence[T]) -> list[T]:
        """The last ``stability_window`` windows: those the rule judged and the level reports."""
        return merged(windows, self.stability_window)


@dataclass(frozen=True)
class LevelContext:
    """Which level is measured under which rule (the words of the messages come from it)."""

    rule: StabilityRule
    mode: Mode
    value: float
    batch_size: int = 1
    processes: int = 1

    def describe(self) -> str:
        """'concurrency 4' or 'request rate 150'."""
        if self.mode == "request_rate":
            return f"request rate {self.value:g}"
        return f"{self.mode} {int(self.value)}"


def trial_values(s: WindowSummary, percentile: int | None) -> tuple[float, float]:
    """(throughput, stabilising latency ns) of a window; an empty window is (0, inf) like PA's error pass."""
    if s.latency is None or s.completed == 0:
        return 0.0, math.inf
    return s.infer_per_s, float(s.latency.stabilizing_ns(percentile))


def _ratio_ok(values: Sequence[float], limit: float) -> bool:
    lo, hi = min(values), max(values)
    if lo <= 0 or math.isinf(hi):
        return False
    return hi / lo <= limit


def is_stable(summaries: Sequence[WindowSummary], rule: StabilityRule, *, check_latency: bool = True) -> bool:
    """perf_analyzer's ``DetermineStability`` over the last ``rule.stability_window`` windows."""
    if len(summaries) < rule.stability_window:
        return False
    vals = [trial_values(s, rule.percentile) for s in rule.merged(summaries)]
    thr = [v[0] for v in vals]
    if any(t == 0 for t in thr):
        return False
    limit = 1 + rule.stability_pct / 100
    if not _ratio_ok(thr, limit):
        return False
    return not check_latency or _ratio_ok([v[1] for v in vals], limit)


def over_threshold(summaries: Sequence[WindowSummary], rule: StabilityRule) -> bool:
    """PA's early exit: a limit is set, >= 3 windows, and one of the last 3 is at or over it."""
    if not rule.latency_threshold_ms or len(summaries) < rule.stability_window:
        return False
    limit_ns = rule.latency_threshold_ms * 1e6
    return any(trial_values(s, rule.percentile)[1] >= limit_ns for s in rule.merged(summaries))


def done(summaries: Sequence[WindowSummary], rule: StabilityRule) -> bool:
    """True once stable, over the latency limit, or after ``max_trials`` windows."""
    return is_stable(summaries, rule) or over_threshold(summaries, rule) or len(summaries) >= rule.max_trials


def outcome(
    summaries: Sequence[WindowSummary],
    rule: StabilityRule,
    interrupted: str | None,
    merged_latency_ns: float | None,
) -> tuple[Stability, bool]:
    """(stability label, counts as stable) of a level that ended after ``summaries``.

    ``merged_latency_ns``: the stabilising latency of the merged windows; a level stable window by
    window whose merged latency reaches ``--latency-threshold`` is over it (PA checks the merge too).
    """
    if interrupted is not None:
        return "interrupted", False
    if not summaries or any(s.completed == 0 for s in rule.merged(summaries)):
        return "empty_window", False
    over = over_threshold(summaries, rule)
    if is_stable(summaries, rule):
        label: Stability = "stable"
    elif rule.throughput_relaxation and is_stable(summaries, rule, check_latency=False) and (
        over or len(summaries) >= rule.max_trials
    ):
        label = "throughput_only"
    elif over:
        return "over_latency_threshold", False
    else:
        return "unstable", False
    if (
        rule.latency_threshold_ms
        and merged_latency_ns is not None
        and merged_latency_ns // 1_000_000 >= rule.latency_threshold_ms
    ):
        return "over_latency_threshold", True
    return label, True


def outcome_message(level: LevelResult, ctx: LevelContext, interrupted: str | None = None) -> str | None:
    """perf_analyzer's words for a level that is not recorded as stable; None when it is."""
    rule = ctx.rule
    if level.stability == "interrupted":
        return f"Level {ctx.describe()} ended early: {interrupted or 'interrupted'}"
    if level.stability == "empty_window":
        return (
            "No valid requests recorded within a measurement window. "
            f"Please use a larger time window ({rule.window_flag})."
        )
    if level.stability == "unstable":
        return (
            f"Failed to obtain stable measurement within {len(level.windows)} measurement windows for "
            f"{ctx.describe()}. Please try to increase the {rule.window_flag}."
        )
    if level.stability == "over_latency_threshold":
        return f"Measured latency went over the set limit of {rule.latency_threshold_ms:g} msec."
    if level.stability == "throughput_only":
        return (
            "Request latency is not stabilizing (throughput alone is stable). Please try lowering the load."
        )
    return None
