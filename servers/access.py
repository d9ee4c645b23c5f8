"""Which Triton endpoints `saturate serve` guards with its access token, by bind address.

On a loopback address only this machine can connect, so statistics are left open (`saturate load`
and perf_analyzer read them without a token); the model-control endpoints (model-repository,
shared-memory, trace, logging) stay guarded. On any other address PyTriton's default list is kept
(statistics need the token), and so does `--guard-statistics` on loopback: on a shared node every
local user reaches loopback. Endpoint names: PyTriton 0.7 `pytriton/triton.py`
(`VALID_TRITON_ENDPOINTS`, `DEFAULT_PROTECTED_ENDPOINTS`), passed to tritonserver as
`--grpc-restricted-protocol` / `--http-restricted-api`.
"""

from __future__ import annotations

import ipaddress

#: PyTriton's DEFAULT_PROTECTED_ENDPOINTS (pytriton/triton.py), restated so the choice is explicit.
GUARDED = ("shared-memory", "model-repository", "statistics", "trace", "logging")
OPEN_ON_LOOPBACK = frozenset({"statistics"})


def is_loopback(bind: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`; False for 0.0.0.0, :: and real addresses."""
    if bind.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind.strip("[]")).is_loopback
    except ValueError:
        return False


def restricted_endpoints(bind: str, guard_statistics: bool = False) -> list[str]:
    """The endpoints the token guards when serving on `bind` (all of them with `guard_statistics`)."""
    if is_loopback(bind) and not guard_statistics:
        return [e for e in GUARDED if e not in OPEN_ON_LOOPBACK]
    return list(GUARDED)


def access_note(bind: str, guard_statistics: bool = False) -> str:
    """One stderr line saying what the token guards (printed beside the token)."""
    if is_loopback(bind) and not guard_statistics:
        return ("saturate serve: statistics are open on loopback (no token needed); "
                "the token guards model-repository, shared-memory, trace and logging")
    return "saturate serve: the token guards statistics, model-repository, shared-memory, trace and logging"
