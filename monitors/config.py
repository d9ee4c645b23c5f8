"""MonitorConfig: every setting of a monitor run, validated once."""

from __future__ import annotations

from dataclasses import dataclass

from saturate.errors import ConfigError

MIN_INTERVAL_S = 0.05
GPU_SOURCES: tuple[str, ...] = ("nvml", "nvidia-smi", "amdsmi", "rocm-smi", "amd-smi", "triton")
ALL_SOURCES: tuple[str, ...] = ("auto", *GPU_SOURCES, "host")
FORMATS: tuple[str, ...] = ("tidy", "seed")


@dataclass(frozen=True)
class MonitorConfig:
    """Settings of one monitor run (built from CLI flags or sweep specs the same way)."""

    out: str = "monitor.csv"
    interval_s: float = 0.25
    duration_s: float | None = None
    sources: tuple[str, ...] = ("auto",)
    format: str = "tidy"
    gpus: tuple[int, ...] | None = None
    pids: tuple[int, ...] = ()
    metrics_url: str | None = None
    phase_file: str | None = None
    pid_file: str | None = None
    gpm: bool = True

    def __post_init__(self) -> None:
        if not self.interval_s >= MIN_INTERVAL_S:
            raise ConfigError(f"--interval must be >= {MIN_INTERVAL_S} s (got {self.interval_s:g}); "
                              "use e.g. --interval 0.1")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ConfigError(f"--duration must be > 0 s (got {self.duration_s:g}); leave it out to run "
                              "until SIGTERM/SIGINT")
        if not self.sources:
            raise ConfigError("--source is empty; use --source auto")
        for name in self.sources:
            if name not in ALL_SOURCES:
                raise ConfigError(f"unknown --source {name!r}; choose from {', '.join(ALL_SOURCES)}")
        if "triton" in self.sources and not self.metrics_url:
            raise ConfigError("--source triton needs --metrics-url http://HOST:8002/metrics")
        if self.format not in FORMATS:
            raise ConfigError(f"unknown --format {self.format!r}; choose tidy or seed")
        if self.gpus is not None and any(g < 0 for g in self.gpus):
            raise ConfigError(f"--gpus takes GPU indices >= 0 (got {','.join(map(str, self.gpus))})")

    @property
    def interval_ns(self) -> int:
        return round(self.interval_s * 1e9)

    @property
    def duration_ns(self) -> int | None:
        return None if self.duration_s is None else round(self.duration_s * 1e9)


def parse_sources(text: str) -> tuple[str, ...]:
    """'auto' / 'nvml,triton' -> tuple; unknown names fail in MonitorConfig."""
    return tuple(s.strip() for s in text.split(",") if s.strip())


def parse_int_list(text: str, flag: str) -> tuple[int, ...]:
    """'0,1' -> (0, 1), or a one-line ConfigError naming the flag."""
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"{flag} takes comma-separated integers, e.g. {flag} 0,1 (got {text!r})") from None
