"""Waking the open-loop driver on time: ``await waker.until(t_ns)`` returns at ``t_ns``
(``time.perf_counter_ns``'s clock, CLOCK_MONOTONIC on Linux) to within tens of microseconds.

The event loops round a timer to whole milliseconds (CPython asyncio: ``selectors.EpollSelector.select``
rounds its timeout up to 1 ms; uvloop: libuv's millisecond ``uv_timer_start``), so a send scheduled
0.3 ms ahead left up to a millisecond late. On Linux a ``timerfd`` armed at the absolute send time and
watched by the loop (``add_reader``) wakes it at that nanosecond instead, with no thread and no spin.
Elsewhere (or when ``timerfd_create`` fails) the waker falls back to ``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
import time
from typing import Protocol

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK, _TFD_CLOEXEC, _TFD_TIMER_ABSTIME = 0o4000, 0o2000000, 1


class Waker(Protocol):
    """Sleeps the calling task until an absolute ``perf_counter_ns`` time."""

    async def until(self, t_ns: int) -> None: ...

    def close(self) -> None: ...


class SleepWaker:
    """``asyncio.sleep`` to the target, millisecond-rounded by the loop (uvloop may wake early: again)."""

    async def until(self, t_ns: int) -> None:
        while (delay := t_ns - time.perf_counter_ns()) > 0:
            await asyncio.sleep(delay / 1e9)

    def close(self) -> None:
        pass


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class TimerfdWaker:
    """A Linux timerfd armed at the absolute target, read by the running loop when it fires."""

    def __init__(self, loop: asyncio.AbstractEventLoop, libc: ctypes.CDLL, fd: int) -> None:
        self._loop, self._libc, self._fd = loop, libc, fd
        self._future: asyncio.Future[None] | None = None
        self._spec = _Itimerspec()
        loop.add_reader(fd, self._fired)

    def _fired(self) -> None:
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            return
        fut = self._future
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def until(self, t_ns: int) -> None:
        spec = self._spec
        spec.it_value.tv_sec, spec.it_value.tv_nsec = divmod(t_ns, 1_000_000_000)
        while t_ns > time.perf_counter_ns():  # again if a stale expiry (of a cancelled wait) woke us
            if self._libc.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
                await SleepWaker().until(t_ns)
                return
            self._future = self._loop.create_future()
            try:
                await self._future
            finally:
                self._future = None

    def close(self) -> None:
        self._loop.remove_reader(self._fd)
        os.close(self._fd)


def make_waker() -> Waker:
    """A timerfd waker on Linux with a working libc, else the ``asyncio.sleep`` one."""
    if not sys.platform.startswith("linux"):
        return SleepWaker()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = int(libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC))
    except (OSError, AttributeError):
        return SleepWaker()
    if fd < 0:
        return SleepWaker()
    try:
        return TimerfdWaker(asyncio.get_running_loop(), libc, fd)
    except (NotImplementedError, RuntimeError):
        os.close(fd)
        return SleepWaker()
