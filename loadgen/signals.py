"""SIGINT/SIGTERM during `saturate load`: the level in progress ends flagged and is written.

While the sweep runs, both signals are routed to :meth:`loadgen.runner.LoadSession.request_stop`
(through the event loop), so the level being measured is cut at once, kept in the run JSON with
``stability="interrupted"`` and the signal named in its reasons; the command then exits 128 + signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Protocol


class Stoppable(Protocol):
    def request_stop(self, reason: str) -> None: ...


@contextlib.contextmanager
def stop_on_signals(session: Stoppable) -> Iterator[Callable[[], int]]:
    """Inside: SIGINT/SIGTERM call ``session.request_stop``; yields "which signal came (0 = none)"."""
    loop = asyncio.get_running_loop()
    got: list[int] = []

    def handler(signum: int) -> None:
        if not got:
            got.append(signum)
            session.request_stop(f"stopped by {signal.Signals(signum).name}")

    sigs = (signal.SIGINT, signal.SIGTERM)
    for sig in sigs:
        loop.add_signal_handler(sig, handler, sig)
    try:
        yield lambda: got[0] if got else 0
    finally:
        for sig in sigs:
            loop.remove_signal_handler(sig)
