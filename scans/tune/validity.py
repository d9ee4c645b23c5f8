"""When a level's tail latency (p95, p99, ...) may be claimed: enough samples for that percentile.

MLPerf LoadGen's minimum-query rule (mlcommons/inference_policies ``inference_rules.adoc``, the
tail-latency table behind the scenarios' minimum query counts) sizes a run so that the measured
percentile has a given confidence and margin of error, from the normal approximation of the binomial
count of samples above the percentile:

    n = NormsInv((1 + confidence) / 2)^2 * q * (1 - q) / margin^2

with ``q`` the percentile as a fraction and ``margin`` in the same unit. MLPerf uses confidence 99 %
and margin (1 - q) / 20 (p90: 0.5 points, 23,886 queries; p99: 0.05 points, 262,742 queries).
Those counts take minutes per level; a tuner probes dozens of levels, so saturate's default is
confidence 95 % and margin (1 - q) / 4 (p95: ±1.25 points, 1,168 samples; p99: ±0.25 points,
6,085 samples) and ``--tail-confidence`` / ``--tail-margin`` restore MLPerf's values. The samples
are the requests of the windows the level merges (``latency.count``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from loadgen.result import LevelResult
from saturate.errors import ConfigError


def min_samples(percentile: float, confidence: float, margin_points: float) -> int:
    """Samples needed so the measured ``percentile`` is within ``margin_points`` at ``confidence``."""
    q, m = percentile / 100.0, margin_points / 100.0
    z = NormalDist().inv_cdf((1.0 + confidence) / 2.0)
    return math.ceil(z * z * q * (1.0 - q) / (m * m))


@dataclass(frozen=True)
class TailRule:
    """The percentile a budget is judged on and how sure the claim must be."""

    percentile: int = 95
    confidence: float = 0.95
    margin_points: float | None = None  # None: (100 - percentile) / 4

    def __post_init__(self) -> None:
        if not 1 <= self.percentile <= 99:
            raise ConfigError(f"--percentile {self.percentile} must lie in 1..99")
        if not 0.5 <= self.confidence < 1.0:
            raise ConfigError(f"--tail-confidence {self.confidence} must lie in [0.5, 1), e.g. 0.95")
        if self.margin_points is not None and not 0 < self.margin_points < 100 - self.percentile:
            raise ConfigError(
                f"--tail-margin {self.margin_points} must lie in (0, {100 - self.percentile}) "
                "percentile points, e.g. 1.25 for p95"
            )

    @property
    def margin(self) -> float:
        return (100 - self.percentile) / 4 if self.margin_points is None else self.margin_points

    @property
    def needed(self) -> int:
        return min_samples(self.percentile, self.confidence, self.margin)

    def samples(self, level: LevelResult) -> int:
        return int(level.latency.count or 0)

    def valid(self, level: LevelResult) -> bool:
        """The level's tail is claimable: it has the percentile and at least :attr:`needed` samples."""
        return self.percentile in level.latency.percentiles_ns and self.samples(level) >= self.needed

    def tail_ms(self, level: LevelResult) -> float | None:
        ns = level.latency.percentiles_ns.get(self.percentile)
        return None if ns is None else ns / 1e6

    def to_dict(self) -> dict[str, object]:
        return {
            "percentile": self.percentile,
            "confidence": self.confidence,
            "margin_points": self.margin,
            "min_samples": self.needed,
            "rule": "MLPerf LoadGen minimum queries (normal approximation)",
        }
