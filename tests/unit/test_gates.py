"""loadgen.gates: every operator and unit, SLO and --fail-on evaluation, malformed expressions."""

from __future__ import annotations

import pytest

from loadgen.gates import check_fail_on, check_slo, parse, verdict
from saturate.errors import ConfigError


@pytest.mark.parametrize(("text", "bound"), [
    ("p95 < 20ms", 20e6), ("p95<20 ms", 20e6), ("p99 <= 1.5s", 1.5e9), ("p50 > 300us", 300e3),
    ("p50 > 300µs", 300e3), ("avg >= 1000ns", 1000.0), ("p90 == 2e3us", 2e6), ("p95 != 0.5ms", 5e5),
])
def test_latency_units(text: str, bound: float) -> None:
    g = parse(text)
    assert g.kind == "latency" and g.bound == pytest.approx(bound)


@pytest.mark.parametrize(("text", "metric", "bound"), [
    ("infer_per_s > 1000", "infer_per_s", 1000.0), ("throughput >= 1000/s", "infer_per_s", 1000.0),
    ("requests_per_s > 12.5/s", "requests_per_s", 12.5), ("power_w < 300W", "power_w", 300.0),
    ("power_w < 300", "power_w", 300.0), ("infer_per_j > 2", "infer_per_j", 2.0),
    ("j_per_infer < .5", "j_per_infer", 0.5),
])
def test_other_metrics(text: str, metric: str, bound: float) -> None:
    g = parse(text)
    assert (g.metric, g.bound) == (metric, pytest.approx(bound))


@pytest.mark.parametrize(("op", "value", "holds"), [
    ("<", 19, True), ("<", 20, False), ("<=", 20, True), ("<=", 21, False), (">", 21, True), (">", 20, False),
    (">=", 20, True), (">=", 19, False), ("==", 20, True), ("==", 19, False), ("!=", 19, True),
    ("!=", 20, False),
])
def test_every_operator(op: str, value: float, holds: bool) -> None:
    assert parse(f"p95 {op} 20ms").holds(value * 1e6) is holds


def test_relative_gates() -> None:
    g = parse("throughput < -5%", "--fail-on", relative=True)
    assert g.relative and g.bound == pytest.approx(-0.05) and g.metric == "infer_per_s"
    assert parse("p95 > +10%", "--fail-on", relative=True).bound == pytest.approx(0.10)
    fails = check_fail_on([g, parse("p95 > +10%", "--fail-on", True)],
                          [("c1_b1", {"infer_per_s": -0.2, "p95": 0.3}),
                           ("c2_b1", {"infer_per_s": 0.0, "p95": None})])
    assert [(f.level, f.gate.metric) for f in fails] == [("c1_b1", "infer_per_s"), ("c1_b1", "p95")]
    assert "changed by -20.0%, bound < -5.0%" in fails[0].line()


@pytest.mark.parametrize(("text", "flag", "relative", "match"), [
    ("p95 20ms", "--slo", False, "METRIC OP VALUE"),
    ("p95 < 20", "--slo", False, "needs a unit"),
    ("p95 < 20kg", "--slo", False, "METRIC OP VALUE"),
    ("p100 < 20ms", "--slo", False, "unknown metric"),
    ("latency < 20ms", "--slo", False, "unknown metric"),
    ("throughput > 10ms", "--slo", False, "takes no unit"),
    ("p95 < 10%", "--slo", False, "percentage is a change"),
    ("throughput < -5", "--fail-on", True, "signed percentage"),
    ("", "--slo", False, "METRIC OP VALUE"),
])
def test_malformed(text: str, flag: str, relative: bool, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as exc:
        parse(text, flag, relative)
    assert "\n" not in str(exc.value) and flag in str(exc.value)


def test_slo_names_level_value_and_bound_and_missing_fails() -> None:
    gates = [parse("p95 < 20ms"), parse("infer_per_s > 1000"), parse("power_w < 300W")]
    levels = [("c1_b1", {"p95": 10e6, "infer_per_s": 1500.0, "power_w": 250.0}),
              ("c8_b1", {"p95": 25e6, "infer_per_s": 900.0, "power_w": None})]
    fails = check_slo(gates, levels)
    assert [f.level for f in fails] == ["c8_b1"] * 3
    assert fails[0].line() == "gate failed: c8_b1: p95 = 25.000 ms, bound < 20.000 ms (p95 < 20ms)"
    assert "infer_per_s = 900.0/s, bound > 1000.0/s" in fails[1].line()
    assert "power_w = missing" in fails[2].line()
    v = verdict(gates, fails)
    assert v["passed"] is False and len(v["failures"]) == 3 and v["failures"][2]["value"] is None
    assert verdict(gates, [])["passed"] is True
