"""Host source: CPU % and RAM % (psutil), plus the CPU and RSS of given PIDs and their children."""

from __future__ import annotations

import psutil

from monitors.schema import HOST_DEVICE, PROC_PREFIX, Reading
from saturate.errors import ConfigError


class HostSource:
    """Whole-host CPU/RAM on device ``host``; each watched PID tree on device ``pid:N``.

    A PID row's ``cpu_util_pct`` is the tree's CPU in percent of one core (top's convention, can
    exceed 100) and its ``ram_util_pct`` is the tree's RSS in percent of total RAM.
    """

    name = "host"

    def __init__(self, pids: tuple[int, ...] = ()) -> None:
        self._pids = pids
        self._procs: dict[int, psutil.Process] = {}
        self._total = 0

    def open(self) -> None:
        psutil.cpu_percent(interval=None)  # prime: later calls report the time since the last one
        self._total = psutil.virtual_memory().total
        for pid in self._pids:
            if not psutil.pid_exists(pid):
                raise ConfigError(f"--pid {pid}: no such process; pass the PID of a running process")
            self._tree(pid)

    def _tree(self, root: int) -> list[psutil.Process]:
        """The root and its children, reusing Process objects so cpu_percent has a baseline."""
        try:
            top = self._procs.setdefault(root, psutil.Process(root))
            members = [top, *top.children(recursive=True)]
        except psutil.Error:
            return []
        tree = []
        for p in members:
            known = self._procs.get(p.pid)
            if known is None:
                self._procs[p.pid] = p
                try:
                    p.cpu_percent(interval=None)
                except psutil.Error:
                    continue
                known = p
            tree.append(known)
        return tree

    def sample(self) -> list[Reading]:
        vm = psutil.virtual_memory()
        out = [Reading(HOST_DEVICE, {"cpu_util_pct": psutil.cpu_percent(interval=None),
                                     "ram_util_pct": vm.percent})]
        for pid in self._pids:
            cpu = 0.0
            rss = 0
            alive = False
            for p in self._tree(pid):
                try:
                    with p.oneshot():
                        cpu += p.cpu_percent(interval=None)
                        rss += p.memory_info().rss
                    alive = True
                except psutil.Error:
                    continue
            if alive:
                out.append(Reading(f"{PROC_PREFIX}{pid}", {"cpu_util_pct": cpu,
                                                          "ram_util_pct": 100.0 * rss / self._total}))
        return out

    def close(self) -> None:
        self._procs.clear()
