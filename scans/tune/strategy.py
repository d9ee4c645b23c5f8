"""Which candidate server configuration to measure next: ``grid`` (all) or ``quick`` (a hill climb).

A strategy is a pure function of the scores measured so far (candidate name → best throughput within
the budget, 0 when the budget was never met or the candidate failed), so a resumed tune picks up
exactly where it stopped.

``quick`` is a coordinate hill climb over the ordered axes (instances, queue delay, preferred-batch
variant), as model_analyzer's quick mode does over instances and max batch size
(triton-inference-server/model_analyzer ``model_analyzer/config/generate/quick_run_config_generator.py``
with ``neighborhood.py`` and ``coordinate.py``): start at the smallest coordinate (one instance, no
delay: PyTriton's defaults), measure every unmeasured neighbour one step away on each axis, move to the
best neighbour when it beats the current point (by more than ``min_gain``, default 0), stop when none
does or when ``--max-candidates`` is reached. Why this and not optuna (TPE, model_analyzer's
``optuna_run_config_generator.py``): the axes here are few, short and ordered, and throughput along
each of them rises to a plateau (more instances or more delay help until the device or the budget is
the limit), which is the shape a hill climb follows in a handful of steps; each evaluation costs a
server start plus a concurrency search (tens of seconds), and TPE needs about ten random start-up
trials before its model guides anything — more than the whole space of a typical tune. Its weakness:
a failed or noisy candidate on the path to the best can stop it early. ``tests/unit/test_tune_search.py``
checks it on a synthetic hill (exact best, fewer candidates) and on a CPU grid recorded with
``benchmarks/tune_grid_cpu.sh`` (``tests/fixtures/tune/``: 5 of 9 candidates, 79 % of the grid's best,
because 3 servers failed to start on the loaded machine, one next to the best).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from scans.tune.space import Candidate, TuneSpace

STRATEGIES: tuple[str, ...] = ("grid", "quick")
Coord = tuple[int, int, int]


class Strategy(Protocol):
    @property
    def name(self) -> str: ...

    def next(self, scores: Mapping[str, float]) -> Candidate | None:
        """The next candidate to measure given ``scores`` of those measured, or None when done."""
        ...


@dataclass(frozen=True)
class GridStrategy:
    space: TuneSpace
    max_candidates: int | None = None
    name: str = "grid"

    def next(self, scores: Mapping[str, float]) -> Candidate | None:
        if self.max_candidates is not None and len(scores) >= self.max_candidates:
            return None
        return next((c for c in self.space.candidates() if c.name not in scores), None)


@dataclass(frozen=True)
class QuickStrategy:
    space: TuneSpace
    max_candidates: int | None = None
    min_gain: float = 0.0
    name: str = "quick"

    def at(self, coord: Coord) -> Candidate | None:
        inst, delays, nvar = self.space.axes()
        i, d, p = coord
        if not (0 <= i < len(inst) and 0 <= d < len(delays) and 0 <= p < nvar):
            return None
        options = self.space.preferred_options(delays[d])
        if p >= len(options):
            return None
        return Candidate(
            instances=inst[i],
            max_batch=self.space.resolved_max_batch,
            max_queue_delay_us=delays[d],
            preferred_batch=options[p],
        )

    def neighbours(self, coord: Coord) -> list[Coord]:
        out: list[Coord] = []
        for axis in range(3):
            for step in (1, -1):
                c = list(coord)
                c[axis] += step
                t = (c[0], c[1], c[2])
                if self.at(t) is not None:
                    out.append(t)
        return out

    def next(self, scores: Mapping[str, float]) -> Candidate | None:
        if self.max_candidates is not None and len(scores) >= self.max_candidates:
            return None
        cur: Coord = (0, 0, 0)
        visited = {cur}
        while True:
            here = self.at(cur)
            assert here is not None
            if here.name not in scores:
                return here
            best, best_score = cur, scores[here.name]
            for n in self.neighbours(cur):
                cand = self.at(n)
                assert cand is not None
                if cand.name not in scores:
                    return cand
                if scores[cand.name] > best_score * (1.0 + self.min_gain) and n not in visited:
                    best, best_score = n, scores[cand.name]
            if best == cur:
                return None
            cur = best
            visited.add(cur)


def make_strategy(name: str, space: TuneSpace, max_candidates: int | None) -> Strategy:
    if name == "quick":
        return QuickStrategy(space, max_candidates)
    return GridStrategy(space, max_candidates)
