"""Reading perf_analyzer's console (stdout) and its failure messages (stderr).

The console gives what the CSV lacks: request count, average latency with its standard deviation,
and the server's inference/execution counts per level. stderr carries the failure modes:
``Failed to obtain stable measurement within N measurement windows for concurrency C ...`` (a level
that never stabilised), ``error: failed to get model metadata: ...`` (bad model) and
``Thread [0] had error: ...`` (e.g. a wrong input shape); each becomes a flagged level that keeps
perf_analyzer's own words (the recorded runs in tests/fixtures/perf_analyzer/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LEVEL = re.compile(r"^Request concurrency: (\d+)\s*$|^Request Rate: ([0-9.eE+-]+) inference requests")
_INT_FIELDS = {
    "Request count": "requests",
    "Inference count": "inferences",
    "Execution count": "executions",
    "Successful request count": "successes",
}
_AVG = re.compile(r"Avg latency: (\d+) usec \(standard deviation (\d+) usec\)")
_UNSTABLE = re.compile(
    r"Failed to obtain stable measurement within \d+ measurement windows for "
    r"(?:concurrency (\d+)|request rate ([0-9.eE+-]+))"
)


@dataclass
class ConsoleLevel:
    """What the console printed for one level (None where it printed nothing)."""

    value: float
    requests: int | None = None
    inferences: int | None = None
    executions: int | None = None
    successes: int | None = None
    avg_us: int | None = None
    std_us: int | None = None
    lines: list[str] = field(default_factory=list)


def parse_console(stdout: str) -> list[ConsoleLevel]:
    """Every level the console started, in order, with the numbers it printed for it."""
    levels: list[ConsoleLevel] = []
    for raw in stdout.splitlines():
        line = raw.strip()
        m = _LEVEL.match(line)
        if m:
            levels.append(ConsoleLevel(value=float(m.group(1) or m.group(2))))
            continue
        if not levels or line.startswith("Inferences/Second vs."):
            if line.startswith("Inferences/Second vs."):
                break
            continue
        cur = levels[-1]
        cur.lines.append(line)
        key, _, rest = line.partition(":")
        if key in _INT_FIELDS and rest.strip().isdigit():
            setattr(cur, _INT_FIELDS[key], int(rest.strip()))
            continue
        a = _AVG.match(line)
        if a:
            cur.avg_us, cur.std_us = int(a.group(1)), int(a.group(2))
    return levels


@dataclass(frozen=True)
class Failures:
    """perf_analyzer's failure messages: per level value, and for the run as a whole."""

    unstable: dict[float, str]
    run_error: str | None


def _significant(stderr: str) -> list[str]:
    return [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("WARNING")]


def parse_failures(stderr: str, returncode: int) -> Failures:
    """Split stderr into per-level stability failures and one run-level error message (if any).

    The run error is the most specific line: ``error: ...`` or ``Thread [k] had error: ...``, else all
    remaining lines; None when perf_analyzer exited 0 or said nothing but stability failures.
    """
    unstable: dict[float, str] = {}
    rest: list[str] = []
    for line in _significant(stderr):
        m = _UNSTABLE.match(line)
        if m:
            unstable[float(m.group(1) or m.group(2))] = line
        elif line != "Failed to obtain stable measurement.":
            rest.append(line)
    specific = [ln for ln in rest if ln.startswith("error:") or " had error: " in ln]
    if returncode == 0 and not specific:
        return Failures(unstable, None)
    if specific:
        msg: str | None = " / ".join(specific)
    elif rest:
        msg = " / ".join(rest)
    elif returncode != 0 and not unstable:
        msg = f"perf_analyzer exited with code {returncode} and printed no error"
    else:
        msg = None
    return Failures(unstable, msg)
