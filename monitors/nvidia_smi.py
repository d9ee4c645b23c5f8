"""nvidia-smi source: ONE long-lived ``nvidia-smi --query-gpu=... -lms N`` process, read line by line.

A reader thread keeps the latest line per GPU; ``sample()`` returns those, so the monitor's tick never
waits on the tool. Lines look like (``--format=csv,noheader,nounits``)::

    0, GPU-5d6c..., 100, 11, 19818, 81559, 631.95, 59, 1980

Missing values are printed as ``[N/A]``, ``N/A`` or ``[Not Supported]`` and become empty cells.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

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
    if index is None:
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
        self._latest: dict[str, Reading] = {}
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
        self._proc = subprocess.Popen(self.command(path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, text=True, bufsize=1)
        self._thread = threading.Thread(target=self._read, name="nvidia-smi-reader", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._timeout
        while not self._first.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self._thread.join(1.0)
                code = self._proc.poll()
                self.close()
                said = next((j for j in self._junk if j.strip()), "no output")
                raise ToolMissingError(f"{self._exe} did not report GPUs (exit {code}): {said.strip()}")

    def _read(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            raw = parse_line(line)
            reading = reading_from_fields(raw) if raw is not None else None
            if reading is None:
                if len(self._junk) < 20:
                    self._junk.append(line)
                continue
            with self._lock:
                self._latest[reading.device] = reading
            self._first.set()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def sample(self) -> list[Reading]:
        with self._lock:
            return [self._latest[k] for k in sorted(self._latest, key=lambda d: int(d[3:]))]

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc is not None and proc.stdout is not None:
            if self._thread is not None:
                self._thread.join(2.0)
            proc.stdout.close()
