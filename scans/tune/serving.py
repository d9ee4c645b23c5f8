"""The one place the tune imports the scans' server helpers (the restructure may move them)."""

from scans.server.server_scan import check_max_batch
from scans.server.serverproc import ServeConfig, ServedServer, zoo_shapes

__all__ = ["ServeConfig", "ServedServer", "check_max_batch", "zoo_shapes"]
