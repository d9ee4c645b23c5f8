"""Gate expressions: one parser and evaluator for ``--slo`` (load, scan server) and ``--fail-on`` (compare).

Grammar (k6's thresholds are the model, project grafana/k6 ``metrics/thresholds.go``)::

    GATE   := METRIC OP NUMBER [UNIT]
    METRIC := p<N> (1..99.9) | avg | throughput | infer_per_s | requests_per_s
              | power_w | infer_per_j | j_per_infer
    OP     := <  <=  >  >=  ==  !=
    UNIT   := ns us µs ms s          (latency metrics; required)
              /s                      (throughput, optional)
              W                       (power_w, optional)
              %                       (a relative change, signed: compare's --fail-on only)

``--slo 'p95 < 20ms'`` states the requirement: the gate fails on a level where it is false.
``--fail-on 'p95 > +10%'`` states the failure: it fails where it is true, on the change B vs A.
A value the level lacks (no power measured, a percentile not computed) fails an SLO and is
reported as missing; it never counts as zero. Values are kept in base units: ns, 1/s, W, fraction.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from saturate.errors import ConfigError

Kind = Literal["latency", "rate", "power", "plain"]
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, ">": operator.gt,
}
_TIME = {"ns": 1.0, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9}
_ALIASES = {"throughput": "infer_per_s"}
_KINDS: dict[str, Kind] = {"avg": "latency", "infer_per_s": "rate", "requests_per_s": "rate",
                           "power_w": "power", "infer_per_j": "plain", "j_per_infer": "plain"}
_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=|==|!=|<|>)\s*(" + _NUM + r")"
                 r"\s*(ns|us|µs|ms|s|/s|W|%)?\s*$")
_PCT = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")


@dataclass(frozen=True)
class Gate:
    """One parsed expression; ``bound`` in base units (ns, 1/s, W), a fraction when ``relative``."""

    text: str
    metric: str
    op: str
    bound: float
    kind: Kind
    relative: bool

    def holds(self, value: float) -> bool:
        """Whether ``METRIC OP BOUND`` is true for ``value`` (same units as ``bound``)."""
        return _OPS[self.op](value, self.bound)

    def show(self, value: float | None) -> str:
        """A value in the gate's units: ``25.30 ms``, ``+12.0%``, ``1234.5/s``."""
        if value is None:
            return "missing"
        if self.relative:
            return f"{100 * value:+.1f}%"
        return format_value(self.metric, value)

    def bound_text(self) -> str:
        return f"{self.op} {self.show(self.bound)}"


def format_value(metric: str, value: float) -> str:
    kind = _kind(metric)
    if kind == "latency":
        return f"{value / 1e6:.3f} ms"
    if kind == "rate":
        return f"{value:.1f}/s"
    if kind == "power":
        return f"{value:.1f} W"
    return f"{value:.4g}"


def _kind(metric: str) -> Kind:
    return "latency" if _PCT.match(metric) else _KINDS[metric]


def parse(text: str, flag: str = "--slo", relative: bool = False) -> Gate:
    """Parse one expression; anything malformed is a ConfigError (one line, exit 2)."""
    m = _RE.match(text)
    example = "'throughput < -5%'" if relative else "'p95 < 20ms'"
    if m is None:
        raise ConfigError(f"{flag} {text!r}: expected METRIC OP VALUE[UNIT], e.g. {example}")
    name, op, num, unit = m.group(1), m.group(2), float(m.group(3)), m.group(4)
    metric = _ALIASES.get(name, name)
    pm = _PCT.match(metric)
    if metric not in _KINDS and (pm is None or not 0 < float(pm.group(1)) < 100):
        raise ConfigError(f"{flag} {text!r}: unknown metric {name!r}; use p50..p99, avg, throughput, "
                          "requests_per_s, power_w, infer_per_j or j_per_infer")
    kind = _kind(metric)
    if relative:
        if unit != "%":
            raise ConfigError(f"{flag} {text!r}: a change needs a signed percentage, e.g. {example}")
        return Gate(text.strip(), metric, op, num / 100.0, kind, True)
    if unit == "%":
        raise ConfigError(f"{flag} {text!r}: a percentage is a change; give an absolute bound, "
                          f"e.g. {example}")
    if kind == "latency":
        if unit not in _TIME:
            raise ConfigError(f"{flag} {text!r}: a latency needs a unit (ns, us, ms, s), e.g. 'p95 < 20ms'")
        return Gate(text.strip(), metric, op, num * _TIME[unit], kind, False)
    allowed = {"rate": (None, "/s"), "power": (None, "W"), "plain": (None,)}[kind]
    if unit not in allowed:
        raise ConfigError(f"{flag} {text!r}: {name} takes no unit {unit!r}"
                          + (" (use /s)" if kind == "rate" else ""))
    return Gate(text.strip(), metric, op, num, kind, False)


def parse_all(texts: Iterable[str], flag: str = "--slo", relative: bool = False) -> tuple[Gate, ...]:
    return tuple(parse(t, flag, relative) for t in texts)


def level_metrics(level: Any) -> dict[str, float | None]:
    """A LevelResult's gate metrics in base units (latencies ns; missing → None, never zero)."""
    lat = level.latency
    out: dict[str, float | None] = {f"p{p}": float(v) for p, v in lat.percentiles_ns.items()}
    out["avg"] = None if lat.avg_ns is None else float(lat.avg_ns)
    out["infer_per_s"] = float(level.throughput.infer_per_s)
    rps = level.throughput.requests_per_s
    out["requests_per_s"] = None if rps is None else float(rps)
    energy = level.extras.get("energy") or {}
    for k in ("power_w", "infer_per_j", "j_per_infer"):
        v = energy.get(k)
        out[k] = None if v is None else float(v)
    return out


def metric_value(metrics: Mapping[str, float | None], metric: str) -> float | None:
    pm = _PCT.match(metric)
    if pm is not None:
        key = f"p{float(pm.group(1)):g}"
        return metrics.get(key)
    return metrics.get(metric)


@dataclass(frozen=True)
class Failure:
    level: str
    gate: Gate
    value: float | None

    def line(self) -> str:
        what = "changed by" if self.gate.relative else "="
        return (f"gate failed: {self.level}: {self.gate.metric} {what} {self.gate.show(self.value)}, "
                f"bound {self.gate.bound_text()} ({self.gate.text})")

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "gate": self.gate.text, "metric": self.gate.metric,
                "value": self.value, "op": self.gate.op, "bound": self.gate.bound,
                "relative": self.gate.relative}


Named = Iterable[tuple[str, Mapping[str, float | None]]]


def _check(gates: Iterable[Gate], named: Named, fails: Callable[[Gate, float | None], bool]) -> list[Failure]:
    """Every (name, metrics) against every gate; ``fails`` decides from the gate and the value."""
    gs = list(gates)
    return [Failure(name, g, v) for name, metrics in named for g in gs
            if fails(g, v := metric_value(metrics, g.metric))]


def check_slo(gates: Iterable[Gate], levels: Named) -> list[Failure]:
    """SLO gates on every (name, metrics): a level fails a gate that is false or whose value is missing."""
    return _check(gates, levels, lambda g, v: v is None or not g.holds(v))


def check_fail_on(gates: Iterable[Gate], changes: Named) -> list[Failure]:
    """``--fail-on`` gates on relative changes: fails where the expression is true (missing → skipped)."""
    return _check(gates, changes, lambda g, v: v is not None and g.holds(v))


def verdict(gates: Iterable[Gate], failures: list[Failure]) -> dict[str, Any]:
    """The JSON block: the expressions, passed or not, and each failure."""
    return {"gates": [g.text for g in gates], "passed": not failures,
            "failures": [f.to_dict() for f in failures]}
