"""Progress of a server scan: a rich live bar on a terminal, plain lines otherwise; all of it in the log.

Per window: level, window k of at most r, stable yet?, throughput of the window and the best level so
far. Per level: its result and verdict.
"""

from __future__ import annotations

import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from loadgen.result import LevelResult
from loadgen.runner import WindowProgress


class ScanProgress:
    """Shows and logs a scan's progress; use as a context manager around the grid loop."""

    def __init__(self, total: int, log: TextIO | None, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self.log = log
        self.total = total
        self.level = ""
        self.best = 0.0
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ScanProgress:
        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]scan server"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.description}"), TimeElapsedColumn(), console=self.console,
            )
            self._progress.start()
            self._task = self._progress.add_task("starting", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def log_line(self, text: str) -> None:
        if self.log is not None:
            self.log.write(f"{time.strftime('%H:%M:%S')} {text}\n")
            self.log.flush()

    def note(self, text: str) -> None:
        """A line for the user (above the bar on a terminal) and the log."""
        self.console.print(text, markup=False)
        self.log_line(text)

    def skip(self, done: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done)

    def start_level(self, name: str, index: int) -> None:
        self.level = name
        text = f"level {name} ({index}/{self.total})"
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=text)
        else:
            self.console.print(f"scan server: {text}", markup=False)
        self.log_line(text)

    def window(self, p: WindowProgress) -> None:
        s = p.summary
        text = (f"{self.level} window {p.index}/{p.max_trials} "
                f"stable={'yes' if p.stable else 'no'} {s.infer_per_s:.1f} infer/s "
                f"(best level so far {self.best:.1f})")
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=text)
        else:
            self.console.print(f"  {text}", markup=False)
        self.log_line(f"  {p.line}")

    def end_level(self, name: str, level: LevelResult, saturated: str, failed: str | None) -> None:
        if failed is None:
            self.best = max(self.best, level.throughput.infer_per_s)
        p95 = level.latency.percentiles_ns.get(95)
        what = (f"FAILED: {failed}" if failed else
                f"{level.throughput.infer_per_s:.1f} infer/s, p95 "
                f"{'-' if p95 is None else f'{p95 / 1e6:.2f} ms'}, {level.stability}, saturated: {saturated}")
        self.note(f"scan server: {name}: {what}")
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)
