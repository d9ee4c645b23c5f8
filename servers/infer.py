"""One request over gRPC or HTTP with a model's default inputs: the first check that a server answers."""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from saturate.errors import ConfigError, ModelError, ServerError
from saturate.tokens import GRPC_TOKEN_HEADER, HTTP_TOKEN_HEADER
from servers.models import MODEL_NAMES, Array, get_spec, synthetic_inputs

STATS_SETTLE_S = 2.0
"""How long ``infer`` waits for the statistics to count its request."""

PROTOCOLS = ("grpc", "http")
_TRITON_TO_NUMPY = {
    "FP32": np.float32,
    "FP16": np.float16,
    "FP64": np.float64,
    "INT64": np.int64,
    "INT32": np.int32,
    "INT8": np.int8,
    "UINT8": np.uint8,
    "BOOL": np.bool_,
}


@dataclass(frozen=True)
class InferConfig:
    """One request: which model on which server, how big."""

    model: str
    url: str = "127.0.0.1:8001"
    protocol: str = "grpc"
    batch: int = 1
    sizes: Mapping[str, int] = field(default_factory=dict)
    access_token: str | None = None
    seed: int = 0
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {self.protocol!r}; use -i grpc or -i http")
        if self.batch < 1:
            raise ConfigError(f"-b {self.batch} must be at least 1")
        host, sep, port = self.url.rpartition(":")
        if not sep or not host or not port.isdigit() or "://" in self.url:
            raise ConfigError(f"-u {self.url!r} must be HOST:PORT, e.g. 127.0.0.1:8001")


@dataclass(frozen=True)
class InferResult:
    outputs: dict[str, Array]
    latency_ns: int
    server_stats: dict[str, int] | None


def token_headers(protocol: str, token: str | None) -> dict[str, str] | None:
    """Headers that carry the access token for the statistics endpoint over ``protocol``."""
    if token is None:
        return None
    return {GRPC_TOKEN_HEADER if protocol == "grpc" else HTTP_TOKEN_HEADER: token}


def client_module(protocol: str) -> Any:
    if protocol == "grpc":
        import tritonclient.grpc as grpcclient

        return grpcclient
    import tritonclient.http as httpclient

    return httpclient


def _metadata(client: Any, config: InferConfig) -> tuple[list[dict[str, Any]], list[str], int]:
    try:
        ready = client.is_model_ready(config.model)
    except Exception as exc:
        raise ServerError(
            f"no server answers at {config.url} over {config.protocol} ({type(exc).__name__}); "
            f"start one with 'saturate serve' or fix -u/-i"
        ) from None
    if not ready:
        raise ModelError(
            f"model {config.model!r} is not ready on {config.url}; check -m (zoo: {', '.join(MODEL_NAMES)})"
        )
    if config.protocol == "grpc":
        meta = client.get_model_metadata(config.model, as_json=True)
        max_batch = int(
            client.get_model_config(config.model, as_json=True)["config"].get("max_batch_size", 0)
        )
    else:
        meta = client.get_model_metadata(config.model)
        max_batch = int(client.get_model_config(config.model).get("max_batch_size", 0))
    inputs = [
        {"name": i["name"], "datatype": i["datatype"], "shape": [int(d) for d in i["shape"]]}
        for i in meta["inputs"]
    ]
    return inputs, [o["name"] for o in meta["outputs"]], max_batch


def default_inputs(config: InferConfig, inputs: list[dict[str, Any]], batched: bool) -> dict[str, Array]:
    """Zoo models with variable sizes get their synthetic inputs (masks, padding); any other model gets
    standard-normal data with variable dims set to 1 (``--sizes`` applies to zoo models only)."""
    names = {i["name"] for i in inputs}
    if config.model in MODEL_NAMES:
        spec = get_spec(config.model)
        if spec.default_sizes and set(spec.input_names) == names and batched:
            return synthetic_inputs(spec, config.batch, config.sizes, config.seed)
    if config.sizes:
        raise ConfigError(f"--sizes applies to zoo models with variable sizes, not {config.model!r}")
    rng = np.random.default_rng(config.seed)
    arrays = {}
    for i in inputs:
        dims = i["shape"][1:] if batched else i["shape"]
        shape = ([config.batch] if batched else []) + [d if d > 0 else 1 for d in dims]
        dtype = _TRITON_TO_NUMPY.get(i["datatype"], np.float32)
        arrays[i["name"]] = rng.standard_normal(shape).astype(dtype)
    return arrays


def infer_once(config: InferConfig) -> InferResult:
    """Send one request and return its outputs, latency, and (with a token) the model's server counts."""
    module = client_module(config.protocol)
    client = module.InferenceServerClient(config.url)
    try:
        inputs_meta, output_names, max_batch = _metadata(client, config)
        if max_batch and config.batch > max_batch:
            raise ConfigError(f"-b {config.batch} exceeds the model's max_batch_size {max_batch}")
        arrays = default_inputs(config, inputs_meta, batched=max_batch > 0)
        request = []
        for meta in inputs_meta:
            arr = arrays[meta["name"]]
            item = module.InferInput(meta["name"], list(arr.shape), meta["datatype"])
            item.set_data_from_numpy(arr)
            request.append(item)
        wanted = [module.InferRequestedOutput(name) for name in output_names]
        before = server_counts(client, config) if config.access_token else None
        start = time.perf_counter_ns()
        try:
            response = client.infer(config.model, request, outputs=wanted)
        except Exception as exc:
            raise ServerError(f"the server rejected the request: {str(exc).splitlines()[0][:200]}") from None
        latency = time.perf_counter_ns() - start
        outputs = {name: response.as_numpy(name) for name in output_names}
        stats = counts_after(client, config, before) if before is not None else None
        return InferResult(outputs, latency, stats)
    finally:
        client.close()


def server_counts(client: Any, config: InferConfig) -> dict[str, int]:
    """Success/inference/execution counts from the statistics endpoint (needs the access token)."""
    headers = token_headers(config.protocol, config.access_token)
    try:
        if config.protocol == "grpc":
            stats = client.get_inference_statistics(config.model, headers=headers, as_json=True)
        else:
            stats = client.get_inference_statistics(config.model, headers=headers)
    except Exception:
        raise ServerError(
            "the statistics endpoint refused the access token; pass the server's --access-token"
        ) from None
    model = stats["model_stats"][0]
    return {
        "success": int(model["inference_stats"]["success"].get("count", 0)),
        "inference_count": int(model.get("inference_count", 0)),
        "execution_count": int(model.get("execution_count", 0)),
    }


def counts_after(
    client: Any, config: InferConfig, before: Mapping[str, int], timeout_s: float = STATS_SETTLE_S
) -> dict[str, int]:
    """The counts once they include this request.

    Triton records a request's statistics when the backend releases it, which can be after
    the response reached the client (triton-inference-server/core, src/infer_request.cc,
    InferenceRequest::ReportStatistics), so a read straight after the response may still
    show the previous count. Polls, bounded by ``timeout_s``, until ``success`` has grown
    past ``before``; returns the last read.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        now = server_counts(client, config)
        if now["success"] > before["success"] or time.monotonic() >= deadline:
            return now
        time.sleep(0.01)


def checksum(array: Array) -> str:
    """``sum=<float64 sum> crc32=<hex of the raw bytes>``."""
    total = float(np.asarray(array, dtype=np.float64).sum())
    return f"sum={total:.6f} crc32={zlib.crc32(np.ascontiguousarray(array).tobytes()):08x}"


def format_result(config: InferConfig, result: InferResult) -> list[str]:
    """The lines ``saturate infer`` prints."""
    lines = [
        f"saturate infer: model={config.model} url={config.url} "
        f"protocol={config.protocol} batch={config.batch}"
    ]
    for name, array in result.outputs.items():
        lines.append(f"  output {name} shape={list(array.shape)} dtype={array.dtype} {checksum(array)}")
    lines.append(f"  latency_ms={result.latency_ns / 1e6:.3f}")
    if result.server_stats is not None:
        lines.append("  server " + " ".join(f"{k}={v}" for k, v in result.server_stats.items()))
    return lines
