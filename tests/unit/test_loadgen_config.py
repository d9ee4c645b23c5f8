"""LoadConfig defaults and validation, range and shape parsing, and the CLI's one-line errors."""

from __future__ import annotations

import pytest
from conftest import run_cli

from loadgen.cli import config_from_args
from loadgen.config import MAX_OPEN_ENDED_LEVELS, LoadConfig, Range, parse_range, parse_shape
from saturate.cli import build_parser
from saturate.errors import ConfigError


def test_range_forms() -> None:
    assert list(parse_range("1:4", "--concurrency-range", True).values()) == [1, 2, 3, 4]
    assert list(parse_range("2:8:3", "--concurrency-range", True).values()) == [2, 5, 8]
    assert list(parse_range("4", "--concurrency-range", True).values()) == [4]
    assert list(parse_range("50:150:50", "--request-rate-range", False).values()) == [50, 100, 150]
    assert list(parse_range("0.5:1.5:0.5", "--request-rate-range", False).values()) == [0.5, 1.0, 1.5]


@pytest.mark.parametrize("text", ["8:1", "0:4", "1:4:0", "a:b", "1:2:3:4", "1::2", "1.5:2"])
def test_bad_ranges(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_range(text, "--concurrency-range", True)
    assert "\n" not in str(err.value) and "--concurrency-range" in str(err.value)


def test_open_ended_range_needs_latency_threshold() -> None:
    with pytest.raises(ConfigError, match="latency-threshold"):
        LoadConfig(model="m", concurrency_range=Range(1, 0, 1))
    cfg = LoadConfig(model="m", concurrency_range=Range(1, 0, 2), latency_threshold_ms=50)
    values = list(cfg.levels())
    assert values[:3] == [1, 3, 5] and len(values) == MAX_OPEN_ENDED_LEVELS


def test_shape() -> None:
    assert parse_shape("pf_points:2,100") == ("pf_points", (2, 100))
    assert parse_shape("a:b:3") == ("a:b", (3,))
    for bad in ("pf_points", "pf_points:", "x:2,a", "x:0"):
        with pytest.raises(ConfigError):
            parse_shape(bad)


def test_defaults_follow_perf_analyzer() -> None:
    cfg = LoadConfig(model="m")
    assert (cfg.measurement_interval_ms, cfg.stability_percentage, cfg.max_trials) == (5000, 10.0, 10)
    assert cfg.measurement_request_count == 50 and cfg.metrics_interval_ms == 1000
    assert cfg.mode == "concurrency" and list(cfg.levels()) == [1]
    assert cfg.url == "localhost:8001"
    assert LoadConfig(model="m", protocol="http").url == "localhost:8000"
    assert cfg.resolved_metrics_url == "http://localhost:8002/metrics"
    assert LoadConfig(model="m", url="10.0.0.2:9001").resolved_metrics_url == "http://10.0.0.2:8002/metrics"


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "-b"),
    ({"percentile": 100}, "percentile"),
    ({"processes": 0}, "processes"),
    ({"processes": 4, "concurrency_range": Range(2, 2, 1)}, "processes"),
    ({"concurrency_range": Range(1, 2, 1), "request_rate_range": Range(1, 2, 1)}, "not both"),
    ({"warmup_request_count": 5, "concurrency_range": Range(1, 4, 1)}, "single"),
    ({"shapes": (("x", (1,)), ("x", (2,)))}, "twice"),
])
def test_invalid_combinations(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        LoadConfig(model="m", **kwargs)  # type: ignore[arg-type]


def test_cli_builds_config_and_json_dict() -> None:
    args = build_parser().parse_args([
        "load", "-m", "mlp", "-u", "h:1", "-i", "http", "--request-rate-range", "10:20:10",
        "--request-distribution", "poisson", "--shape", "x:4", "--percentile=95", "-p", "500",
        "--access-token", "secret", "--processes", "2", "-f", "out.csv", "--json", "out.json"])
    cfg = config_from_args(args)
    assert cfg.mode == "request_rate" and list(cfg.levels()) == [10, 20]
    assert cfg.request_distribution == "poisson" and cfg.shapes == (("x", (4,)),)
    assert cfg.percentile == 95 and cfg.measurement_interval_ms == 500 and cfg.processes == 2
    d = cfg.to_dict()
    assert d["access_token"] == "***" and d["shapes"] == {"x": [4]} and d["mode"] == "request_rate"


def test_cli_range_8_1_is_one_line_exit_2() -> None:
    res = run_cli("load", "-m", "mlp", "--concurrency-range", "8:1", timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "8:1" in lines[0] and "below start" in lines[0]


def test_every_setting_has_one_role_and_resume_identity_is_target_and_rule() -> None:
    import dataclasses

    from loadgen.config import ROLES, identity

    assert set(ROLES) == {f.name for f in dataclasses.fields(LoadConfig)}  # a new field declares its role
    base = LoadConfig(model="mlp", url="h:1", access_token="t", json_file="a.json",
                      measurement_interval_ms=500)
    moved = dataclasses.replace(base, url="h:2", access_token="u", json_file="b.json", csv_file="b.csv",
                                metrics_url="h:3/metrics", batch_size=8, quiet=True, slo=("p99 < 5ms",))
    assert identity(base.to_dict()) == identity(moved.to_dict())  # endpoint, levels, outputs, run
    for change in ({"measurement_interval_ms": 1000}, {"percentile": 95}, {"shapes": (("x", (3,)),)},
                   {"input_data": "zero"}, {"seed": 1}, {"max_trials": 3}):
        other = dataclasses.replace(base, **change)  # type: ignore[arg-type]
        assert identity(base.to_dict()) != identity(other.to_dict()), change
    assert "access_token" not in identity(base.to_dict())
    assert identity({"unknown_key": 1}) == {"unknown_key": 1}
    rule = dataclasses.replace(base, percentile=95, stability_percentage=5).stability_rule()
    assert rule.percentile == 95 and rule.stability_pct == 5 and rule.max_trials == 10
