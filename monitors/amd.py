"""AMD sources: the amdsmi Python library, and the ``amd-smi metric --json`` CLI.

Both fill the saturation column ``sm_active_pct`` with the mean per-XCD graphics busy
(``gfx_busy_inst``, MI300 and newer) where the GPU reports it; it stays empty elsewhere.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

from monitors.poller import PolledCliSource
from monitors.schema import Reading
from monitors.source import parse_number
from saturate.errors import ToolMissingError

_NA_U32 = 0xFFFFFFFF
_NA_U16 = 0xFFFF


def _value(node: Any) -> float | None:
    """amd-smi's ``{"value": 42, "unit": "%"}``, a bare number, or "N/A"."""
    if isinstance(node, dict):
        node = node.get("value")
    v = parse_number(node)
    if v is None or v in (_NA_U16, _NA_U32):
        return None
    return v


def busy_mean(node: Any) -> float | None:
    """Mean of every numeric per-XCD busy value in nested lists/dicts/ctypes structs ("N/A" skipped)."""
    found: list[float] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict) and "value" in x:
            v = _value(x)
            if v is not None:
                found.append(v)
        elif isinstance(x, dict):
            for y in x.values():
                walk(y)
        elif isinstance(x, (list, tuple)):
            for y in x:
                walk(y)
        elif hasattr(x, "gfx_busy_inst"):
            walk(list(x.gfx_busy_inst))
        else:
            v = _value(x)
            if v is not None:
                found.append(v)

    walk(node)
    return sum(found) / len(found) if found else None


def parse_metric_json(text: str, gpus: tuple[int, ...] | None = None) -> list[Reading]:
    """``amd-smi metric --json``: a list of GPU objects (ROCm 6) or ``{"gpu_data": [...]}`` (ROCm 7)."""
    if not text.strip():
        return []
    data = json.loads(text)
    items = data.get("gpu_data", []) if isinstance(data, dict) else data
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("gpu"), int):
            continue
        index = int(item["gpu"])
        if gpus is not None and index not in gpus:
            continue
        usage = item.get("usage") or {}
        power = item.get("power") or {}
        temp = item.get("temperature") or {}
        mem = item.get("mem_usage") or {}
        clock = (item.get("clock") or {}).get("gfx_0") or {}
        candidates: dict[str, Any] = {
            "gpu_util_pct": usage.get("gfx_activity"),
            "gpu_mem_util_pct": usage.get("umc_activity"),
            "power_w": power.get("socket_power"),
            "temp_c": temp.get("hotspot", temp.get("edge")),
            "gpu_mem_used_mib": mem.get("used_vram"),
            "gpu_mem_total_mib": mem.get("total_vram"),
            "sm_clock_mhz": clock.get("clk") if isinstance(clock, dict) else None,
        }
        values = {k: v for k, node in candidates.items() if (v := _value(node)) is not None}
        busy = busy_mean(usage.get("gfx_busy_inst")) if "gfx_busy_inst" in usage else None
        if busy is not None:
            values["sm_active_pct"] = busy
        out.append(Reading(f"gpu{index}", values))
    return sorted(out, key=lambda r: int(r.device[3:]))


class AmdSmiCliSource(PolledCliSource):
    """AMD GPUs through ``amd-smi metric --json``, polled in the background (no loop mode used)."""

    name = "amd-smi"
    tool_hint = "install ROCm's amd-smi"

    def command(self, path: str) -> list[str]:
        return [path, "metric", "--json"]

    def parse(self, text: str, gpus: tuple[int, ...] | None) -> list[Reading]:
        return parse_metric_json(text, gpus)


def import_amdsmi() -> Any:
    """Import amdsmi quietly. Without ROCm's library it prints to stdout and raises KeyError at import."""
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink):
            import amdsmi  # type: ignore[import-not-found,unused-ignore]
    except Exception as exc:
        said = " ".join(sink.getvalue().split()) or f"{type(exc).__name__}: {exc}"
        raise ToolMissingError(f"amdsmi is not usable here ({said[:160]}); needs ROCm's libamd_smi") from None
    return amdsmi


def amdsmi_values(activity: dict[str, Any], power: dict[str, Any], vram: dict[str, Any],
                  temp_c: Any, clock: dict[str, Any], metrics: dict[str, Any]) -> dict[str, float]:
    """The dicts amdsmi's getters return -> our columns (pure, so it is testable without a GPU)."""
    cand: dict[str, Any] = {
        "gpu_util_pct": activity.get("gfx_activity"),
        "gpu_mem_util_pct": activity.get("umc_activity"),
        "power_w": power.get("average_socket_power", power.get("current_socket_power")),
        "gpu_mem_used_mib": vram.get("vram_used"),
        "gpu_mem_total_mib": vram.get("vram_total"),
        "temp_c": temp_c,
        "sm_clock_mhz": clock.get("clk"),
    }
    if cand["power_w"] in (None, "N/A"):
        cand["power_w"] = power.get("current_socket_power")
    values = {k: v for k, node in cand.items() if (v := _value(node)) is not None}
    for key in ("xcp_stats.gfx_busy_inst", "gfx_busy_inst"):
        if key in metrics:
            busy = busy_mean(metrics[key])
            if busy is not None:
                values["sm_active_pct"] = busy
                break
    return values


class AmdSmiSource:
    """AMD GPUs through the amdsmi Python API (optional import; needs ROCm's libamd_smi)."""

    name = "amdsmi"

    def __init__(self, gpus: tuple[int, ...] | None = None) -> None:
        self._gpus = gpus
        self._lib: Any = None
        self._handles: list[tuple[int, Any]] = []

    def open(self) -> None:
        lib = import_amdsmi()
        try:
            lib.amdsmi_init()
            handles = list(lib.amdsmi_get_processor_handles())
        except Exception as exc:
            raise ToolMissingError(f"amdsmi could not initialise ({exc}); needs the amdgpu driver") from None
        self._lib = lib
        self._handles = [(i, h) for i, h in enumerate(handles) if self._gpus is None or i in self._gpus]
        if not self._handles:
            self.close()
            raise ToolMissingError("amdsmi found no AMD GPU")

    def _get(self, fn: str, *args: Any) -> Any:
        try:
            return getattr(self._lib, fn)(*args)
        except Exception:
            return None

    def sample(self) -> list[Reading]:
        lib = self._lib
        out = []
        for i, h in self._handles:
            temp = self._get("amdsmi_get_temp_metric", h, lib.AmdSmiTemperatureType.HOTSPOT,
                             lib.AmdSmiTemperatureMetric.CURRENT)
            values = amdsmi_values(
                self._get("amdsmi_get_gpu_activity", h) or {},
                self._get("amdsmi_get_power_info", h) or {},
                self._get("amdsmi_get_gpu_vram_usage", h) or {},
                temp,
                self._get("amdsmi_get_clock_info", h, lib.AmdSmiClkType.GFX) or {},
                self._get("amdsmi_get_gpu_metrics_info", h) or {},
            )
            out.append(Reading(f"gpu{i}", values))
        return out

    def close(self) -> None:
        if self._lib is not None:
            self._get("amdsmi_shut_down")
            self._lib = None
        self._handles = []
