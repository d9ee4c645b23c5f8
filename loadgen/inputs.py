"""Request data for a level: `--shape`, `-b` and `--input-data random|zero|FILE.json`, checked
against the server's model metadata/config before any load is sent.

Shapes given with `--shape` exclude the batch dimension, as in perf_analyzer. Random data is drawn
from a seeded generator (uniform [0, 1) for floats, small non-negative integers for ints) rather
than perf_analyzer's raw random bytes, so models see finite values. A JSON file uses
perf_analyzer's format: ``{"data": [{NAME: [flat values] | {"content": [...], "shape": [...]} |
{"b64": "..."}}, ...]}``; entries are used round-robin and `-b B` stacks B consecutive entries.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from loadgen.clients.base import ModelInfo, RequestTensors, TensorSpec
from saturate.errors import ConfigError, ModelError

DTYPES: dict[str, Any] = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64, "BYTES": np.object_,
}

Array = np.ndarray[Any, Any]


def check_batch(info: ModelInfo, batch: int) -> None:
    """`-b` must fit the model's max_batch_size (0 = the model does not batch)."""
    if info.max_batch_size == 0 and batch > 1:
        raise ConfigError(f"-b {batch}: model {info.name!r} does not batch (max_batch_size 0); use -b 1")
    if info.max_batch_size and batch > info.max_batch_size:
        raise ConfigError(f"-b {batch}: model {info.name!r} takes at most {info.max_batch_size} per request")


def _item_dims(info: ModelInfo, spec: TensorSpec) -> tuple[int, ...]:
    """A tensor's dims without the batch dimension."""
    return spec.shape[1:] if info.max_batch_size > 0 and spec.shape else spec.shape


def resolve_shapes(info: ModelInfo, shapes: Mapping[str, tuple[int, ...]],
                   allow_variable: bool = False) -> dict[str, tuple[int, ...]]:
    """Per input, dims without batch: fixed dims from the model, variable ones from `--shape`."""
    names = [t.name for t in info.inputs]
    for name in shapes:
        if name not in names:
            raise ModelError(
                f"--shape {name}: model {info.name!r} has no input {name!r}; inputs: {', '.join(names)}")
    out: dict[str, tuple[int, ...]] = {}
    for spec in info.inputs:
        model_dims = _item_dims(info, spec)
        given = shapes.get(spec.name)
        if given is None:
            if any(d < 0 for d in model_dims) and not allow_variable:
                want = ",".join("N" if d < 0 else str(d) for d in model_dims)
                raise ModelError(
                    f"input {spec.name!r} has variable dims {list(model_dims)}; "
                    f"give --shape {spec.name}:{want}")
            out[spec.name] = model_dims
            continue
        if len(given) != len(model_dims):
            raise ModelError(
                f"--shape {spec.name}: rank {len(given)} does not match the model's {list(model_dims)} "
                f"(rank {len(model_dims)}, batch dimension excluded)")
        for g, m in zip(given, model_dims, strict=True):
            if m >= 0 and g != m:
                raise ModelError(f"--shape {spec.name}:{','.join(map(str, given))} does not fit the model's "
                                 f"{list(model_dims)}; fixed dims must match")
        out[spec.name] = given
    return out


def _generate(spec: TensorSpec, dims: tuple[int, ...], kind: str, rng: np.random.Generator) -> Array:
    if spec.datatype not in DTYPES:
        raise ModelError(f"input {spec.name!r} has datatype {spec.datatype}, which saturate cannot generate")
    dtype = DTYPES[spec.datatype]
    if spec.datatype == "BYTES":
        value = b"" if kind == "zero" else b"x" * 16
        return np.full(dims, value, dtype=np.object_)
    if kind == "zero":
        return np.zeros(dims, dtype=dtype)
    if spec.datatype == "BOOL":
        return rng.integers(0, 2, size=dims).astype(np.bool_)
    if np.issubdtype(dtype, np.floating):
        return rng.random(size=dims, dtype=np.float64).astype(dtype)
    return rng.integers(0, 100, size=dims).astype(dtype)


def _batched(arrays: list[Array], batch: int, batching: bool) -> Array:
    return np.stack(arrays) if batching else arrays[0]


def build_requests(info: ModelInfo, shapes: Mapping[str, tuple[int, ...]], batch: int, input_data: str,
                   seed: int = 0) -> list[RequestTensors]:
    """The distinct requests of a level (sent round-robin). Raises one-line errors on misfit."""
    check_batch(info, batch)
    outputs = tuple(t.name for t in info.outputs)
    batching = info.max_batch_size > 0
    if input_data in ("random", "zero"):
        dims = resolve_shapes(info, shapes)
        rng = np.random.default_rng(seed)
        generated = []
        for spec in info.inputs:
            items = [_generate(spec, dims[spec.name], input_data, rng) for _ in range(batch)]
            generated.append((spec.name, spec.datatype, _batched(items, batch, batching)))
        return [RequestTensors(tuple(generated), outputs)]
    entries = _read_json_entries(Path(input_data), info, shapes)
    requests = []
    for start in range(0, len(entries), batch):
        tensors: list[tuple[str, str, Array]] = []
        for spec in info.inputs:
            items = [entries[(start + j) % len(entries)][spec.name] for j in range(batch)]
            if len({a.shape for a in items}) > 1:
                raise ConfigError(f"{input_data}: -b {batch} stacks consecutive entries of {spec.name!r}, "
                                  "but their shapes differ")
            tensors.append((spec.name, spec.datatype, _batched(items, batch, batching)))
        requests.append(RequestTensors(tuple(tensors), outputs))
    return requests


def _bad(path: Path, what: str) -> ConfigError:
    return ConfigError(f"--input-data {path}: {what} (see perf_analyzer's JSON format: "
                       '{"data": [{"INPUT": [values]}]})')


def _read_json_entries(path: Path, info: ModelInfo,
                       shapes: Mapping[str, tuple[int, ...]]) -> list[dict[str, Array]]:
    if not path.is_file():
        raise ConfigError(f"--input-data {path}: not random, zero or an existing JSON file")
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(path, f"not valid JSON ({str(exc).splitlines()[0]})") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list) or not data:
        raise _bad(path, 'needs a non-empty "data" list')
    if all(isinstance(e, list) for e in data):
        data = [e for stream in data for e in stream]
    dims = resolve_shapes(info, shapes, allow_variable=True)
    entries = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise _bad(path, f"entry {i} is not an object of input name -> values")
        arrays: dict[str, Array] = {}
        for spec in info.inputs:
            if spec.name not in entry:
                raise _bad(path, f"entry {i} lacks input {spec.name!r}")
            arrays[spec.name] = _decode(path, i, spec, entry[spec.name], dims[spec.name])
        unknown = set(entry) - set(arrays)
        if unknown:
            raise _bad(path, f"entry {i} has {sorted(unknown)[0]!r}, which is not an input of {info.name!r}")
        entries.append(arrays)
    return entries


def _decode(path: Path, i: int, spec: TensorSpec, value: Any, dims: tuple[int, ...]) -> Array:
    where = f"entry {i} input {spec.name!r}"
    if spec.datatype not in DTYPES:
        raise ModelError(f"input {spec.name!r} has datatype {spec.datatype}, which saturate cannot send")
    dtype = DTYPES[spec.datatype]
    shape: tuple[int, ...] = dims
    if isinstance(value, dict) and "content" in value:
        if "shape" in value:
            try:
                shape = tuple(int(d) for d in value["shape"])
            except (TypeError, ValueError):
                raise _bad(path, f"{where}: shape must be a list of integers") from None
        value = value["content"]
    try:
        if isinstance(value, dict) and "b64" in value:
            raw = base64.b64decode(value["b64"], validate=True)
            flat = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
        elif isinstance(value, list):
            if spec.datatype == "BYTES":
                flat = np.array([str(v).encode() for v in value], dtype=np.object_)
            else:
                flat = np.asarray(value, dtype=dtype).reshape(-1)
        else:
            raise _bad(path, f"{where}: expected a list, {{\"b64\": ...}} or {{\"content\", \"shape\"}}")
    except (ValueError, TypeError, binascii.Error) as exc:
        raise _bad(path, f"{where}: {str(exc).splitlines()[0]}") from None
    if any(d < 0 for d in shape):
        raise _bad(path, f"{where}: variable dims {list(shape)}; give --shape {spec.name}:... or a \"shape\"")
    if flat.size != math.prod(shape):
        raise _bad(path, f"{where}: {flat.size} values do not fill shape {list(shape)}")
    if len(shape) != len(dims) or any(m >= 0 and g != m for g, m in zip(shape, dims, strict=False)):
        raise _bad(path, f"{where}: shape {list(shape)} does not fit the model's {list(dims)}")
    return flat.reshape(shape)
