"""Every network wait of the load generator has a bound; this module owns those bounds.

- each request (hot path and the pre-flight test request): ``--request-timeout`` seconds, the same
  deadline for gRPC (the call's ``timeout``) and HTTP (aiohttp's ``ClientTimeout(total=...)``); a request
  past it counts as failed with status ``DEADLINE_EXCEEDED`` on both transports;
- control-plane calls (liveness, metadata, config, statistics) and Triton's ``/metrics`` scrape:
  :data:`CONTROL_TIMEOUT_S` each.

A control call that fails or times out raises :class:`~saturate.errors.ServerError`: one line before
anything is measured, a level flagged ``interrupted`` (what was measured kept) during a level.
"""

from __future__ import annotations

from saturate.errors import ServerError

#: Default `--request-timeout`, seconds (0 = no deadline).
DEFAULT_REQUEST_TIMEOUT_S = 30.0
#: Liveness, metadata, config, statistics, /metrics: seconds each.
CONTROL_TIMEOUT_S = 10.0
#: Status code a request past its deadline is counted under (gRPC's name, used for HTTP too).
DEADLINE = "DEADLINE_EXCEEDED"


def request_deadline(timeout_s: float) -> float | None:
    """The per-request deadline to pass to the transport (None = unbounded)."""
    return timeout_s if timeout_s > 0 else None


def no_answer(url: str, what: str, timeout_s: float | None, detail: str = "") -> ServerError:
    """A control call or the pre-flight request got no answer: hung or lost server."""
    within = f" within {timeout_s:g} s" if timeout_s else ""
    extra = f" ({detail})" if detail else ""
    return ServerError(
        f"the server at {url} did not answer {what}{within}{extra}; check that the server and its "
        "model are running (raise --request-timeout for a model this slow)")
