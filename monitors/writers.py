"""CSV writers, one row per line, flushed as written: tidy (monitors/schema.py) and seed (five columns)."""

from __future__ import annotations

import datetime as dt
import os
import socket
import sys
from typing import Protocol, TextIO

from monitors.schema import COLUMNS, METRICS, SEED_COLUMNS, Reading, fmt
from saturate.errors import ConfigError


def _csv_cell(text: str) -> str:
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""').replace("\n", " ").replace("\r", " ") + '"'
    return text


def open_out(path: str) -> TextIO:
    """Open the output for writing, or a one-line ConfigError naming the fix ('-' is stdout)."""
    if path == "-":
        return sys.stdout
    try:
        return open(path, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise ConfigError(f"cannot write --out {path}: {exc.strerror or exc}; choose a writable file path") \
            from None


class RowWriter(Protocol):
    """Writes one tick's rows; every call ends on a whole, flushed line."""

    def write(self, unix_ns: int, rows: list[Reading], phase: str) -> int: ...

    def close(self) -> None: ...


class TidyWriter:
    """``timestamp,unix_ns,host,device,<metrics>,phase``; timestamp is local ISO-8601 with ms."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._host = socket.gethostname()
        self._write(",".join(COLUMNS) + "\n")

    def _write(self, text: str) -> None:
        # One write + flush per tick: a signal between ticks never leaves half a row behind.
        self._out.write(text)
        self._out.flush()

    def write(self, unix_ns: int, rows: list[Reading], phase: str) -> int:
        stamp = dt.datetime.fromtimestamp(unix_ns / 1e9).astimezone().isoformat(timespec="milliseconds")
        head = f"{stamp},{unix_ns},{_csv_cell(self._host)},"
        tail = "," + _csv_cell(phase) + "\n"
        lines = [head + _csv_cell(r.device) + "," + ",".join(fmt(r.values.get(m)) for m in METRICS) + tail
                 for r in rows]
        self._write("".join(lines))
        return len(lines)

    def close(self) -> None:
        if self._out is not sys.stdout:
            self._out.close()


class SeedWriter:
    """``Timestamp, GPU Util (%), GPU Mem (%), CPU Util (%), RAM Util (%)`` as the studies wrote it:
    one line per tick for the first GPU (or blanks with no GPU), timestamp to 0.1 s."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._out.write(", ".join(SEED_COLUMNS) + "\n")
        self._out.flush()

    def write(self, unix_ns: int, rows: list[Reading], phase: str) -> int:
        if not rows:
            return 0
        first = rows[0]
        t = dt.datetime.fromtimestamp(unix_ns / 1e9)
        stamp = t.strftime("%Y-%m-%d %H:%M:%S.") + str(t.microsecond // 100_000)
        v = first.values
        cells = [stamp, fmt(v.get("gpu_util_pct")), fmt(v.get("gpu_mem_util_pct")),
                 fmt(v.get("cpu_util_pct")), fmt(v.get("ram_util_pct"))]
        self._out.write(", ".join(cells) + "\n")
        self._out.flush()
        return 1

    def close(self) -> None:
        if self._out is not sys.stdout:
            self._out.close()


def make_writer(path: str, fmt_name: str) -> RowWriter:
    out = open_out(path)
    try:
        return TidyWriter(out) if fmt_name == "tidy" else SeedWriter(out)
    except OSError as exc:
        out.close()
        raise ConfigError(f"cannot write --out {path}: {exc}; choose a writable file path") from None


def check_writable_dir(path: str) -> None:
    """Fail early for a PID file whose directory does not exist."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ConfigError(f"cannot write {path}: directory {parent} does not exist")
