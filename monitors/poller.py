"""Run a one-shot tool repeatedly in a background thread and keep its latest parsed output.

For tools without a loop mode (rocm-smi, amd-smi): the monitor's tick reads the latest result and
never waits on the tool, however slow it is.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

from monitors import procgroup
from monitors.schema import Reading
from saturate.errors import ToolMissingError

#: Readings older than this (or 4 periods) are served empty: a stalled tool never repeats values.
STALE_AFTER_S = 5.0


def run_once(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """One run in its own process group, bounded in time and output (see monitors.procgroup)."""
    return procgroup.run_once(cmd, timeout_s)


class Poller:
    """Calls ``cmd`` every ``period_s`` (or back to back when slower) and parses stdout."""

    def __init__(self, tool: str, cmd: list[str], parse: Callable[[str], list[Reading]], period_s: float,
                 timeout_s: float = 10.0) -> None:
        self.tool = tool
        self.cmd = cmd
        self.parse = parse
        self.period_s = period_s
        self.timeout_s = timeout_s
        self._latest: list[Reading] = []
        self._at = 0.0  # monotonic time of the latest good run
        self.stale_after_s = max(STALE_AFTER_S, 4 * period_s)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0

    def first(self) -> list[Reading]:
        """Run once in the foreground; ToolMissingError when the tool reports no device."""
        try:
            done = run_once(self.cmd, self.timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ToolMissingError(f"{self.tool} could not run: {exc}") from None
        try:
            readings = self.parse(done.stdout) if done.returncode == 0 else []
        except (ValueError, TypeError, KeyError, AttributeError):
            readings = []
        if not readings:
            why = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["no output"])[-1]
            raise ToolMissingError(f"{self.tool} found no GPU (exit {done.returncode}): {why[:200]}")
        with self._lock:
            self._latest, self._at = readings, time.monotonic()
        return readings

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"{self.tool}-poller", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                done = run_once(self.cmd, self.timeout_s)
                readings = self.parse(done.stdout) if done.returncode == 0 else []
            except (OSError, subprocess.TimeoutExpired, ValueError, TypeError, KeyError, AttributeError):
                readings = []  # garbage or a hung run: counted, skipped
            if readings:
                with self._lock:
                    self._latest, self._at = readings, time.monotonic()
            else:
                self.failures += 1
            self._stop.wait(max(0.0, self.period_s - (time.monotonic() - t0)))

    def latest(self) -> list[Reading]:
        """The last good readings; past ``stale_after_s`` the same devices with no values."""
        with self._lock:
            latest, at = list(self._latest), self._at
        if time.monotonic() - at > self.stale_after_s:
            return [Reading(r.device, {}) for r in latest]
        return latest

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout_s + 1)
            self._thread = None


class PolledCliSource(ABC):
    """A GPU source whose tool has no loop mode: a :class:`Poller` re-runs it in the background.

    Subclasses set ``name``, ``tool_hint`` (how to install it) and implement ``command`` and ``parse``.
    """

    name = "cli"
    tool_hint = ""

    def __init__(
        self, interval_s: float, gpus: tuple[int, ...] | None = None, exe: str | None = None
    ) -> None:
        self._interval = interval_s
        self._gpus = gpus
        self._exe = exe or self.name
        self._poller: Poller | None = None

    @abstractmethod
    def command(self, path: str) -> list[str]:
        """The tool's command line (``path`` is the resolved executable)."""

    @abstractmethod
    def parse(self, text: str, gpus: tuple[int, ...] | None) -> list[Reading]:
        """Readings from one run's output, restricted to ``gpus`` when given."""

    def open(self) -> None:
        path = shutil.which(self._exe)
        if path is None:
            raise ToolMissingError(f"{self._exe} is not on PATH; {self.tool_hint}")
        poller = Poller(self.name, self.command(path), lambda s: self.parse(s, self._gpus), self._interval)
        poller.first()
        poller.start()
        self._poller = poller

    def sample(self) -> list[Reading]:
        return self._poller.latest() if self._poller is not None else []

    def close(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
