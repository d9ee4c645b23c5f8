"""``saturate infer`` against a real server: shapes, a checksum equal to direct inference, latency, counts."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from conftest import ServerProcess, run_cli, start_server

from servers.infer import checksum
from servers.models import build_model, get_spec, synthetic_inputs

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    s = start_server("mlp", ["--max-batch", "16", "--guard-statistics"])  # the wrong-token case
    yield s
    assert s.stop() == 0


def expected_checksum(batch: int) -> str:
    spec = get_spec("mlp")
    x = synthetic_inputs(spec, batch)  # what infer sends: seed 0
    with torch.inference_mode():
        out = build_model(spec)(torch.from_numpy(x["input"])).numpy()
    return checksum(out).split()[0]  # the float sum; crc32 may differ in the last bit across runtimes


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_infer_prints_shapes_checksum_latency_and_counts(server: ServerProcess, protocol: str) -> None:
    url = server.grpc_url if protocol == "grpc" else server.http_url
    proc = run_cli("infer", "-m", "mlp", "-u", url, "-i", protocol, "-b", "4", "--access-token", server.token)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "output output shape=[4, 8] dtype=float32" in out
    assert expected_checksum(4) in out
    latency = re.search(r"latency_ms=([0-9.]+)", out)
    assert latency is not None and float(latency.group(1)) > 0
    counts = re.search(r"server success=(\d+) inference_count=(\d+) execution_count=(\d+)", out)
    assert counts is not None and int(counts.group(2)) >= 4


def test_infer_errors_are_one_line(server: ServerProcess) -> None:
    proc = run_cli("infer", "-m", "particlenet", "-u", server.grpc_url)
    assert proc.returncode == 2 and "not ready" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("infer", "-m", "mlp", "-u", server.grpc_url, "--access-token", "wrong")
    assert proc.returncode == 2 and "access token" in proc.stderr
    proc = run_cli("infer", "-m", "mlp", "-u", server.grpc_url, "-b", "17")
    assert proc.returncode == 2 and "max_batch_size 16" in proc.stderr


def test_checksum_is_stable() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert checksum(a) == checksum(a.copy()) and checksum(a).startswith("sum=15.000000 ")
    assert checksum(a) != checksum(a + 1)
