"""saturate: inference-server load generator and profiler (front door only)."""

from saturate.errors import UsageError

__all__ = ["UsageError"]
