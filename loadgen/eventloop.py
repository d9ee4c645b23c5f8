"""Which asyncio event loop the load generator runs on: uvloop (the default, when installed) or the
standard library's. uvloop (project MagicStack/uvloop) cuts the loop's own cost per request; the
choice is a `saturate load --event-loop` flag, so it is recorded in the run JSON's config.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")
EventLoop = Literal["uvloop", "asyncio"]
EVENT_LOOPS: tuple[EventLoop, ...] = ("uvloop", "asyncio")


def available(name: str) -> bool:
    """True when the loop `name` can be used here."""
    if name == "asyncio":
        return True
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return name == "uvloop"


def run(coro: Coroutine[Any, Any, T], name: str = "uvloop") -> T:
    """`asyncio.run(coro)` on the event loop `name` (see module doc)."""
    if name == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)
