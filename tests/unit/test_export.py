"""Exports keep batch and point axes dynamic and match eager inference at other sizes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from saturate.errors import ConfigError
from servers.export import export_file, onnx_dynamic_axes
from servers.models import build_model, get_spec, synthetic_inputs

PN = get_spec("particlenet")
# The example inputs used for export have batch 2 and P=100, S=10; check other sizes.
SIZES = [(1, {"P": 100, "S": 10}), (7, {"P": 37, "S": 3}), (4, {"P": 160, "S": 15})]


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return build_model(PN)


def eager(model: torch.nn.Module, x: dict[str, np.ndarray]) -> np.ndarray:
    with torch.inference_mode():
        out: np.ndarray = model(*(torch.from_numpy(x[n]) for n in PN.input_names)).numpy()
    return out


def test_onnx_export_has_named_dynamic_axes_and_matches_eager(model: torch.nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "pn.onnx"
    export_file(model, PN, "onnx", path)
    graph = onnx.load(str(path)).graph
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert dims["pf_features"] == ["N", 20, "n_pf"] and dims["sv_mask"] == ["N", 1, "n_sv"]
    assert [o.name for o in graph.output] == ["softmax"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, sizes in SIZES:
        x = synthetic_inputs(PN, batch, sizes, seed=batch)
        (out,) = session.run(["softmax"], x)
        assert out.shape == (batch, 8)
        np.testing.assert_allclose(out, eager(model, x), atol=1e-5)


def test_torchscript_export_matches_eager_at_other_sizes(model: torch.nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "pn.pt"
    export_file(model, PN, "torchscript", path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(str(path))
    for batch, sizes in SIZES:
        x = synthetic_inputs(PN, batch, sizes, seed=batch)
        with torch.inference_mode():
            out = loaded(*(torch.from_numpy(x[n]) for n in PN.input_names)).numpy()
        np.testing.assert_allclose(out, eager(model, x), atol=1e-6)


def test_dynamic_axes_cover_batch_and_named_dims() -> None:
    axes = onnx_dynamic_axes(PN)
    assert axes["pf_points"] == {0: "N", 2: "n_pf"} and axes["softmax"] == {0: "N"}
    assert onnx_dynamic_axes(get_spec("mlp")) == {"input": {0: "N"}, "output": {0: "N"}}


def test_export_rejects_unknown_format_and_missing_directory(model: torch.nn.Module, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="onnx, torchscript"):
        export_file(model, PN, "tflite", tmp_path / "x")
    with pytest.raises(ConfigError, match="does not exist"):
        export_file(model, PN, "onnx", tmp_path / "nope" / "x.onnx")
