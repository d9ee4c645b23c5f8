"""The result model's one (de)serialiser: dataclass fields to the run JSON's dicts and back.

A field's JSON form follows from its type and three optional metadata keys (see :func:`ns_as_us`):

- ``json``: the JSON key (default: the field name; a ``*_ns`` field in µs becomes ``*_us``);
- ``unit``: ``"us"`` (held in ns, written as integer µs truncated like perf_analyzer's ``ns / 1000``
  on uint64) or ``"us_float"`` (ns, written as float µs);
- ``absent``: the value when a file lacks (or nulls) the key of a field without a default.

Nested dataclasses go through their own ``to_dict`` / ``from_dict`` (a class with a special shape,
such as LatencySummary's flat percentiles, overrides only itself); ``X | None`` fields are null (an
empty dict reads as None too); dicts and lists are copied with their items' types coerced; a key the
class does not know is ignored, a null for a field that cannot be None reads as its default. A
class's ``JSON_ORDER`` (field names) orders its keys; a field with ``metadata={"skip": True}`` is left
to the class (extras blocks merged at its top level).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, Self, TypeVar

T = TypeVar("T")


class JsonRecord:
    """Base of the result dataclasses: ``to_dict`` / ``from_dict`` through :func:`encode` /
    :func:`decode`; a class with a special shape overrides them and still calls these."""

    def to_dict(self) -> dict[str, Any]:
        return encode(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        return decode(cls, d)


def ns_as_us(*, default: Any = dataclasses.MISSING, key: str | None = None, as_float: bool = False,
             absent: Any = dataclasses.MISSING) -> Any:
    """A field held in ns and written in µs (integer, truncated; float with ``as_float``)."""
    meta: dict[str, Any] = {"unit": "us_float" if as_float else "us"}
    if key is not None:
        meta["json"] = key
    if absent is not dataclasses.MISSING:
        meta["absent"] = absent
    return dataclasses.field(default=default, metadata=meta)


def _key(f: dataclasses.Field[Any]) -> str:
    if "json" in f.metadata:
        return str(f.metadata["json"])
    if f.metadata.get("unit") and f.name.endswith("_ns"):
        return f.name[:-3] + "_us"
    return f.name


def _fields(cls: type) -> list[dataclasses.Field[Any]]:
    fs = [f for f in dataclasses.fields(cls) if not f.metadata.get("skip")]
    order = getattr(cls, "JSON_ORDER", None)
    if order:
        rank = {name: i for i, name in enumerate(order)}
        fs.sort(key=lambda f: rank.get(f.name, len(rank)))
    return fs


def encode(obj: Any) -> dict[str, Any]:
    """The JSON dict of a result dataclass."""
    return {_key(f): _enc(getattr(obj, f.name), f.metadata.get("unit")) for f in _fields(type(obj))}


def _enc(v: Any, unit: str | None) -> Any:
    if v is None:
        return None
    if unit == "us":
        return int(v) // 1000
    if unit == "us_float":
        return v / 1000
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return v.to_dict()  # type: ignore[attr-defined]
    if isinstance(v, dict):
        return {k: _enc(x, None) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_enc(x, None) for x in v]
    return v


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(cls: type[T], d: Mapping[str, Any], **given: Any) -> T:
    """``cls`` from its JSON dict; ``given`` fields are taken as they are."""
    hints = _hints(typing.cast(Any, cls))
    kwargs: dict[str, Any] = dict(given)
    for f in _fields(cls):
        if f.name in given or not f.init:
            continue
        key = _key(f)
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        tp, optional = _optional(hints[f.name])
        v = d.get(key)
        if v is None and not optional:
            if has_default:
                continue
            if "absent" in f.metadata:
                kwargs[f.name] = f.metadata["absent"]
                continue
            raise KeyError(key)
        kwargs[f.name] = None if v is None else _dec(tp, v, f.metadata.get("unit"), optional)
    return cls(**kwargs)


def _optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) < len(typing.get_args(tp)):
            return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), True  # noqa: UP007
    return tp, False


def _dec(tp: Any, v: Any, unit: str | None = None, optional: bool = False) -> Any:
    if unit == "us":
        return int(v) * 1000
    if unit == "us_float":
        return float(v) * 1000
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if optional and not v:
            return None
        return tp.from_dict(v)  # type: ignore[attr-defined]
    origin = typing.get_origin(tp)
    if origin is dict:
        _, vt = typing.get_args(tp)
        return {str(k): _dec(vt, x) for k, x in v.items()}
    if origin in (list, tuple):
        (it, *_) = typing.get_args(tp)
        return [_dec(it, x) for x in v]
    if tp in (int, float, str, bool):
        return tp(v)
    return v  # Any, Literal: as written
