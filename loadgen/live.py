"""Live progress of `saturate load`: a rich bar over `-r` windows on a terminal, the plain progress
line per window otherwise (as before), nothing with `--quiet`.

Per window: the level, window k of at most `-r`, throughput of the window and of the level so far,
the stabilising latency, and whether the level is stable yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loadgen.runner import WindowProgress

if TYPE_CHECKING:  # rich is imported only when something is shown: a quiet run skips its ~30 ms
    from rich.console import Console
    from rich.progress import Progress, TaskID


class LiveView:
    """Callable as `LoadSession(on_window=...)`; a context manager around the sweep."""

    def __init__(self, quiet: bool = False, console: Console | None = None) -> None:
        self._console = console
        self.quiet = quiet
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._value: float | None = None
        self._completed = 0
        self._seconds = 0.0

    @property
    def console(self) -> Console:
        """The console given, else one on stderr, made on first use."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False, soft_wrap=True)
        return self._console

    def __enter__(self) -> LiveView:
        if not self.quiet and self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]load"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                TimeElapsedColumn(), console=self.console, transient=True)
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _account(self, p: WindowProgress) -> None:
        s = p.summary
        if p.value != self._value or p.index == 1:
            self._value, self._completed, self._seconds = p.value, 0, 0.0
        self._completed += s.completed
        self._seconds += (s.end_ns - s.start_ns) / 1e9

    def text(self, p: WindowProgress) -> str:
        """One line: window k/r, throughput of the window and the level so far, latency, stable?"""
        s = p.summary
        so_far = self._completed / self._seconds if self._seconds > 0 else 0.0
        lat = s.latency
        p50 = "-" if lat is None else f"{lat.p(50) / 1e3:.0f}"
        p95 = "-" if lat is None or 95 not in lat.percentiles_ns else f"{lat.p(95) / 1e3:.0f}"
        return (f"window {p.index}/{p.max_trials}: {s.infer_per_s:.1f} infer/s "
                f"(level so far {so_far:.1f} req/s), p50 {p50} us, p95 {p95} us, "
                f"stable {'yes' if p.stable else 'not yet'}")

    def __call__(self, p: WindowProgress) -> None:
        self._account(p)
        text = self.text(p)
        if self.quiet:
            return
        if self._progress is None:
            self.console.print(p.line, markup=False)
            return
        if self._task is None or p.index == 1:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task("", total=p.max_trials)
        self._progress.update(self._task, completed=p.index, description=text)
