"""SIGINT/SIGTERM during `saturate load`: the level in progress ends flagged and is written.

While the sweep runs, both signals are routed to :meth:`loadgen.runner.LoadSession.request_stop`
(through the event loop), so the level being measured is cut at once, kept in the run JSON with
``stability="interrupted"`` and the signal named in its reasons; the command then exits 128 + signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType
from typing import Any, Protocol


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


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """In a worker: SIGTERM when the parent dies, SIGKILL included (Linux ``prctl(PR_SET_PDEATHSIG)``);
    exits at once if the parent is already gone. Elsewhere a no-op."""
    import ctypes
    import os
    import sys

    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


async def cancel_on_signals(work: Awaitable[None], on_signal: Callable[[int], None],
                            restore: Callable[[int, FrameType | None], Any]) -> None:
    """Await ``work`` as a task that SIGINT/SIGTERM cancel: ``on_signal(signum)`` is told first, then the
    task's ``CancelledError`` reaches the caller. Afterwards both signals go to the plain ``restore``
    handler (for what runs outside the loop). The seam of ``scan server`` and ``tune``."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)

    def stop(signum: int) -> None:
        on_signal(signum)
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    try:
        await task
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
            signal.signal(sig, restore)
