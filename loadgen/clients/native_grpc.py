"""Which sender a threaded gRPC level uses, and the native one behind `BlockingInfer`.

Two senders make the threaded driver's blocking ModelInfer calls (loadgen.threaded): grpcio's sync
channel (``python``, always there) and saturate's own extension on gRPC's C core (``native``,
loadgen/clients/_cgrpc.c, built by tools/build_native.sh), which skips grpcio's Python call path and
so costs the client a fraction of the CPU per request. ``--sender auto`` takes the native one when it
is built; each level's ``client.sender`` records which one ran. Both send the same pre-serialized
bytes with the same metadata and deadline and return a status code the same way; the answer is not
parsed by either. The extension also runs whole loops in C for `--driver native` and `native-sync`
(loadgen.native_loop): closed ones (`_cgrpc.Loop`, N calls in flight on one completion queue,
perf_analyzer's async mode; `_cgrpc.SyncLoop`, one C thread per call, its sync mode) and an open one
(`_cgrpc.OpenLoop`, calls sent on a fixed schedule). The asyncio driver always uses grpc.aio.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import grpc

from loadgen.clients.base import ErrorLog, Payload
from saturate.errors import ConfigError

NATIVE_MISSING = "the native gRPC sender is not built: run `make native` (tools/build_native.sh)"

try:
    from loadgen.clients import _cgrpc
except ImportError as exc:  # not built here: the python sender runs, and levels say so
    _cgrpc = None  # type: ignore[assignment]
    _BUILT = list(Path(__file__).parent.glob("_cgrpc*.so"))
    _MISSING_WHY = f"{_BUILT[0].name} does not load: {exc}" if _BUILT else "no loadgen/clients/_cgrpc*.so"
else:
    _MISSING_WHY = ""

_CODE_NAMES: dict[int, str] = {code.value[0]: code.name for code in grpc.StatusCode}


def native_missing() -> str | None:
    """None when the native sender is importable, else why not (for messages and tests)."""
    return None if _cgrpc is not None else f"{NATIVE_MISSING} ({_MISSING_WHY})"


def resolve(sender: str, protocol: str) -> str:
    """The sender a threaded level of `protocol` gets for `--sender`: "native" or "python".

    Raises ConfigError for `--sender native` when the extension is not built (before any request)."""
    if sender == "native" and _cgrpc is None:
        raise ConfigError(NATIVE_MISSING)
    if protocol == "grpc" and sender in ("auto", "native") and _cgrpc is not None:
        return "native"
    return "python"


class NativeChannel:
    """One channel on the C core, shared by the threads' callers (each holds it alive)."""

    def __init__(self, target: str, method: str) -> None:
        assert _cgrpc is not None, NATIVE_MISSING
        self._channel = _cgrpc.Channel(target, method)

    def blocking(self, metadata: tuple[tuple[str, str], ...] | None, timeout_s: float | None,
                 errors: ErrorLog) -> NativeBlockingGrpc:
        assert _cgrpc is not None, NATIVE_MISSING
        return NativeBlockingGrpc(_cgrpc.Caller(self._channel, metadata), timeout_s, errors)

    def loop(self, payloads: Sequence[bytes], concurrency: int, metadata: tuple[tuple[str, str], ...] | None,
             timeout_s: float | None, backoff_s: float, backoff_codes: Collection[str], offset: int = 0,
             stride: int = 1, sync: bool = False) -> _cgrpc.Loop:
        """A closed loop of `concurrency` calls in flight (loadgen.native_loop): on one completion
        queue, or with `sync` each on its own thread (`SyncLoop`); a call waits `backoff_s` after a
        failure whose status is named in `backoff_codes`."""
        assert _cgrpc is not None, NATIVE_MISSING
        codes = sorted(grpc.StatusCode[name].value[0] for name in backoff_codes)
        kind = _cgrpc.SyncLoop if sync else _cgrpc.Loop
        return kind(self._channel, payloads, concurrency, timeout_s or 0.0, backoff_s, codes, metadata,
                           offset, stride)

    def open_loop(self, payloads: Sequence[bytes], offsets_ns: Sequence[int], period_ns: int, start_ns: int,
                  max_outstanding: int, late_ns: int, metadata: tuple[tuple[str, str], ...] | None,
                  timeout_s: float | None) -> _cgrpc.OpenLoop:
        """An open loop: call k due at start_ns + offsets_ns[k % n] + (k // n) * period_ns
        (loadgen.native_loop)."""
        assert _cgrpc is not None, NATIVE_MISSING
        return _cgrpc.OpenLoop(self._channel, payloads, offsets_ns, period_ns, start_ns, max_outstanding,
                               late_ns, timeout_s or 0.0, metadata)


def code_name(code: int) -> str:
    """gRPC's name for a numeric status code ("UNAVAILABLE", ...)."""
    return _CODE_NAMES.get(code, "UNKNOWN")


def noted(errors: ErrorLog, code: int, details: str | None) -> str:
    """A failed native call's status, noted in `errors` (its details, else its name); its name."""
    name = code_name(code)
    return errors.note(name, details or name)


class NativeBlockingGrpc:
    """One thread's blocking ModelInfer through the extension (the `BlockingInfer` contract)."""

    def __init__(self, caller: _cgrpc.Caller, timeout_s: float | None, errors: ErrorLog) -> None:
        self._call = caller.infer
        self._timeout = timeout_s or 0.0
        self._errors = errors

    def infer(self, payload: Payload) -> str | None:
        failed = self._call(payload[0], self._timeout)
        return None if failed is None else noted(self._errors, *failed)

    def close(self) -> None:
        """Drop this thread's caller; the channel goes with the last one."""
        del self._call
