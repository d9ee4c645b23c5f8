"""The Pareto front of throughput (higher is better) against tail latency (lower is better)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    """One measured level of one candidate: its throughput and tail latency."""

    candidate: str
    batch: int
    concurrency: int
    throughput: float
    latency_ms: float


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """The points no other point beats on both axes, by rising latency (ties: the higher throughput).

    A point is dominated when another has latency <= and throughput >= with one of them strict.
    """
    ordered = sorted(points, key=lambda p: (p.latency_ms, -p.throughput))
    front: list[Point] = []
    for p in ordered:
        if not front or p.throughput > front[-1].throughput:
            front.append(p)
    return front
