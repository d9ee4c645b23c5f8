"""nvidia-smi source: ONE long-lived ``nvidia-smi --query-gpu=... -lms N`` process, read line by line.

A reader thread keeps the latest line per GPU; ``sample()`` returns those, so the monitor's tick never
waits on the tool. Lines look like (``--format=csv,noheader,nounits``)::

    0, GPU-5d6c..., 100, 11, 19818, 81559, 631.95, 59, 1980

Missing values are printed as ``[N/A]``, ``N/A`` or ``[Not Supported]`` and become empty cells.
Lines that are not data are counted (``garbage``) and skipped. A GPU whose last line is older than
:data:`STALE_AFTER_S` (or 4 intervals) is served with no values (empty cells), never its old values
again. The tool runs in its own process group and is killed as one (:mod:`monitors.procgroup`).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

from monitors import procgroup
from monitors.schema import Reading
from monitors.source import parse_number
from saturate.errors import ToolMissingError

#: The fields asked for, in order, and the column each one fills.
QUERY: tuple[tuple[str, str | None], ...] = (
    ("index", None),
    ("uuid", None),
    ("utilization.gpu", "gpu_util_pct"),
    ("utilization.memory", "gpu_mem_util_pct"),
    ("memory.used", "gpu_mem_used_mib"),
    ("memory.total", "gpu_mem_total_mib"),
    ("power.draw", "power_w"),
    ("temperature.gpu", "temp_c"),
    ("clocks.current.sm", "sm_clock_mhz"),
)
QUERY_FIELDS: tuple[str, ...] = tuple(f for f, _ in QUERY)
#: A GPU's values are stale (served empty) when its last line is older than this or 4 intervals.
STALE_AFTER_S = 2.0


def split_csv_line(line: str) -> list[str]:
    """nvidia-smi's CSV: ', '-separated, no quoting (names may hold spaces, never commas)."""
    return [c.strip() for c in line.rstrip("\r\n").split(",")]


def parse_line(line: str, fields: tuple[str, ...] = QUERY_FIELDS) -> dict[str, str] | None:
    """One output line -> {field: raw text}, or None when it is not a data line of that shape."""
    cells = split_csv_line(line)
    if len(cells) != len(fields):
        return None
    return dict(zip(fields, cells, strict=False))


def reading_from_fields(raw: dict[str, str]) -> Reading | None:
    """Our QUERY's fields -> a Reading on device ``gpu<index>`` (None if the index is not a number)."""
    index = parse_number(raw.get("index"))
    if index is None or not 0 <= index < 1024 or index != int(index):
        return None
    values: dict[str, float] = {}
    for field, column in QUERY:
        if column is None:
            continue
        v = parse_number(raw.get(field))
        if v is not None:
            values[column] = v
    return Reading(f"gpu{int(index)}", values)


class NvidiaSmiSource:
    """Keeps one ``nvidia-smi -lms`` process running and serves its latest line per GPU."""

    name = "nvidia-smi"

    def __init__(self, interval_s: float, gpus: tuple[int, ...] | None = None, exe: str = "nvidia-smi",
                 start_timeout_s: float = 10.0) -> None:
        self._ms = max(50, round(interval_s * 1000))
        self._gpus = gpus
        self._exe = exe
        self._timeout = start_timeout_s
        self._proc: subprocess.Popen[str] | None = None
        self._latest: dict[str, tuple[float, Reading]] = {}
        self._stale_s = max(STALE_AFTER_S, 4 * self._ms / 1000)
        self.garbage = 0  # lines that were not data lines
        self._lock = threading.Lock()
        self._first = threading.Event()
        self._junk: list[str] = []
        self._thread: threading.Thread | None = None

    def command(self, path: str) -> list[str]:
        cmd = [path, f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv,noheader,nounits",
               "-lms", str(self._ms)]
        if self._gpus is not None:
            cmd += ["-i", ",".join(map(str, self._gpus))]
        return cmd

    def open(self) -> None:
        path = shutil.which(self._exe)
        if path is None:
            raise ToolMissingError(f"{self._exe} is not on PATH; install the NVIDIA driver tools")
        self._proc = procgroup.spawn(self.command(path))
        self._thread = threading.Thread(target=self._read, name="nvidia-smi-reader", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._timeout
        while not self._first.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                code = self._proc.poll()
                self.close()
                said = next((j for j in self._junk if j.strip()), "no output").strip()[:200]
                if code is None:
                    raise ToolMissingError(
                        f"{self._exe} gave no usable line within {self._timeout:g} s ({self.garbage} "
                        f"lines not understood; first: {said!r}); check the driver, or leave nvidia-smi "
                        "out of --source")
                raise ToolMissingError(f"{self._exe} did not report GPUs (exit {code}): {said}")

    def _read(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        while True:
            try:
                line = proc.stdout.readline(procgroup.MAX_LINE)
            except (OSError, ValueError):  # closed under us
                return
            if not line:
                return
            try:
                raw = parse_line(line)
                reading = reading_from_fields(raw) if raw is not None else None
            except (ValueError, OverflowError):
                reading = None
            if reading is None:
                self.garbage += 1
                if len(self._junk) < 20:
                    self._junk.append(line)
                continue
            with self._lock:
                self._latest[reading.device] = (time.monotonic(), reading)
            self._first.set()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def sample(self) -> list[Reading]:
        now = time.monotonic()
        with self._lock:
            items = sorted(self._latest.items(), key=lambda kv: int(kv[0][3:]))
        return [r if now - t <= self._stale_s else Reading(d, {}) for d, (t, r) in items]

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        procgroup.kill_group(proc)  # the whole group: no grandchild keeps the pipe open
        if self._thread is not None:
            self._thread.join(2.0)
            if self._thread.is_alive():
                return  # still blocked: leave the (daemon) reader and its pipe to the exit
        if proc.stdout is not None:
            proc.stdout.close()
