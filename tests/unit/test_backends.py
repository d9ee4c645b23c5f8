"""Backends: torch eager, TorchScript and ONNX Runtime agree; files, devices, providers and precisions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from saturate.errors import BackendError, ConfigError, ModelError
from servers.backends import BackendConfig, load_backend
from servers.backends.base import gather_inputs, parse_device, torch_device
from servers.backends.onnx_backend import choose_providers
from servers.export import export_file
from servers.models import ModelOptions, build_model, get_spec, synthetic_inputs

PN = get_spec("particlenet")


def direct(arrays: dict[str, np.ndarray], seed: int = 0) -> np.ndarray:
    model = build_model(PN, ModelOptions(seed=seed))
    with torch.inference_mode():
        out: np.ndarray = model(*(torch.from_numpy(arrays[n]) for n in PN.input_names)).numpy()
    return out


@pytest.mark.parametrize("kind", ["torch", "torchscript", "onnx"])
def test_every_backend_matches_eager_at_two_point_counts(kind: str) -> None:
    backend = load_backend(PN, BackendConfig(kind=kind))
    for sizes, batch in (({"P": 100, "S": 10}, 3), ({"P": 23, "S": 2}, 5)):
        x = synthetic_inputs(PN, batch, sizes, seed=11)
        out = backend.infer(x)
        assert list(out) == ["softmax"] and out["softmax"].dtype == np.float32
        np.testing.assert_allclose(out["softmax"], direct(x), atol=1e-5)
    assert kind in backend.describe() and "cpu" in backend.describe()


def test_inputs_are_mapped_by_name_not_by_order() -> None:
    backend = load_backend(PN, BackendConfig(kind="torch"))
    x = synthetic_inputs(PN, 2, seed=2)
    shuffled = {name: x[name] for name in reversed(list(x))}
    np.testing.assert_array_equal(backend.infer(shuffled)["softmax"], backend.infer(x)["softmax"])
    with pytest.raises(ModelError, match="missing"):
        gather_inputs(PN, {k: v for k, v in x.items() if k != "sv_mask"})


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_stays_close_to_fp32(precision: str) -> None:
    x = synthetic_inputs(PN, 4, {"P": 40, "S": 4}, seed=3)
    out = load_backend(PN, BackendConfig(kind="torch", precision=precision)).infer(x)["softmax"]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, direct(x), atol=0.03)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=0.02)


def test_state_dict_file_replaces_the_seeded_weights(tmp_path: Path) -> None:
    path = tmp_path / "pn.pt"
    torch.save(build_model(PN, ModelOptions(seed=5)).state_dict(), path)
    x = synthetic_inputs(PN, 2)
    out = load_backend(PN, BackendConfig(kind="torch", model_file=path)).infer(x)["softmax"]
    np.testing.assert_allclose(out, direct(x, seed=5), atol=1e-6)
    assert not np.allclose(out, direct(x, seed=0))


def test_exported_files_load_on_their_backends(tmp_path: Path) -> None:
    model = build_model(PN, ModelOptions(seed=2))
    x = synthetic_inputs(PN, 3, {"P": 61, "S": 7}, seed=8)
    for fmt, kind, name in (("onnx", "onnx", "pn.onnx"), ("torchscript", "torchscript", "pn.ts")):
        export_file(model, PN, fmt, tmp_path / name)
        out = load_backend(PN, BackendConfig(kind=kind, model_file=tmp_path / name)).infer(x)["softmax"]
        np.testing.assert_allclose(out, direct(x, seed=2), atol=1e-5)


def test_model_files_that_do_not_fit_are_model_errors(tmp_path: Path) -> None:
    mlp = get_spec("mlp")
    mlp_model = build_model(mlp)
    export_file(mlp_model, mlp, "onnx", tmp_path / "mlp.onnx")
    export_file(mlp_model, mlp, "torchscript", tmp_path / "mlp.ts")
    torch.save(mlp_model.state_dict(), tmp_path / "mlp.pt")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    cases = [
        ("onnx", "mlp.onnx", "has inputs"),
        ("torchscript", "mlp.ts", "takes inputs"),
        ("torch", "mlp.pt", "does not fit model particlenet"),
        ("torch", "mlp.ts", "not a torch state_dict.*--backend torchscript"),
        ("onnx", "junk.onnx", "not a loadable ONNX model"),
        ("torchscript", "junk.onnx", "not a TorchScript archive"),
    ]
    for kind, name, message in cases:
        with pytest.raises(ModelError, match=message) as info:
            load_backend(PN, BackendConfig(kind=kind, model_file=tmp_path / name))
        assert "\n" not in str(info.value)


def test_missing_model_file_is_a_model_error(tmp_path: Path) -> None:
    for kind in ("torch", "torchscript", "onnx"):
        with pytest.raises(ModelError, match="not found"):
            load_backend(PN, BackendConfig(kind=kind, model_file=tmp_path / "absent.onnx"))


def test_config_rejects_unknown_choices() -> None:
    with pytest.raises(BackendError, match="torch, torchscript, onnx"):
        BackendConfig(kind="tensorflow")
    with pytest.raises(ConfigError):
        BackendConfig(precision="fp8")
    with pytest.raises(ConfigError):
        BackendConfig(onnx_provider="openvino")
    with pytest.raises(ConfigError):
        BackendConfig(graph_opt_level="max")
    with pytest.raises(BackendError, match="cpu or cuda:N"):
        BackendConfig(device="gpu0")
    assert parse_device("cuda:3") == ("cuda", 3) and parse_device("cpu") == ("cpu", 0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_cuda_without_a_gpu_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match="no GPU"):
        torch_device("cuda:0")
    with pytest.raises(BackendError, match="--device cpu"):
        load_backend(PN, BackendConfig(kind="torch", device="cuda:0"))


def test_unavailable_onnx_provider_fails_unless_cpu_fallback(capsys: pytest.CaptureFixture[str]) -> None:
    available = ["CPUExecutionProvider"]
    with pytest.raises(BackendError, match="--allow-cpu-fallback"):
        choose_providers(BackendConfig(kind="onnx", onnx_provider="migraphx"), available)
    with pytest.raises(BackendError, match="CUDAExecutionProvider"):
        choose_providers(BackendConfig(kind="onnx", device="cuda:1"), available)
    fallback = BackendConfig(kind="onnx", device="cuda:0", allow_cpu_fallback=True)
    assert choose_providers(fallback, available) == ["CPUExecutionProvider"]
    assert "falling back" in capsys.readouterr().err
    gpu = choose_providers(BackendConfig(kind="onnx", device="cuda:1"), ["ROCMExecutionProvider", *available])
    assert gpu[0] == ("ROCMExecutionProvider", {"device_id": 1})


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="needs a CPU-only onnxruntime"
)
def test_onnx_backend_falls_back_to_cpu_when_allowed() -> None:
    backend = load_backend(
        PN, BackendConfig(kind="onnx", device="cuda:0", allow_cpu_fallback=True, graph_opt_level="basic")
    )
    assert "provider=CPUExecutionProvider" in backend.describe()
    x = synthetic_inputs(PN, 2)
    np.testing.assert_allclose(backend.infer(x)["softmax"], direct(x), atol=1e-5)


def test_onnx_backend_refuses_reduced_precision() -> None:
    with pytest.raises(ConfigError, match="fp32"):
        load_backend(PN, BackendConfig(kind="onnx", precision="fp16"))


def test_mlp_on_every_backend() -> None:
    options = ModelOptions(mlp_features=6, mlp_hidden=(12,), mlp_classes=4)
    spec = get_spec("mlp", options)
    x = synthetic_inputs(spec, 9)
    outs = [
        load_backend(spec, BackendConfig(kind=k), options).infer(x)["output"]
        for k in ("torch", "torchscript", "onnx")
    ]
    assert outs[0].shape == (9, 4)
    np.testing.assert_allclose(outs[1], outs[0], atol=1e-6)
    np.testing.assert_allclose(outs[2], outs[0], atol=1e-5)
