"""Real PyTriton servers on the CPU: outputs over gRPC and HTTP equal direct inference, for every backend."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import numpy as np
import psutil
import pytest
import torch
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from conftest import ServerProcess, start_server

from servers.models import build_model, get_spec, synthetic_inputs

pytestmark = pytest.mark.integration

PN = get_spec("particlenet")
SIZES = ({"P": 100, "S": 10}, {"P": 33, "S": 4})
BATCHES = (1, 7, 64)


@pytest.fixture(scope="module", params=["torch", "torchscript", "onnx"])
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    s = start_server("particlenet", ["--backend", request.param, "--max-batch", "64"])
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return build_model(PN)


def direct(model: torch.nn.Module, x: dict[str, np.ndarray]) -> np.ndarray:
    with torch.inference_mode():
        out: np.ndarray = model(*(torch.from_numpy(x[n]) for n in PN.input_names)).numpy()
    return out


def infer(protocol: str, url: str, x: dict[str, np.ndarray]) -> np.ndarray:
    module = grpcclient if protocol == "grpc" else httpclient
    client = module.InferenceServerClient(url)
    try:
        inputs = []
        for name in reversed(PN.input_names):  # order must not matter: the server maps by name
            item = module.InferInput(name, list(x[name].shape), "FP32")
            item.set_data_from_numpy(x[name])
            inputs.append(item)
        out: np.ndarray = client.infer("particlenet", inputs).as_numpy("softmax")
        return out
    finally:
        client.close()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_outputs_equal_direct_inference(server: ServerProcess, model: torch.nn.Module, protocol: str) -> None:
    url = server.grpc_url if protocol == "grpc" else server.http_url
    for sizes in SIZES:
        for batch in BATCHES:
            x = synthetic_inputs(PN, batch, sizes, seed=batch)
            got = infer(protocol, url, x)
            assert got.shape == (batch, 8)
            np.testing.assert_allclose(got, direct(model, x), atol=1e-4, err_msg=f"{sizes} batch {batch}")


def test_ready_line_and_model_config(server: ServerProcess) -> None:
    lines = [ln for ln in server.log_path.read_text().splitlines() if ln.startswith("saturate serve: ready")]
    assert len(lines) == 1
    assert "model=particlenet" in lines[0] and f"grpc=127.0.0.1:{server.grpc_port}" in lines[0]
    assert (
        f"http=127.0.0.1:{server.http_port}" in lines[0]
        and f"metrics=127.0.0.1:{server.metrics_port}" in lines[0]
    )
    client = grpcclient.InferenceServerClient(server.grpc_url)
    config = client.get_model_config("particlenet", as_json=True)["config"]
    assert int(config["max_batch_size"]) == 64
    assert [i["name"] for i in config["input"]] == list(PN.input_names)
    assert [[int(d) for d in i["dims"]] for i in config["input"]] == [list(t.triton_shape) for t in PN.inputs]
    assert [o["name"] for o in config["output"]] == ["softmax"]
    client.close()


def test_statistics_open_on_loopback_model_control_guarded(server: ServerProcess) -> None:
    """On loopback statistics need no token; model-repository does (0.0.0.0: test_loopback_serve.py)."""
    grpc_c = grpcclient.InferenceServerClient(server.grpc_url)
    http_c = httpclient.InferenceServerClient(server.http_url)
    try:
        stats = grpc_c.get_inference_statistics("particlenet", as_json=True)  # no token
        assert stats["model_stats"][0]["name"] == "particlenet"
        stats = http_c.get_inference_statistics("particlenet")
        assert stats["model_stats"][0]["name"] == "particlenet"
        with pytest.raises(Exception, match="restricted"):
            grpc_c.get_model_repository_index()
        with pytest.raises(Exception, match=r"restricted|denied|token"):
            http_c.get_model_repository_index(headers={"triton-access-token": "wrong"})
    finally:
        grpc_c.close()
        http_c.close()


def _tree(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_without_ld_library_path(
    monkeypatch: pytest.MonkeyPatch, sig: signal.Signals
) -> None:
    """Started from an environment without LD_LIBRARY_PATH; the signal goes to the serve process only."""
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    s = start_server("mlp", ["--instances", "2"])
    try:
        children = _tree(s.proc.pid)
        assert any("tritonserver" in " ".join(c.cmdline()) for c in children)
        x = synthetic_inputs(get_spec("mlp"), 3)
        client = grpcclient.InferenceServerClient(s.grpc_url)
        item = grpcclient.InferInput("input", [3, 16], "FP32")
        item.set_data_from_numpy(x["input"])
        assert client.infer("mlp", [item]).as_numpy("output").shape == (3, 8)
        client.close()
        os.kill(s.proc.pid, sig)
        assert s.proc.wait(60) == 0
        _, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [], f"left running: {[p.cmdline()[:1] for p in alive]}"
        assert "saturate serve: stopped" in s.log_path.read_text()
    finally:
        s.stop()
