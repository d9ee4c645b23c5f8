"""The concurrency search for one candidate server and one client batch size.

The question is the highest-throughput concurrency whose tail latency stays within the budget. A
fixed grid either wastes levels or misses the knee, so the search doubles and then bisects:

1. measure concurrency 1; if its tail is over the budget the budget is never met (no best point);
2. double (1, 2, 4, ...) while the tail stays within the budget and throughput still rises by at
   least ``min_gain`` (default 5 %) over the best so far, up to ``max_concurrency``;
3. when a doubling breaks the budget at ``hi``, bisect between the last level within it (``lo``)
   and ``hi`` while ``hi - lo > 1``: ``mid = (lo + hi) // 2`` becomes ``lo`` when within the
   budget, else ``hi``.

Step 3 is perf_analyzer's ``--binary-search`` with ``--latency-threshold`` (perf_analyzer
``src/inference_profiler.h``, ``Profile<T>``: measure start, stop if it misses the threshold, measure
end, stop if it meets it, else bisect while ``end - start > step``); the doubling of step 2 finds
the ``end`` perf_analyzer needs to be given. Unlike perf_analyzer, every level probed is kept (those
over the budget too) and a level is judged on its p``percentile`` against the budget, not on the
stabilising latency truncated to ms. A level whose tail is within the budget but rests on too few
samples (:mod:`scans.tune.validity`) does not end the search and cannot be the best point; the
outcome's ``notes`` say so. The best point is the highest throughput among valid levels within the
budget. When throughput stops rising the search ends without bisecting: more concurrency only adds
queueing delay.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from saturate.errors import ConfigError


@dataclass(frozen=True)
class Probe:
    """What the search needs of one measured level."""

    concurrency: int
    throughput: float
    tail_ms: float | None  # None: the level failed (nothing measured)
    valid: bool = True  # enough samples for the tail claim
    samples: int = 0


Measure = Callable[[int], Awaitable[Probe]]


@dataclass(frozen=True)
class SearchRule:
    budget_ms: float
    max_concurrency: int = 256
    min_gain: float = 0.05

    def __post_init__(self) -> None:
        if not self.budget_ms > 0:
            raise ConfigError("--latency-budget-ms must be > 0, e.g. 20")
        if self.max_concurrency < 1:
            raise ConfigError("--max-concurrency must be at least 1")
        if not 0 <= self.min_gain < 1:
            raise ConfigError("--min-gain must lie in [0, 1), e.g. 0.05")

    def over(self, p: Probe) -> bool:
        return p.tail_ms is None or p.tail_ms > self.budget_ms

    def within(self, p: Probe) -> bool:
        """Within the budget and claimable (enough samples)."""
        return not self.over(p) and p.valid


@dataclass
class SearchOutcome:
    probes: list[Probe] = field(default_factory=list)  # in the order measured
    best: Probe | None = None
    stop: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "measured": [p.concurrency for p in self.probes],
            "best_concurrency": None if self.best is None else self.best.concurrency,
            "stop": self.stop,
            "notes": list(self.notes),
        }


async def search_concurrency(measure: Measure, rule: SearchRule) -> SearchOutcome:
    """Double, then bisect (see the module docstring); every probe is in the outcome."""
    out = SearchOutcome()
    seen: dict[int, Probe] = {}

    async def at(c: int) -> Probe:
        if c not in seen:
            seen[c] = await measure(c)
            out.probes.append(seen[c])
        return seen[c]

    first = await at(1)
    if rule.over(first):
        out.stop = (
            "level failed at concurrency 1"
            if first.tail_ms is None
            else f"budget never met: p-tail {first.tail_ms:.3f} ms at concurrency 1 > {rule.budget_ms:g} ms"
        )
        _finish(out, rule)
        return out
    lo, hi, top = 1, 0, first.throughput
    while True:
        nxt = min(lo * 2, rule.max_concurrency)
        if nxt == lo:
            out.stop = f"max concurrency {rule.max_concurrency} reached"
            break
        p = await at(nxt)
        if rule.over(p):
            hi = nxt
            out.stop = f"budget broken at concurrency {nxt}"
            break
        lo = nxt
        if p.throughput < top * (1.0 + rule.min_gain):
            out.stop = f"throughput stopped rising at concurrency {nxt}"
            break
        top = p.throughput
    while hi and hi - lo > 1:
        mid = (lo + hi) // 2
        if rule.over(await at(mid)):
            hi = mid
        else:
            lo = mid
    _finish(out, rule)
    return out


def _finish(out: SearchOutcome, rule: SearchRule) -> None:
    ok = [p for p in out.probes if rule.within(p)]
    out.best = max(ok, key=lambda p: p.throughput) if ok else None
    for p in out.probes:
        if not rule.over(p) and not p.valid:
            out.notes.append(
                f"concurrency {p.concurrency}: tail within the budget on {p.samples} samples, "
                "too few to claim it (not used)"
            )
    if out.best is not None:
        better = [
            p for p in out.probes if not rule.over(p) and not p.valid and p.throughput > out.best.throughput
        ]
        if better:
            out.notes.append(
                "the budget decision rests on too few samples: a faster level within the budget "
                "was not claimable (lengthen -p or lower the margin)"
            )
