"""Variable request shapes: `--shape-dist NAME:d1,SYM`, `--dim-dist 'SYM~poisson(40)'`, `--dims-file F`.

A :class:`ShapeDist` names, per input, its dims with symbols in place of the variable ones
(``pf_points:2,P``, ``sv_mask:1,S``); every symbol has a distribution (``poisson(MEAN)``,
``uniform(LO,HI)`` inclusive integers, ``choice(A,B,...)``, ``const(N)``) or comes from a file of
rows drawn uniformly with replacement (a header line naming the symbols, then one integer row per
jet/event, e.g. ``P S`` / ``37 4``). One draw per request, seeded; the dims that share a symbol take
the same value in that request (all items of a batched request share one shape, as a tensor must).
Values are clipped to at least ``min_dim`` (default 1).

The hot loop stays cheap: :func:`shaped_payloads` draws the level's sequence of shapes once and
serializes one request per **distinct** shape into a cache bounded by bytes; the drivers cycle
through the resulting list of payload references as they cycle through fixed-shape payloads.
:class:`CountingClient` counts what was actually sent per shape, which the level's result records
(``traffic.shapes``: the histogram of every symbol and of the joint draw).

perf_analyzer can only cycle through the shapes of its ``--input-data`` file (perf_analyzer
src/data_loader.cc); that path is unchanged (`loadgen.inputs`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loadgen.clients.base import BlockingInfer, Client, ModelInfo, Payload, RequestTensors
from loadgen.inputs import build_requests
from saturate.errors import ConfigError

KINDS = ("poisson", "uniform", "choice", "const")
#: How many shapes a level draws before the sequence repeats.
DRAWS = 4096
#: Default byte budget of the serialized-request cache.
CACHE_BYTES = 256 * 1024 * 1024
_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\Z")
_DIST = re.compile(r"\s*([A-Za-z_][A-Za-z_0-9]*)\s*~\s*([a-z]+)\s*\(([^)]*)\)\s*\Z")

Dim = int | str
IntArray = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True)
class DimDist:
    """One symbol's distribution: `kind` in KINDS with its numeric `params`."""

    symbol: str
    kind: str
    params: tuple[float, ...]

    def draw(self, rng: np.random.Generator, n: int) -> IntArray:
        p = self.params
        if self.kind == "poisson":
            return rng.poisson(p[0], size=n).astype(np.int64)
        if self.kind == "uniform":
            return rng.integers(int(p[0]), int(p[1]) + 1, size=n, dtype=np.int64)
        if self.kind == "choice":
            return rng.choice(np.asarray(p, dtype=np.int64), size=n)
        return np.full(n, int(p[0]), dtype=np.int64)

    def text(self) -> str:
        return f"{self.symbol}~{self.kind}({','.join(f'{v:g}' for v in self.params)})"


def parse_dim_dist(text: str) -> DimDist:
    """Parse `SYM~poisson(40)` / `uniform(10,100)` / `choice(8,16,32)` / `const(50)`."""
    m = _DIST.match(text)
    hint = "expected SYM~poisson(MEAN), SYM~uniform(LO,HI), SYM~choice(A,B,..) or SYM~const(N)"
    if not m:
        raise ConfigError(f"--dim-dist {text!r}: {hint}")
    symbol, kind, args = m.group(1), m.group(2), m.group(3)
    if kind not in KINDS:
        raise ConfigError(f"--dim-dist {text!r}: unknown distribution {kind!r}; {hint}")
    try:
        params = tuple(float(a) for a in args.split(",") if a.strip())
    except ValueError:
        raise ConfigError(f"--dim-dist {text!r}: parameters must be numbers") from None
    want = {"poisson": 1, "uniform": 2, "const": 1}.get(kind)
    if (want is not None and len(params) != want) or not params:
        raise ConfigError(f"--dim-dist {text!r}: {kind} takes {want or 'one or more'} parameter(s)")
    if any(v < 0 for v in params) or (kind == "uniform" and params[1] < params[0]):
        raise ConfigError(f"--dim-dist {text!r}: parameters must be >= 0 (and LO <= HI)")
    return DimDist(symbol, kind, params)


def parse_shape_dist(text: str) -> tuple[str, tuple[Dim, ...]]:
    """Parse `--shape-dist NAME:2,P` (dims without the batch dimension; a symbol for a drawn dim)."""
    name, sep, dims = text.rpartition(":")
    if not sep or not name or not dims:
        raise ConfigError(f"--shape-dist {text!r}: expected NAME:d1,SYM (e.g. pf_points:2,P)")
    out: list[Dim] = []
    for d in dims.split(","):
        d = d.strip()
        if d.isdigit() and int(d) > 0:
            out.append(int(d))
        elif _SYMBOL.match(d):
            out.append(d)
        else:
            raise ConfigError(f"--shape-dist {text!r}: {d!r} is neither a dim > 0 nor a symbol like P")
    return name, tuple(out)


def read_dims_file(path: str) -> tuple[tuple[str, ...], IntArray]:
    """A file of rows to draw from: header of symbols, then integer rows (whitespace or commas)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--dims-file {path}: no such file (a header like 'P S', then rows like '40 5')")
    lines = [ln.replace(",", " ").split() for ln in p.read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    if len(lines) < 2:
        raise ConfigError(f"--dims-file {path}: needs a header of symbols and at least one row")
    header = tuple(lines[0])
    if not all(_SYMBOL.match(h) for h in header):
        raise ConfigError(f"--dims-file {path}: the first line must name the symbols, e.g. 'P S'")
    try:
        rows = np.array([[int(v) for v in ln] for ln in lines[1:]], dtype=np.int64)
    except ValueError:
        raise ConfigError(f"--dims-file {path}: every row must hold {len(header)} integers") from None
    if rows.ndim != 2 or rows.shape[1] != len(header):
        raise ConfigError(f"--dims-file {path}: every row must hold {len(header)} integers")
    return header, rows


@dataclass(frozen=True)
class ShapeDist:
    """Per-input dims with symbols, and where every symbol's value comes from (see module doc)."""

    templates: tuple[tuple[str, tuple[Dim, ...]], ...]
    dims: tuple[DimDist, ...] = ()
    dims_file: str | None = None
    min_dim: int = 1

    def __post_init__(self) -> None:
        names = [n for n, _ in self.templates]
        if not names:
            raise ConfigError("--dim-dist/--dims-file need --shape-dist NAME:d1,SYM for the inputs "
                              "they shape")
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ConfigError(f"--shape-dist given twice for {sorted(dup)[0]!r}")
        given = [d.symbol for d in self.dims] + list(self._file()[0])
        twice = {s for s in given if given.count(s) > 1}
        if twice:
            raise ConfigError(f"symbol {sorted(twice)[0]!r} has two distributions; give it once")
        missing = [s for s in self.symbols if s not in given]
        if missing:
            raise ConfigError(f"--shape-dist uses symbol {missing[0]!r}: give --dim-dist "
                              f"'{missing[0]}~poisson(N)' or a --dims-file column for it")

    @property
    def symbols(self) -> tuple[str, ...]:
        seen: list[str] = []
        for _, dims in self.templates:
            seen += [d for d in dims if isinstance(d, str) and d not in seen]
        return tuple(seen)

    def _file(self) -> tuple[tuple[str, ...], IntArray]:
        if self.dims_file is None:
            return (), np.zeros((0, 0), dtype=np.int64)
        return read_dims_file(self.dims_file)

    def draw(self, seed: int, n: int) -> IntArray:
        """`n` joint draws, one row per request, one column per symbol (in `symbols` order)."""
        rng = np.random.default_rng(seed)
        header, rows = self._file()
        cols: dict[str, IntArray] = {}
        if len(header):
            picked = rows[rng.integers(0, len(rows), size=n)]
            cols.update({s: picked[:, i] for i, s in enumerate(header)})
        for d in self.dims:
            cols[d.symbol] = d.draw(rng, n)
        if not self.symbols:
            return np.zeros((n, 0), np.int64)
        out = np.stack([cols[s] for s in self.symbols], axis=1)
        return np.maximum(out, self.min_dim)

    def shapes(self, row: Sequence[int]) -> dict[str, tuple[int, ...]]:
        """The concrete dims of every templated input for one draw."""
        value = dict(zip(self.symbols, (int(v) for v in row), strict=True))
        return {name: tuple(value[d] if isinstance(d, str) else d for d in dims)
                for name, dims in self.templates}

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": {n: list(d) for n, d in self.templates}, "dims": [d.text() for d in self.dims],
                "dims_file": self.dims_file, "min_dim": self.min_dim}


@dataclass
class ShapedPayloads:
    """The level's payload sequence (one reference per draw) and the distinct shapes behind it."""

    payloads: list[Payload]
    keys: list[tuple[int, ...]]  # distinct symbol values, index-aligned with `distinct`
    distinct: list[Payload]
    cycle: int  # draws in the sequence before it repeats
    truncated: bool  # the cache budget cut the sequence short


def shaped_payloads(info: ModelInfo, dist: ShapeDist, fixed: Mapping[str, tuple[int, ...]], batch: int,
                    seed: int, prepare: Callable[[RequestTensors], Payload], draws: int = DRAWS,
                    cache_bytes: int = CACHE_BYTES) -> ShapedPayloads:
    """Serialize one request per distinct drawn shape (in order of first draw) within `cache_bytes`."""
    unknown = [n for n, _ in dist.templates if n not in {t.name for t in info.inputs}]
    if unknown:
        raise ConfigError(f"--shape-dist {unknown[0]}: model {info.name!r} has no such input; inputs: "
                          + ", ".join(t.name for t in info.inputs))
    rows = dist.draw(seed, draws)
    index: dict[tuple[int, ...], int] = {}
    keys: list[tuple[int, ...]] = []
    distinct: list[Payload] = []
    seq: list[Payload] = []
    used = 0
    truncated = False
    for row in rows:
        key = tuple(int(v) for v in row)
        i = index.get(key)
        if i is None:
            shapes = {**fixed, **dist.shapes(key)}
            payload = prepare(build_requests(info, shapes, batch, "random", seed + len(keys))[0])
            if distinct and used + len(payload[0]) > cache_bytes:
                truncated = True
                break
            used += len(payload[0])
            i = index[key] = len(keys)
            keys.append(key)
            distinct.append(payload)
        seq.append(distinct[i])
    return ShapedPayloads(seq, keys, distinct, len(seq), truncated)


class CountingClient:
    """A `Client` that counts, per distinct shape, the requests it sends (then defers to `inner`)."""

    def __init__(self, inner: Client, shaped: ShapedPayloads) -> None:
        self.inner = inner
        self.shaped = shaped
        self._index = {id(p): i for i, p in enumerate(shaped.distinct)}
        self.counts = [0] * len(shaped.distinct)
        self._senders: list[_CountingSender] = []
        self.url = inner.url
        self.errors = inner.errors
        self.sender = inner.sender

    @property
    def send_ns(self) -> int:
        return self.inner.send_ns

    @send_ns.setter
    def send_ns(self, value: int) -> None:
        self.inner.send_ns = value

    @property
    def recv_ns(self) -> int:
        return self.inner.recv_ns

    @recv_ns.setter
    def recv_ns(self, value: int) -> None:
        self.inner.recv_ns = value

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def model_info(self, model: str, version: str) -> ModelInfo:
        return await self.inner.model_info(model, version)

    async def has_statistics(self) -> bool:
        return await self.inner.has_statistics()

    async def statistics(self, model: str, version: str) -> dict[str, Any]:
        return await self.inner.statistics(model, version)

    def prepare(self, model: str, version: str, request: RequestTensors) -> Payload:
        return self.inner.prepare(model, version, request)

    def infer(self, payload: Payload) -> Coroutine[Any, Any, str | None]:
        """Count, then hand back the inner client's coroutine itself (no extra coroutine frame)."""
        i = self._index.get(id(payload))
        if i is not None:
            self.counts[i] += 1
        return self.inner.infer(payload)

    async def infer_checked(self, payload: Payload) -> object:
        return await self.inner.infer_checked(payload)

    def blocking(self) -> BlockingInfer:
        """The inner client's blocking sender, counting into its own list (one per thread, no race)."""
        sender = _CountingSender(self.inner.blocking(), self._index, len(self.counts))
        self._senders.append(sender)
        return sender

    def sent_counts(self) -> list[int]:
        """Sends per distinct shape since `reset`, from the event loop and every thread's sender."""
        return [sum(c) for c in zip(self.counts, *(s.counts for s in self._senders), strict=True)]

    def reset(self) -> None:
        self.counts = [0] * len(self.counts)
        self._senders = []

    def histogram(self, dist: ShapeDist) -> dict[str, Any]:
        """What was sent since `reset`: per symbol {value: count}, and the joint draws."""
        per: dict[str, dict[str, int]] = {s: {} for s in dist.symbols}
        joint: dict[str, int] = {}
        counts = self.sent_counts()
        for key, n in zip(self.shaped.keys, counts, strict=True):
            if not n:
                continue
            joint[",".join(map(str, key))] = n
            for s, v in zip(dist.symbols, key, strict=True):
                per[s][str(v)] = per[s].get(str(v), 0) + n
        sort = {s: dict(sorted(h.items(), key=lambda kv: int(kv[0]))) for s, h in per.items()}
        return {"sent": sum(counts), "symbols": list(dist.symbols), "histogram": sort, "joint": joint,
                "distinct_shapes": len(self.shaped.distinct), "cycle": self.shaped.cycle,
                "truncated_by_cache": self.shaped.truncated, "dist": dist.to_dict()}


class _CountingSender:
    """A thread's blocking sender that counts the shapes it sends (see `CountingClient.blocking`)."""

    def __init__(self, inner: BlockingInfer, index: dict[int, int], n: int) -> None:
        self.inner, self._index, self.counts = inner, index, [0] * n

    def infer(self, payload: Payload) -> str | None:
        i = self._index.get(id(payload))
        if i is not None:
            self.counts[i] += 1
        return self.inner.infer(payload)

    def close(self) -> None:
        self.inner.close()
