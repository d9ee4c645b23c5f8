"""Sweep specs: expansion order and count, references, overrides, flags, resume decisions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from saturate.errors import ConfigError
from scans.sweep.spec import apply_overrides, expand, flag_args, parse_spec_text, resolve
from scans.sweep.sweep import read_results, should_run

SPEC = """
command: scan direct
parameters:
  model: mlp
  trials: 3
  exp.tag: "${model}-${backend}-b${batch_sizes}"
variables:
  batch_sizes: [1, 2, 4]
  backend: [torch, onnx]
"""


def test_expansion_order_and_count(tmp_path: Path) -> None:
    plan = expand(parse_spec_text(SPEC), tmp_path)
    assert len(plan) == 6
    combos = [(e.params["batch_sizes"], e.params["backend"]) for e in plan]
    assert combos == [(1, "torch"), (1, "onnx"), (2, "torch"), (2, "onnx"), (4, "torch"), (4, "onnx")]
    assert [e.index for e in plan] == list(range(6))
    assert len({e.id for e in plan}) == 6
    assert plan[3].params["exp.tag"] == "mlp-onnx-b2"
    assert plan[0].argv == ("scan", "direct", "--model", "mlp", "--trials", "3", "--batch-sizes", "1",
                            "--backend", "torch", "--out", str(tmp_path / "runs" / plan[0].id))


def test_ids_are_stable_across_order_changes(tmp_path: Path) -> None:
    a = expand(parse_spec_text(SPEC), tmp_path)
    b = expand(apply_overrides(parse_spec_text(SPEC), variables=["batch_sizes=4,2,1"]), tmp_path)
    assert {e.id for e in a} == {e.id for e in b}
    assert [e.params["batch_sizes"] for e in b][:2] == [4, 4]


def test_references_nested_typed_and_env() -> None:
    values = {"device": "gpu", "gpu.image": "img:${version}", "version": 3, "image": "${${device}.image}",
              "n": "${version}", "home": "${SWEEP_TEST_HOME}/x", "list": ["${version}", "a${version}"]}
    out = resolve(values, env={"SWEEP_TEST_HOME": "/h"})
    assert out["image"] == "img:3"
    assert out["n"] == 3 and isinstance(out["n"], int)
    assert out["home"] == "/h/x"
    assert out["list"] == [3, "a3"]


def test_unknown_and_circular_references_are_one_line() -> None:
    with pytest.raises(ConfigError, match=r"unknown reference \$\{nope\} in 'a'") as info:
        resolve({"a": "x${nope}"}, env={})
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="circular reference") as info2:
        resolve({"a": "${b}", "b": "${c}", "c": "${a}"}, env={})
    assert "${a} -> ${b} -> ${c} -> ${a}" in str(info2.value)
    with pytest.raises(ConfigError, match="circular"):
        resolve({"a": "${a}"}, env={})


def test_overrides() -> None:
    spec = apply_overrides(parse_spec_text(SPEC), params=["batch_sizes=8", "trials=5", "flag=true"],
                           variables=["backend=torch", "seed=[1, 2]"])
    assert "batch_sizes" not in spec.variables and spec.parameters["batch_sizes"] == 8
    assert spec.parameters["trials"] == 5 and spec.parameters["flag"] is True
    assert list(spec.variables) == ["backend", "seed"]
    assert spec.variables["seed"] == [1, 2]
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        apply_overrides(spec, params=["oops"])


def test_flags() -> None:
    args = flag_args({"b": 4, "batch_sizes": [1, 2], "shape": ["a:1", "b:2"], "verbose": True,
                      "quiet": False, "x.meta": 1, "--raw-name": "v", "none": None})
    assert args == ["-b", "4", "--batch-sizes", "1", "--batch-sizes", "2", "--shape", "a:1", "--shape", "b:2",
                    "--verbose", "--raw-name", "v"]


@pytest.mark.parametrize("text, match", [
    ("command: scan direct\nparameters: [1, 2\n", "not valid YAML"),
    ("- 1\n- 2\n", "must be a mapping"),
    ("command: bogus\n", "'command' is 'bogus'"),
    ("command: load\nextra: 1\n", "unknown key 'extra'"),
    ("command: load\nvariables: {b: []}\n", "no values"),
    ("command: load\ntimeout: -1\n", "positive seconds"),
    ("command: load\nparameters: {out: x}\n", "set by the sweep"),
])
def test_malformed_specs(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        parse_spec_text(text, "s.yaml")
    assert "\n" not in str(info.value)


def test_resume_decisions(tmp_path: Path) -> None:
    path = tmp_path / "sweep.jsonl"
    path.write_text(json.dumps({"id": "a", "status": "failed"}) + "\n" + "{torn"
                    + "\n" + json.dumps({"id": "a", "status": "ok"}) + "\n"
                    + json.dumps({"id": "b", "status": "timeout"}) + "\n")
    prev = read_results(path)
    assert prev["a"]["status"] == "ok"
    assert not should_run(prev["a"], "onfail") and should_run(prev["b"], "onfail")
    assert not should_run(prev["b"], "never") and should_run(prev["a"], "always")
    assert should_run(None, "never")


def test_arithmetic_expressions() -> None:
    out = resolve({"b": 4, "processes": 2, "eff": "$(${b} * ${processes})$", "half": "$(${b} / 2)$",
                   "name": "run-$(${b} + 1)$-x", "m": "$(max(${b}, 10) // 3)$"}, env={})
    assert out["eff"] == 8 and isinstance(out["eff"], int)
    assert out["half"] == 2.0 and out["name"] == "run-5-x" and out["m"] == 3
    for bad in ("$(__import__('os'))$", "$(1 / 0)$", "$('a' * 3)$", "$(open)$"):
        with pytest.raises(ConfigError, match="not plain arithmetic"):
            resolve({"x": bad}, env={})
