"""rocm-smi source: ``rocm-smi --showuse --showmemuse --showpower --showtemp --showmeminfo vram --json``.

rocm-smi has no loop mode, so a background :class:`~monitors.poller.Poller` runs it repeatedly.
Its JSON maps ``cardN`` to string values whose keys changed across ROCm releases; both spellings are
read. With no AMD GPU it prints nothing on stdout and exits 0 (local_cluster.md §3): "no devices".
"""

from __future__ import annotations

import json

from monitors.poller import PolledCliSource
from monitors.schema import Reading
from monitors.source import parse_number

ARGS: tuple[str, ...] = ("--showuse", "--showmemuse", "--showpower", "--showtemp", "--showmeminfo", "vram",
                         "--showclocks", "--json")

#: column -> candidate keys, first present wins (older and newer rocm-smi spellings).
KEYS: dict[str, tuple[str, ...]] = {
    "gpu_util_pct": ("GPU use (%)",),
    "gpu_mem_util_pct": ("GPU memory use (%)", "GPU Memory Read/Write Activity (%)"),
    "power_w": ("Average Graphics Package Power (W)", "Current Socket Graphics Package Power (W)"),
    "temp_c": ("Temperature (Sensor edge) (C)", "Temperature (Sensor junction) (C)"),
    "sm_clock_mhz": ("sclk clock speed:",),
}


def parse_json(text: str, gpus: tuple[int, ...] | None = None) -> list[Reading]:
    """rocm-smi JSON -> one Reading per ``cardN`` (device ``gpuN``); empty text -> no devices."""
    if not text.strip():
        return []
    data = json.loads(text)
    out = []
    for key, card in sorted(data.items(), key=lambda kv: kv[0]):
        if not key.startswith("card") or not isinstance(card, dict) or not key[4:].isdigit():
            continue
        index = int(key[4:])
        if gpus is not None and index not in gpus:
            continue
        values: dict[str, float] = {}
        for column, names in KEYS.items():
            for name in names:
                v = parse_number(card.get(name))
                if v is not None:
                    values[column] = v
                    break
        total = parse_number(card.get("VRAM Total Memory (B)"))
        used = parse_number(card.get("VRAM Total Used Memory (B)"))
        if total is not None:
            values["gpu_mem_total_mib"] = total / 2**20
        if used is not None:
            values["gpu_mem_used_mib"] = used / 2**20
        out.append(Reading(f"gpu{index}", values))
    return sorted(out, key=lambda r: int(r.device[3:]))


class RocmSmiSource(PolledCliSource):
    """AMD GPUs through the rocm-smi CLI, polled in the background."""

    name = "rocm-smi"
    tool_hint = "install ROCm's rocm-smi"

    def command(self, path: str) -> list[str]:
        return [path, *ARGS]

    def parse(self, text: str, gpus: tuple[int, ...] | None) -> list[Reading]:
        return parse_json(text, gpus)
