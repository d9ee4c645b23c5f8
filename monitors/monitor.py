"""Monitor: the library API. Opens sources and the CSV, samples in a background thread, tags phases.

    with Monitor(MonitorConfig(out="m.csv", interval_s=0.1)) as m:
        m.phase("b=64 c=8")
        run_level()

Phases can also come from a file (``phase_file``) that a shell script rewrites: the monitor checks
it on every tick (one ``stat``) and uses its first line as the phase.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

from monitors.config import MonitorConfig
from monitors.sampler import ScheduleStats, run_schedule
from monitors.schema import Reading, combine
from monitors.select import open_sources
from monitors.source import Source
from monitors.writers import RowWriter, make_writer


class PhaseFile:
    """A file whose first line is the current phase; re-read when its mtime or size changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._key: tuple[int, int] | None = None
        self.value = ""

    def poll(self) -> str | None:
        """The new phase if the file changed since the last poll, else None."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        key = (st.st_mtime_ns, st.st_size)
        if key == self._key:
            return None
        self._key = key
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                self.value = f.readline().strip()
        except OSError:
            return None
        return self.value

    def force(self) -> None:
        """Re-read on the next poll even if mtime/size look unchanged (e.g. on SIGUSR1)."""
        self._key = None


class Monitor:
    """Samples ``cfg``'s sources into ``cfg.out`` until :meth:`stop` (or ``cfg.duration_s``)."""

    def __init__(self, cfg: MonitorConfig, log: TextIO | None = None) -> None:
        self.cfg = cfg
        self._log = log if log is not None else sys.stderr
        self._phase = ""
        self._phase_file = PhaseFile(cfg.phase_file) if cfg.phase_file else None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._first_row = threading.Event()
        self._sources: list[Source] = []
        self._writer: RowWriter | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.stats = ScheduleStats()
        self.notes: list[str] = []

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, wait_first_row_s: float = 10.0) -> None:
        """Open output and sources (UsageError on bad input), start sampling, wait for the first row."""
        # sources first: one that cannot open must not leave a header-only CSV behind
        self._sources, self.notes = open_sources(self.cfg)
        try:
            self._writer = make_writer(self.cfg.out, self.cfg.format)
        except BaseException:
            for src in self._sources:
                src.close()
            self._sources = []
            raise
        for note in self.notes:
            print(f"saturate monitor: {note}", file=self._log)
        self._thread = threading.Thread(target=self._run, name="monitor-sampler", daemon=True)
        self._thread.start()
        self._first_row.wait(wait_first_row_s)

    def _run(self) -> None:
        try:
            run_schedule(self._tick, self.cfg.interval_ns, self._stop, self.cfg.duration_ns, self.stats)
        except BaseException as exc:  # surfaced by stop()
            self._error = exc
        finally:
            self._done.set()
            self._first_row.set()

    def _tick(self, k: int) -> int:
        readings: list[Reading] = []
        for src in self._sources:
            readings.extend(src.sample())
        if self._phase_file is not None:
            new = self._phase_file.poll()
            if new is not None:
                self._phase = new
        assert self._writer is not None
        n = self._writer.write(time.time_ns(), combine(readings), self._phase)
        self._first_row.set()
        return n

    def phase(self, label: str) -> None:
        """Rows from the next tick on carry this phase label."""
        self._phase = label.replace("\n", " ").strip()

    def request_stop(self) -> None:
        """Ask the sampler to stop after the tick in progress (safe from a signal handler)."""
        self._stop.set()

    def reread_phase_file(self) -> None:
        if self._phase_file is not None:
            self._phase_file.force()

    @property
    def current_phase(self) -> str:
        return self._phase

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the duration is over (True) or the timeout passes (False)."""
        return self._done.wait(timeout_s)

    def stop(self) -> ScheduleStats:
        """Finish the tick in progress (whole rows only), stop sources, close the file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for src in self._sources:
            src.close()
        self._sources = []
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._error is not None:
            err, self._error = self._error, None
            raise err
        return self.stats

    def __enter__(self) -> Monitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
