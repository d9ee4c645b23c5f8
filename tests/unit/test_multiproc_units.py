"""Topology parsing/validation, numactl prefix, device lists and the multi-process statistics."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from saturate.errors import ConfigError, ToolMissingError
from scans.multiproc.mpstats import ProcessMeasure, aggregate, latency_ms, trimmed
from scans.multiproc.topology import (
    format_cores,
    load_topology,
    numactl_prefix,
    parse_core_list,
    parse_devices,
    plan_placements,
    split_cores,
)


def test_core_lists_round_trip() -> None:
    assert parse_core_list("0-2,5") == (0, 1, 2, 5)
    assert format_cores([5, 0, 1, 2]) == "0-2,5"
    assert format_cores([3]) == "3"
    for bad in ("a", "3-1", "0,0", "1-"):
        with pytest.raises(ConfigError):
            parse_core_list(bad)


def test_topology_json_and_text(tmp_path: Path) -> None:
    f = tmp_path / "topo.json"
    f.write_text(json.dumps([[0], [1]]))
    assert load_topology(str(f)) == [(0,), (1,)]
    assert load_topology("0-1;2") == [(0, 1), (2,)]
    for doc in ("[]", "[[0], []]", '[["a"]]', "[[0, 0]]", "{not json"):
        f.write_text(doc)
        with pytest.raises(ConfigError):
            load_topology(str(f))
    with pytest.raises(ConfigError, match="does not exist"):
        load_topology(str(tmp_path / "missing.json"))


def test_topology_naming_missing_core_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        plan_placements("0;7", None, None, "core", available=[0, 1])
    msg = str(info.value)
    assert "core 7" in msg and "0-1" in msg and "\n" not in msg


def test_plan_placements_split_and_devices() -> None:
    ps = plan_placements(None, 2, "0,1;2,3", "core", available=[0, 1, 2, 3])
    assert [p.cores for p in ps] == [(0, 1), (2, 3)]
    assert ps[1].env() == {"CUDA_VISIBLE_DEVICES": "2,3", "HIP_VISIBLE_DEVICES": "2,3"}
    assert [p.cores for p in plan_placements(None, 3, None, "none", available=[0, 1])] == [(), (), ()]
    assert split_cores(3, [0, 1, 2, 3, 4]) == [(0, 1), (2, 3), (4,)]
    with pytest.raises(ConfigError, match="more than"):
        plan_placements(None, 3, None, "core", available=[0, 1])
    with pytest.raises(ConfigError, match="3 groups for 2"):
        parse_devices("0;1;2", 2)
    assert parse_devices("0", 3) == ["0", "0", "0"]
    assert parse_devices(None, 2) == [None, None]


def test_numactl_missing_is_tool_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError, match="numactl"):
        numactl_prefix([0])
    fake = tmp_path / "numactl"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert numactl_prefix([0, 1, 3]) == [str(fake), "--localalloc", "--physcpubind=0-1,3"]


def test_latency_and_trim_by_hand() -> None:
    lat = latency_ms([4_000_000, 1_000_000, 3_000_000, 2_000_000])
    assert lat["mean"] == pytest.approx(2.5)
    assert lat["median"] == pytest.approx(2.5)
    assert lat["std"] == pytest.approx(1.2909944, rel=1e-6)  # sample std of 1,2,3,4
    assert lat["p50"] == pytest.approx(3.0)  # index floor(0.5*3 + 0.5) = 2 → 3 ms
    assert lat["p99.9"] == pytest.approx(4.0)
    assert trimmed([1, 2, 3, 4, 5, 6], 2) == ([3, 4], 2)
    assert trimmed([1, 2, 3], 5) == ([2], 1)


def test_own_effective_adjusted_by_hand() -> None:
    # process 0: 4 calls of batch 2 in 1.0 s; process 1: 2 calls in 0.8 s; synchronised window 1.25 s
    a = ProcessMeasure(0, [10, 200, 300, 40], 4, 2, 1, 0, 1_000_000_000)
    b = ProcessMeasure(1, [500, 500], 2, 2, 1, 100_000_000, 900_000_000)
    agg = aggregate([a, b], 0, 1_250_000_000, trim=1)
    assert agg["own_items_per_s"] == pytest.approx(8 / 1.0 + 4 / 0.8)
    assert agg["effective_items_per_s"] == pytest.approx(12 / 1.25)
    assert agg["own_items_per_s"] >= agg["effective_items_per_s"]
    # trimmed means: process 0 → mean(200, 300) = 250 ns; process 1 (n=2 → k=0) → 500 ns
    assert agg["adjusted_mean_ms"] == pytest.approx(375e-6)
    assert agg["adjusted_items_per_s"] == pytest.approx((2 + 2) * 1e9 / 375)
    assert agg["latency_ms"]["count"] == 6


def test_usable_cores_matches_this_machine() -> None:
    ps = plan_placements(None, 1, None, "core")
    assert set(ps[0].cores) == os.sched_getaffinity(0)
