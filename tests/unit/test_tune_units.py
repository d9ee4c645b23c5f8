"""saturate tune's small parts: Pareto front, the tail-validity rule, the space and its checks, the
output helpers, and bad input through the front door (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadgen.result import ClientStats, LatencySummary, LevelResult, Throughput
from saturate.cli import main
from saturate.errors import ConfigError
from scans.tune import output
from scans.tune.pareto import Point, pareto_front
from scans.tune.space import TuneSpace
from scans.tune.validity import TailRule, min_samples


def pt(tp: float, lat: float, name: str = "a") -> Point:
    return Point(name, 1, 1, tp, lat)


def test_pareto_front_keeps_only_undominated_points() -> None:
    pts = [pt(100, 1), pt(90, 2), pt(200, 3), pt(150, 3), pt(200, 4), pt(300, 10), pt(250, 12)]
    front = pareto_front(pts)
    assert [(p.throughput, p.latency_ms) for p in front] == [(100, 1), (200, 3), (300, 10)]
    assert pareto_front([]) == []
    assert pareto_front([pt(5, 5)]) == [pt(5, 5)]


def test_pareto_front_ties_keep_one() -> None:
    front = pareto_front([pt(100, 2, "a"), pt(100, 2, "b"), pt(100, 3)])
    assert len(front) == 1 and front[0].latency_ms == 2


def test_min_samples_reproduces_mlperfs_table() -> None:
    assert min_samples(90, 0.99, 0.5) == 23886  # MLPerf: p90, 99 % confidence, 0.5 % margin
    assert min_samples(99, 0.99, 0.05) == 262742  # MLPerf: p99, 99 % confidence, 0.05 % margin
    assert min_samples(95, 0.95, 1.25) == 1168  # saturate's default for p95


def level(count: int, p95_ms: float = 5.0) -> LevelResult:
    lat = LatencySummary(percentiles_ns={50: 1_000_000, 90: 2_000_000, 95: int(p95_ms * 1e6), 99: 9_000_000},
                         min_ns=500_000, count=count)
    return LevelResult(mode="concurrency", concurrency=1, request_rate=None, batch_size=1, stable=True,
                       throughput=Throughput(infer_per_s=100.0), latency=lat, client=ClientStats(0, 0))


def test_tail_rule_needs_enough_samples() -> None:
    rule = TailRule(percentile=95)
    assert rule.needed == 1168
    assert not rule.valid(level(1167)) and rule.valid(level(1168))
    assert rule.tail_ms(level(10, 7.5)) == 7.5
    p99 = TailRule(percentile=99, confidence=0.99, margin_points=0.05)
    assert not p99.valid(level(100_000)) and p99.valid(level(262_742))
    assert not TailRule(percentile=97).valid(level(10**6))  # p97 was not computed for this level


@pytest.mark.parametrize("kwargs", [{"percentile": 100}, {"confidence": 1.0}, {"margin_points": 5.0}])
def test_tail_rule_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        TailRule(**kwargs)  # type: ignore[arg-type]


def test_space_products_and_auto_preferred() -> None:
    space = TuneSpace(batch_sizes=(1, 16), instances=(1, 2), max_queue_delay_us=(0, 500), preferred="auto")
    names = [c.name for c in space.candidates()]
    assert names == ["i1_mb64_d0_pnone", "i1_mb64_d500_pnone", "i1_mb64_d500_p64", "i2_mb64_d0_pnone",
                     "i2_mb64_d500_pnone", "i2_mb64_d500_p64"]
    c = space.candidates()[2]
    assert c.serve_flags() == ["--instances", "1", "--max-batch", "64", "--max-queue-delay-us", "500",
                               "--preferred-batch", "64"]
    assert "preferred_batch_size=[64]" in c.pytriton() and "max_batch_size=64" in c.pytriton()


@pytest.mark.parametrize("kwargs, words", [
    ({"instances": ()}, "--instances is empty"),
    ({"max_queue_delay_us": ()}, "--max-queue-delay-us is empty"),
    ({"batch_sizes": (128,), "max_batch": 64}, "above the model's max batch 64"),
    ({"preferred": "128", "max_batch": 64}, "outside the model's max batch"),
    ({"instances": (0,)}, "at least 1"),
])  # fmt: skip
def test_space_rejects_bad_input(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        TuneSpace(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("extra, words", [
    (["--instances", ""], "--instances is empty"),
    (["--batch-sizes", "128", "--max-batch", "64"], "above the model's max batch"),
    (["--preferred-batch", "99", "--max-batch", "64"], "outside the model's max batch"),
    (["--latency-budget-ms", "0"], "must be > 0"),
    (["--model", "nosuch"], "nosuch"),
    (["--time-budget", "soon"], "--time-budget"),
])  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(extra: list[str], words: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t"
    args = ["tune", "-m", "mlp", "--latency-budget-ms", "10", "--out", str(out), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    assert not out.exists()  # checked before anything is measured or written


def test_summary_and_winner_command_from_a_document() -> None:
    doc = {"config": {"model": "mlp", "backend": "torch", "device": "cpu", "latency_budget_ms": 20.0,
                      "tail": {"percentile": 95},
                      "load": {"measurement_interval_ms": 500, "shapes": {"x": [2, 100]}}},
           "candidates": [
               {"candidate": {"name": "i1_mb64_d0_pnone", "instances": 1, "max_batch": 64,
                              "max_queue_delay_us": 0, "preferred_batch": []}, "status": "measured",
                "levels": [{"batch": 1, "concurrency": 4, "throughput": 100.0, "tail_ms": 3.0,
                            "tail_valid": True}],
                "best": {"batch": 1, "concurrency": 4, "throughput": 100.0, "tail_ms": 3.0, "samples": 900}},
               {"candidate": {"name": "i2_mb64_d500_p64", "instances": 2, "max_batch": 64,
                              "max_queue_delay_us": 500, "preferred_batch": [64]}, "status": "measured",
                "levels": [{"batch": 1, "concurrency": 8, "throughput": 150.0, "tail_ms": 9.0,
                            "tail_valid": True},
                           {"batch": 1, "concurrency": 16, "throughput": 160.0, "tail_ms": 30.0,
                            "tail_valid": True}],
                "best": {"batch": 1, "concurrency": 8, "throughput": 150.0, "tail_ms": 9.0, "samples": 900}},
               {"candidate": {"name": "i4_mb64_d0_pnone", "instances": 4, "max_batch": 64,
                              "max_queue_delay_us": 0, "preferred_batch": []}, "status": "failed",
                "reason": "server exited", "levels": [], "best": None},
           ]}  # fmt: skip
    assert output.gain_over_defaults(doc) == 1.5
    doc["gain_over_defaults"] = 1.5
    text = output.summary_text(doc)
    assert "winner: i2_mb64_d500_p64: 150.0 infer/s at batch 1, concurrency 8" in text
    assert ("serve: saturate serve --model mlp --backend torch --device cpu --instances 2 --max-batch 64 "
            "--max-queue-delay-us 500 --preferred-batch 64") in text
    assert "--concurrency-range 8:8:1" in text and "x1.50" in text and "--shape x:2,100" in text
    assert "failed (server exited)" in text
    assert [p.concurrency for p in pareto_front(output.measured_points(doc))] == [4, 8, 16]
    png = output.pareto_png(doc)
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"
    json.dumps(doc)
