"""The candidate server configurations of a tune and their checks against the model's limits.

A :class:`Candidate` is one PyTriton serving configuration: instances (``infer_func`` copies),
``max_batch_size``, the dynamic batcher's ``max_queue_delay_microseconds`` and
``preferred_batch_size``. :class:`TuneSpace` is the product of the value lists the user gives, in
order (smallest first: the first candidate is the one closest to PyTriton's defaults).
``--preferred-batch auto`` adds, for every candidate with a queue delay, the variant that prefers
full batches (``preferred_batch_size=[max_batch]``); with no queue delay the batcher never waits,
so a preferred size changes nothing and that variant is left out.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from saturate.errors import ConfigError

#: the name of the one candidate of ``-u URL`` (a server tune does not start)
EXTERNAL = "external"


@dataclass(frozen=True)
class Candidate:
    instances: int = 1
    max_batch: int = 64
    max_queue_delay_us: int = 0
    preferred_batch: tuple[int, ...] = ()
    external: bool = False

    @property
    def name(self) -> str:
        if self.external:
            return EXTERNAL
        pref = "-".join(map(str, self.preferred_batch)) or "none"
        return f"i{self.instances}_mb{self.max_batch}_d{self.max_queue_delay_us}_p{pref}"

    def serve_flags(self) -> list[str]:
        """The ``saturate serve`` flags of this configuration."""
        return [
            "--instances",
            str(self.instances),
            "--max-batch",
            str(self.max_batch),
            "--max-queue-delay-us",
            str(self.max_queue_delay_us),
            *self.preferred_flags(),
        ]

    def preferred_flags(self) -> list[str]:
        return ["--preferred-batch", ",".join(map(str, self.preferred_batch))] if self.preferred_batch else []

    def pytriton(self) -> str:
        """The matching PyTriton settings, as code."""
        pref = list(self.preferred_batch) or None
        return (
            f"triton.bind(..., infer_func=[infer_fn] * {self.instances}, "
            f"config=ModelConfig(max_batch_size={self.max_batch}, batcher=DynamicBatcher("
            f"max_queue_delay_microseconds={self.max_queue_delay_us}, preferred_batch_size={pref})))"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "instances": self.instances,
            "max_batch": self.max_batch,
            "max_queue_delay_us": self.max_queue_delay_us,
            "preferred_batch": list(self.preferred_batch),
            "external": self.external,
        }


@dataclass(frozen=True)
class TuneSpace:
    """Value lists of the search; :meth:`candidates` is their product (see the module docstring)."""

    batch_sizes: tuple[int, ...] = (1,)
    instances: tuple[int, ...] = (1,)
    max_queue_delay_us: tuple[int, ...] = (0,)
    preferred: str = "none"  # none | auto | a comma list
    max_batch: int | None = None  # None: the largest client batch, at least 64
    external: bool = False

    def __post_init__(self) -> None:
        for flag, values in (
            ("--batch-sizes", self.batch_sizes),
            ("--instances", self.instances),
            ("--max-queue-delay-us", self.max_queue_delay_us),
        ):
            if not values:
                raise ConfigError(f"{flag} is empty: the search space has no candidate; give e.g. {flag} 1")
        if min(self.batch_sizes) < 1 or min(self.instances) < 1:
            raise ConfigError("--batch-sizes and --instances values must be at least 1")
        if min(self.max_queue_delay_us) < 0:
            raise ConfigError("--max-queue-delay-us values must be 0 or more")
        if self.max_batch is not None and self.max_batch < 1:
            raise ConfigError("--max-batch must be at least 1")
        top = max(self.batch_sizes)
        if not self.external and top > self.resolved_max_batch:
            raise ConfigError(
                f"client batch {top} is above the model's max batch {self.resolved_max_batch}; "
                "lower --batch-sizes or raise --max-batch"
            )
        bad = [b for b in self.preferred_sizes() if not 1 <= b <= self.resolved_max_batch]
        if bad:
            raise ConfigError(
                f"--preferred-batch {bad} is outside the model's max batch 1..{self.resolved_max_batch}; "
                "lower it or raise --max-batch"
            )

    @property
    def resolved_max_batch(self) -> int:
        return self.max_batch if self.max_batch is not None else max(64, *self.batch_sizes)

    def preferred_sizes(self) -> tuple[int, ...]:
        if self.preferred in ("none", "auto"):
            return ()
        try:
            values = tuple(int(v) for v in self.preferred.split(",") if v.strip())
        except ValueError:
            raise ConfigError(
                f"--preferred-batch {self.preferred!r}: expected auto, none or a list like 16,32"
            ) from None
        if not values:
            raise ConfigError("--preferred-batch is empty; give auto, none or a list like 16,32")
        return values

    def preferred_options(self, delay_us: int) -> list[tuple[int, ...]]:
        if self.preferred == "none":
            return [()]
        if self.preferred == "auto":
            return [(), (self.resolved_max_batch,)] if delay_us > 0 else [()]
        return [self.preferred_sizes()]

    def candidates(self) -> list[Candidate]:
        if self.external:
            return [Candidate(external=True, instances=0, max_batch=0)]
        mb = self.resolved_max_batch
        out = [
            Candidate(instances=i, max_batch=mb, max_queue_delay_us=d, preferred_batch=p)
            for i, d in itertools.product(
                dict.fromkeys(self.instances), dict.fromkeys(self.max_queue_delay_us)
            )
            for p in self.preferred_options(d)
        ]
        return list({c.name: c for c in out}.values())

    def axes(self) -> tuple[list[int], list[int], int]:
        """Instances and delays in order, and how many preferred variants: the quick search's grid."""
        return (
            list(dict.fromkeys(self.instances)),
            list(dict.fromkeys(self.max_queue_delay_us)),
            2 if self.preferred == "auto" else 1,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_sizes": list(self.batch_sizes),
            "instances": list(self.instances),
            "max_queue_delay_us": list(self.max_queue_delay_us),
            "preferred_batch": self.preferred,
            "max_batch": self.resolved_max_batch,
            "external": self.external,
        }
