"""`saturate serve` on loopback: `saturate load` needs no token (statistics open), model control stays
guarded; on 0.0.0.0 statistics need the token as before. Both servers serve `mlp` on the CPU."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from conftest import ServerProcess, run_cli, start_server

pytestmark = pytest.mark.integration

FAST = ("-p", "300", "-s", "80", "-r", "3", "--continue-on-unstable")


@pytest.fixture(scope="module")
def loopback() -> Iterator[ServerProcess]:
    server = start_server("mlp")
    yield server
    server.stop()


def test_load_without_token_on_loopback(loopback: ServerProcess, tmp_path: Path) -> None:
    js = tmp_path / "run.json"
    res = run_cli("load", "-m", "mlp", "-u", loopback.grpc_url, *FAST, "--json", str(js), timeout=120)
    assert res.returncode == 0, res.stderr
    level = json.loads(js.read_text())["levels"][0]
    assert level["server"]["executions"] > 0  # statistics were read without a token
    assert "statistics are open on loopback" in loopback.log_path.read_text()
    assert "Pass [1/3]" in res.stderr  # not a terminal: the plain progress line per window
    quiet = run_cli("load", "-m", "mlp", "-u", loopback.grpc_url, *FAST, "--quiet", timeout=120)
    assert quiet.returncode == 0, quiet.stderr
    assert "Pass [" not in quiet.stderr and "Throughput" in quiet.stdout  # the level report stays


def test_model_control_still_guarded_on_loopback(loopback: ServerProcess) -> None:
    http_c = httpclient.InferenceServerClient(loopback.http_url)
    grpc_c = grpcclient.InferenceServerClient(loopback.grpc_url)
    try:
        assert http_c.get_inference_statistics("mlp")["model_stats"]
        with pytest.raises(Exception, match=r"restricted|denied|token"):
            http_c.get_model_repository_index()
        with pytest.raises(Exception, match=r"restricted|denied|token"):
            grpc_c.get_model_repository_index()
        index = http_c.get_model_repository_index(headers={"triton-access-token": loopback.token})
        assert isinstance(index, list)  # with the token it answers
    finally:
        http_c.close()
        grpc_c.close()


def test_statistics_need_the_token_on_all_addresses(tmp_path: Path) -> None:
    server = start_server("mlp", extra=("--bind", "0.0.0.0"))  # connected to via 127.0.0.1 only
    try:
        res = run_cli("load", "-m", "mlp", "-u", server.grpc_url, *FAST, timeout=120)
        assert res.returncode == 2, res.stderr
        assert "token" in res.stderr and "Traceback" not in res.stderr
        res = run_cli("load", "-m", "mlp", "-u", server.grpc_url, *FAST, "--access-token", server.token,
                      timeout=120)
        assert res.returncode == 0, res.stderr
    finally:
        server.stop()
