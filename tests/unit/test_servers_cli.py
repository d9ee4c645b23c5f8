"""``saturate serve|infer|export|demo``: help, and every bad input is one line naming the fix, exit 2."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import free_port, free_ports, run_cli

from saturate.cli import main
from servers.models import build_model, get_spec, synthetic_inputs


@pytest.fixture(autouse=True)
def _keep_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``serve`` edits LD_LIBRARY_PATH in-process; restore it after each test."""
    monkeypatch.setenv("LD_LIBRARY_PATH", "")
    yield


def fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run the front door in-process; assert exit 2 and exactly one stderr line; return it."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("saturate: error: ")
    return err[0]


def ports(*extra: str) -> list[str]:
    http, grpc, metrics = free_ports(3)
    return ["--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics), *extra]


def test_serve_help_lists_the_contract_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--model",
        "--backend",
        "--device",
        "--model-file",
        "--precision",
        "--compile",
        "--onnx-provider",
        "--graph-opt-level",
        "--allow-cpu-fallback",
        "--max-batch",
        "--preferred-batch",
        "--max-queue-delay-us",
        "--instances",
        "--http-port",
        "--grpc-port",
        "--metrics-port",
        "--bind",
        "--access-token",
        "--log-verbose",
    ):
        assert flag in out
    assert max(len(line) for line in out.splitlines()) <= 120


def test_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert "unknown model 'resnet'; choose one of: particlenet, mlp" in fails(
        capsys, "serve", "--model", "resnet"
    )


def test_unknown_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert "unknown backend 'tensorrt'" in fails(capsys, "serve", "--backend", "tensorrt", *ports())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_cuda_without_a_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    line = fails(capsys, "serve", "--model", "mlp", "--device", "cuda:0", *ports())
    assert "no GPU" in line and "--device cpu" in line


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="needs CPU-only onnxruntime"
)
def test_onnx_gpu_provider_missing(capsys: pytest.CaptureFixture[str]) -> None:
    line = fails(capsys, "serve", "--model", "mlp", "--backend", "onnx", "--device", "cuda:0", *ports())
    assert "CUDAExecutionProvider is not available" in line and "--allow-cpu-fallback" in line


def test_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        http, metrics = free_ports(2)
        line = fails(capsys, "serve", "--model", "mlp", "--http-port", str(http), "--grpc-port", str(port),
                     "--metrics-port", str(metrics))
    assert f"grpc port {port} on 127.0.0.1 is in use; choose another with --grpc-port" in line


def test_same_port_twice(capsys: pytest.CaptureFixture[str]) -> None:
    p = str(free_port())
    assert "must differ" in fails(capsys, "serve", "--http-port", p, "--grpc-port", p, "--metrics-port", "9")


def test_model_file_whose_inputs_do_not_match(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    mlp = get_spec("mlp")
    path = tmp_path / "mlp.onnx"
    assert main(["export", "--model", "mlp", "--format", "onnx", "-o", str(path)]) == 0
    capsys.readouterr()
    line = fails(capsys, "serve", "--backend", "onnx", "--model-file", str(path), *ports())
    assert "has inputs ['input']" in line and "saturate export --model particlenet" in line
    assert mlp.input_names == ("input",)


def test_missing_model_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = fails(
        capsys, "serve", "--backend", "torchscript", "--model-file", str(tmp_path / "none.pt"), *ports()
    )
    assert "not found" in line and "--model-file" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--bogus"],
        ["serve", "--precision", "fp8"],
        ["serve", "--preferred-batch", "8,x"],
        ["serve", "--max-batch", "0", "--model", "mlp"],
        ["serve", "--max-batch", "8", "--preferred-batch", "16"],
        ["serve", "--max-queue-delay-us", "-5"],
        ["serve", "--instances", "0"],
        ["serve", "--http-port", "70000"],
        ["serve", "--mlp-hidden", "0", "--model", "mlp"],
        ["infer", "-m", "mlp", "-i", "udp"],
        ["infer", "-m", "mlp", "-u", "http://localhost:8000"],
        ["infer", "-m", "mlp", "--sizes", "P50"],
        ["export", "--model", "mlp", "--format", "tflite", "-o", "x"],
        ["demo", "--backend", "tf"],
    ],
)
def test_bad_flags_and_values_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    # the ports go first so that a bad port value in ``argv`` wins
    fails(capsys, argv[0], *(ports() if argv[0] == "serve" else []), *argv[1:])


def test_infer_without_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    line = fails(capsys, "infer", "-m", "mlp", "-u", f"127.0.0.1:{free_port()}", "-i", "http")
    assert "no server answers" in line


def test_export_cli_writes_a_file_that_matches_eager(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "pn.onnx"
    assert main(["export", "--model", "particlenet", "--format", "onnx", "-o", str(path), "--seed", "3"]) == 0
    assert "wrote" in capsys.readouterr().out
    spec = get_spec("particlenet")
    x = synthetic_inputs(spec, 2, {"P": 20, "S": 2})
    (out,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, x)
    from servers.models import ModelOptions

    with torch.inference_mode():
        want = build_model(spec, ModelOptions(seed=3))(*(torch.from_numpy(x[n]) for n in spec.input_names))
    np.testing.assert_allclose(out, want.numpy(), atol=1e-5)


def test_bad_input_through_the_console_script() -> None:
    """The real process: one stderr line, exit 2, no traceback."""
    proc = run_cli("serve", "--model", "resnet", timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "saturate: error: unknown model 'resnet'; choose one of: particlenet, mlp"
    ]


def test_a_served_servers_ports_differ_and_keep_what_was_given(tmp_path: Path) -> None:
    """Ports chosen one at a time can repeat (a CI run got http == grpc, and serve refused to start):
    free_ports holds them together, and ServedServer fills only the ports it was not given."""
    from scans.server.serverproc import ServeConfig, ServedServer

    assert len(set(free_ports(64))) == 64
    for _ in range(20):
        s = ServedServer(ServeConfig(model="mlp"), tmp_path / "log")
        assert len({s.http_port, s.grpc_port, s.metrics_port} - {0}) == 3
    given = ServedServer(ServeConfig(model="mlp"), tmp_path / "log", grpc_port=s.http_port)
    assert given.grpc_port == s.http_port and len({given.http_port, given.grpc_port, given.metrics_port}) == 3
