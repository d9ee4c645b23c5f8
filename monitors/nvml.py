"""NVML source (nvidia-ml-py): utilization, memory, power, temperature, SM clock, and GPM on Hopper+.

GPM (GPU performance monitoring) gives real saturation measures where plain utilization only says
"some kernel ran": SM activity, SM occupancy and tensor-pipe activity, each as the average between
two GPM samples (the previous tick and this one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitors.schema import Reading
from saturate.errors import ToolMissingError

_GPM_COLUMNS = ("sm_active_pct", "sm_occupancy_pct", "tensor_active_pct")


def _try(fn: Callable[..., Any], *args: Any) -> Any:
    """Call an NVML getter; None where the device does not support it."""
    import pynvml  # type: ignore[import-untyped]

    try:
        return fn(*args)
    except pynvml.NVMLError:
        return None


class _Gpm:
    """Two GPM sample buffers per device, swapped each tick."""

    def __init__(self, nv: Any, handle: Any) -> None:
        self.nv = nv
        self.handle = handle
        self.prev = nv.nvmlGpmSampleAlloc()
        self.cur = nv.nvmlGpmSampleAlloc()
        nv.nvmlGpmSampleGet(handle, self.prev)
        self.ids = (nv.NVML_GPM_METRIC_SM_UTIL, nv.NVML_GPM_METRIC_SM_OCCUPANCY,
                    nv.NVML_GPM_METRIC_ANY_TENSOR_UTIL)

    def read(self) -> dict[str, float]:
        nv = self.nv
        nv.nvmlGpmSampleGet(self.handle, self.cur)
        req = nv.c_nvmlGpmMetricsGet_t()
        req.version = nv.NVML_GPM_METRICS_GET_VERSION
        req.numMetrics = len(self.ids)
        req.sample1 = self.prev
        req.sample2 = self.cur
        for i, metric_id in enumerate(self.ids):
            req.metrics[i].metricId = metric_id
        nv.nvmlGpmMetricsGet(req)
        self.prev, self.cur = self.cur, self.prev
        out: dict[str, float] = {}
        for i, col in enumerate(_GPM_COLUMNS):
            if req.metrics[i].nvmlReturn == nv.NVML_SUCCESS:
                out[col] = float(req.metrics[i].value)
        return out

    def free(self) -> None:
        for s in (self.prev, self.cur):
            _try(self.nv.nvmlGpmSampleFree, s)


class NvmlSource:
    """Samples every (or the selected) NVIDIA GPU through NVML; device names ``gpu0``, ``gpu1``…"""

    name = "nvml"

    def __init__(self, gpus: tuple[int, ...] | None = None, gpm: bool = True) -> None:
        self._want = gpus
        self._gpm_wanted = gpm
        self._nv: Any = None
        self._devices: list[tuple[int, Any]] = []
        self._gpm: dict[int, _Gpm] = {}

    def open(self) -> None:
        try:
            import pynvml
        except ImportError:
            raise ToolMissingError("NVML: nvidia-ml-py is not installed (pip install nvidia-ml-py)") from None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise ToolMissingError(f"NVML is not usable here ({exc}); needs an NVIDIA driver") from None
        self._nv = pynvml
        count = pynvml.nvmlDeviceGetCount()
        indices = range(count) if self._want is None else [i for i in self._want if i < count]
        if self._want is not None and len(indices) != len(self._want):
            self.close()
            raise ToolMissingError(f"NVML sees {count} GPU(s); --gpus {','.join(map(str, self._want))} "
                                   "names one that does not exist")
        self._devices = [(i, pynvml.nvmlDeviceGetHandleByIndex(i)) for i in indices]
        if not self._devices:
            self.close()
            raise ToolMissingError("NVML found no NVIDIA GPU")
        if self._gpm_wanted:
            for i, h in self._devices:
                support = _try(pynvml.nvmlGpmQueryDeviceSupport, h)
                if support is not None and support.isSupportedDevice:
                    gpm = _try(_Gpm, pynvml, h)
                    if gpm is not None:
                        self._gpm[i] = gpm

    @property
    def gpm_devices(self) -> list[int]:
        """Indices of the GPUs whose GPM metrics are sampled."""
        return sorted(self._gpm)

    def sample(self) -> list[Reading]:
        nv = self._nv
        out = []
        for i, h in self._devices:
            v: dict[str, float] = {}
            util = _try(nv.nvmlDeviceGetUtilizationRates, h)
            if util is not None:
                v["gpu_util_pct"] = float(util.gpu)
                v["gpu_mem_util_pct"] = float(util.memory)
            mem = _try(nv.nvmlDeviceGetMemoryInfo, h)
            if mem is not None:
                v["gpu_mem_used_mib"] = mem.used / 2**20
                v["gpu_mem_total_mib"] = mem.total / 2**20
            power = _try(nv.nvmlDeviceGetPowerUsage, h)
            if power is not None:
                v["power_w"] = power / 1000.0
            temp = _try(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU)
            if temp is not None:
                v["temp_c"] = float(temp)
            clock = _try(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM)
            if clock is not None:
                v["sm_clock_mhz"] = float(clock)
            gpm = self._gpm.get(i)
            if gpm is not None:
                v.update(_try(gpm.read) or {})
            out.append(Reading(f"gpu{i}", v))
        return out

    def close(self) -> None:
        for gpm in self._gpm.values():
            gpm.free()
        self._gpm.clear()
        if self._nv is not None:
            _try(self._nv.nvmlShutdown)
            self._nv = None
        self._devices = []
