"""Shapes, batch and input data checked against model metadata (no server: ModelInfo by hand)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from loadgen.clients.base import ModelInfo, TensorSpec
from loadgen.inputs import build_requests, resolve_shapes
from saturate.errors import ConfigError, ModelError

PN = ModelInfo(
    "pn",
    "1",
    (TensorSpec("points", "FP32", (-1, 2, -1)), TensorSpec("mask", "FP32", (-1, 1, -1))),
    (TensorSpec("softmax", "FP32", (-1, 8)),),
    max_batch_size=64,
)
FIXED = ModelInfo("id", "1", (TensorSpec("INPUT0", "INT32", (16,)),), (TensorSpec("OUT", "INT32", (16,)),), 0)


def test_shapes_fill_variable_dims_and_check_fixed_ones() -> None:
    assert resolve_shapes(PN, {"points": (2, 10), "mask": (1, 10)}) == {"points": (2, 10), "mask": (1, 10)}
    with pytest.raises(ModelError, match=r"--shape points:2,N"):
        resolve_shapes(PN, {"mask": (1, 10)})
    with pytest.raises(ModelError, match="no input 'nope'"):
        resolve_shapes(PN, {"nope": (1,)})
    with pytest.raises(ModelError, match="rank 3"):
        resolve_shapes(PN, {"points": (2, 10, 1), "mask": (1, 10)})
    with pytest.raises(ModelError, match="fixed dims"):
        resolve_shapes(PN, {"points": (3, 10), "mask": (1, 10)})


def test_random_zero_and_batch() -> None:
    (req,) = build_requests(PN, {"points": (2, 5), "mask": (1, 5)}, 4, "random", seed=1)
    name, dtype, arr = req.inputs[0]
    assert (name, dtype, arr.shape, arr.dtype) == ("points", "FP32", (4, 2, 5), np.float32)
    assert np.isfinite(arr).all() and arr.std() > 0 and req.outputs == ("softmax",)
    (again,) = build_requests(PN, {"points": (2, 5), "mask": (1, 5)}, 4, "random", seed=1)
    assert np.array_equal(again.inputs[0][2], arr)
    (zero,) = build_requests(FIXED, {}, 1, "zero")
    assert zero.inputs[0][2].shape == (16,) and not zero.inputs[0][2].any()
    with pytest.raises(ConfigError, match="does not batch"):
        build_requests(FIXED, {}, 2, "zero")
    with pytest.raises(ConfigError, match="at most 64"):
        build_requests(PN, {"points": (2, 5), "mask": (1, 5)}, 65, "zero")


def test_json_data_round_robin_and_batching(tmp_path: Path) -> None:
    raw = np.arange(16, dtype="<i4")
    data = {
        "data": [
            {"INPUT0": list(range(16))},
            {"INPUT0": {"b64": base64.b64encode(raw.tobytes()).decode()}},
            {"INPUT0": {"content": list(range(16, 32)), "shape": [16]}},
        ]
    }
    path = tmp_path / "in.json"
    path.write_text(json.dumps(data))
    reqs = build_requests(FIXED, {}, 1, str(path))
    assert len(reqs) == 3 and reqs[2].inputs[0][2][0] == 16
    assert np.array_equal(reqs[1].inputs[0][2], raw)
    two = build_requests(PN, {}, 2, _pn_file(tmp_path))
    assert two[0].inputs[0][2].shape == (2, 2, 3)


def _pn_file(tmp_path: Path) -> str:
    entry = {
        "points": {"content": [0.0] * 6, "shape": [2, 3]},
        "mask": {"content": [1.0] * 3, "shape": [1, 3]},
    }
    path = tmp_path / "pn.json"
    path.write_text(json.dumps({"data": [entry, entry, entry]}))
    return str(path)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("{not json", "not valid JSON"),
        ('{"rows": []}', '"data"'),
        ('{"data": [{"OTHER": [1]}]}', "lacks input"),
        ('{"data": [{"INPUT0": [1, 2]}]}', "do not fill"),
        ('{"data": [{"INPUT0": {"b64": "!!"}}]}', "INPUT0"),
        ('{"data": [{"INPUT0": "abc"}]}', "expected a list"),
    ],
)
def test_malformed_json_is_one_line(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        build_requests(FIXED, {}, 1, str(path))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="not random, zero"):
        build_requests(FIXED, {}, 1, "/nonexistent/file.json")
