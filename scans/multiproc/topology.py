"""Where each process of ``saturate scan multiproc`` runs: cores, pinning mode, visible devices.

A topology is a list of core lists, one per process (DeepSparse's multi-process benchmark format),
read from a JSON file (``[[0, 1], [2, 3]]``) or a string (``"0-1;2-3"``); ``--processes N`` without a
topology splits the usable cores into N even groups. Pinning:

- ``none``: the child runs where the scheduler puts it (cores are only recorded);
- ``core``: the child calls ``os.sched_setaffinity(0, cores)`` before anything else;
- ``numa``: the child is started as ``numactl --localalloc --physcpubind=CORES python ...`` (memory
  allocated on the local NUMA node, as DLBS's multi-process launcher does) and also sets its affinity.

Devices: ``"0,1;2,3"`` gives process 0 ``CUDA_VISIBLE_DEVICES=HIP_VISIBLE_DEVICES=0,1`` and process 1
``2,3``; a single group is given to every process.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from saturate.errors import ConfigError, ToolMissingError

PINNINGS: tuple[str, ...] = ("none", "core", "numa")
DEVICE_VARS: tuple[str, ...] = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")


@dataclass(frozen=True)
class Placement:
    """One process's cores (empty: anywhere) and visible devices (None: inherited)."""

    rank: int
    cores: tuple[int, ...]
    devices: str | None = None

    def env(self) -> dict[str, str]:
        """Environment variables the child gets (device visibility)."""
        return {} if self.devices is None else dict.fromkeys(DEVICE_VARS, self.devices)


def usable_cores() -> tuple[int, ...]:
    """The cores this process may run on (its affinity mask), sorted."""
    return tuple(sorted(os.sched_getaffinity(0)))


def format_cores(cores: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` → ``"0-2,5"`` (numactl's and taskset's list syntax)."""
    parts: list[str] = []
    ordered = sorted(set(cores))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def parse_core_list(text: str) -> tuple[int, ...]:
    """``"0-2,5"`` → (0, 1, 2, 5); a ConfigError names the bad part."""
    cores: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ConfigError(f"core list {text!r}: {part!r} is not a core or LO-HI range; e.g. '0-3,8'")
        first, last = int(lo), int(hi) if sep else int(lo)
        if last < first:
            raise ConfigError(f"core list {text!r}: range {part!r} runs backwards")
        cores.extend(range(first, last + 1))
    if len(set(cores)) != len(cores):
        raise ConfigError(f"core list {text!r} names a core twice")
    return tuple(cores)


def parse_topology_text(text: str) -> list[tuple[int, ...]]:
    """``"0-1;2-3"`` → [(0, 1), (2, 3)]."""
    groups = [g for g in text.split(";")]
    if not text.strip() or any(not g.strip() for g in groups):
        raise ConfigError(f"topology {text!r} has an empty core group; e.g. --topology '0-1;2-3'")
    return [parse_core_list(g) for g in groups]


def load_topology(source: str) -> list[tuple[int, ...]]:
    """A topology from a JSON file (list of core lists) or, if no such file exists, a ``0-1;2-3`` string."""
    path = Path(source)
    if not path.is_file():
        if source.endswith(".json") or "/" in source:
            raise ConfigError(f"topology file {source} does not exist; give a JSON list of core lists")
        return parse_topology_text(source)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"topology file {source} is not readable JSON ({exc}); "
                          "write a list of core lists, e.g. [[0, 1], [2, 3]]") from None
    if not isinstance(doc, list) or not doc:
        raise ConfigError(f"topology file {source} must hold a non-empty list of core lists, e.g. [[0], [1]]")
    out: list[tuple[int, ...]] = []
    for i, group in enumerate(doc):
        ok = isinstance(group, list) and group and all(isinstance(c, int) and not isinstance(c, bool)
                                                        and c >= 0 for c in group)
        if not ok:
            raise ConfigError(f"topology file {source}: entry {i} ({group!r}) is not a non-empty list "
                              "of core numbers")
        if len(set(group)) != len(group):
            raise ConfigError(f"topology file {source}: entry {i} names a core twice")
        out.append(tuple(group))
    return out


def split_cores(n: int, cores: Sequence[int]) -> list[tuple[int, ...]]:
    """``n`` contiguous, nearly even groups of ``cores`` (the default topology for ``--processes N``)."""
    if n < 1:
        raise ConfigError(f"--processes {n} must be at least 1")
    if n > len(cores):
        raise ConfigError(f"--processes {n} is more than the {len(cores)} usable cores "
                          f"({format_cores(cores)}); use --pinning none or fewer processes")
    base, extra = divmod(len(cores), n)
    groups, start = [], 0
    for i in range(n):
        size = base + (1 if i < extra else 0)
        groups.append(tuple(cores[start:start + size]))
        start += size
    return groups


def check_cores(groups: Sequence[Sequence[int]], available: Sequence[int]) -> None:
    """Every core named must be one this process may use; the error lists what exists."""
    have = set(available)
    for i, group in enumerate(groups):
        missing = [c for c in group if c not in have]
        if missing:
            raise ConfigError(
                f"topology: process {i} names core {missing[0]}, which does not exist or is not usable "
                f"here (usable cores: {format_cores(available)}); fix the topology"
            )


def parse_devices(text: str | None, n: int) -> list[str | None]:
    """``"0,1;2,3"`` → per-process device lists; one group is shared by all; None → inherited."""
    if text is None:
        return [None] * n
    groups = [g.strip() for g in text.split(";")]
    for g in groups:
        items = [x.strip() for x in g.split(",")]
        if not g or any(not x for x in items):
            raise ConfigError(f"--devices {text!r}: empty device in {g!r}; e.g. --devices '0,1;2,3'")
    if len(groups) == 1:
        return [groups[0]] * n
    if len(groups) != n:
        raise ConfigError(f"--devices {text!r} has {len(groups)} groups for {n} processes; "
                          "give one group per process or one for all")
    return list(groups)


def plan_placements(topology: str | None, processes: int | None, devices: str | None,
                    pinning: str, available: Sequence[int] | None = None) -> list[Placement]:
    """Resolve the CLI's topology/processes/devices into one Placement per process."""
    if pinning not in PINNINGS:
        raise ConfigError(f"unknown --pinning {pinning!r}; use one of: {', '.join(PINNINGS)}")
    cores = tuple(available) if available is not None else usable_cores()
    if topology is not None:
        groups = load_topology(topology)
        check_cores(groups, cores)
        if processes is not None and processes != len(groups):
            if processes > len(groups):
                raise ConfigError(f"--processes {processes} is more than the {len(groups)} core groups "
                                  "of the topology")
            groups = groups[:processes]
    elif processes is None:
        raise ConfigError("give --topology FILE.json (a list of core lists) or --processes N")
    elif pinning == "none":
        groups = [() for _ in range(processes)]
    else:
        groups = split_cores(processes, cores)
    if pinning != "none" and any(not g for g in groups):
        raise ConfigError("--pinning core|numa needs cores for every process; give --topology")
    devs = parse_devices(devices, len(groups))
    pairs = enumerate(zip(groups, devs, strict=True))
    return [Placement(rank=i, cores=tuple(g), devices=d) for i, (g, d) in pairs]


def numactl_prefix(cores: Sequence[int]) -> list[str]:
    """``numactl --localalloc --physcpubind=CORES`` (local memory, pinned CPUs); missing tool → one line."""
    exe = shutil.which("numactl")
    if exe is None:
        raise ToolMissingError("--pinning numa needs numactl on PATH (e.g. apt install numactl, or "
                               "module load numactl); or use --pinning core")
    return [exe, "--localalloc", f"--physcpubind={format_cores(cores)}"]
