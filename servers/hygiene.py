"""What ``saturate serve`` does so that a server leaves nothing readable or lying around.

- ``umask 077`` before PyTriton starts, so what it and Triton create follow it. That is not enough
  for the Python backend's shared-memory segments (``/dev/shm/pytrtion<PID>-…``): they come out 0644
  whatever the umask (checked: umask 0077 in the server, Triton and the stub, segment still 0644), so
  :func:`make_private` chmods them 0600 once Triton is up.
- On every exit ``serve`` sees (SIGTERM/SIGINT, Triton dying, an error while starting) the segments
  named after its own PID are removed after PyTriton's own clean-up (pytriton triton.py ``stop``
  cleans the workspace); at start-up, segments of servers that are gone (killed with SIGKILL, which
  no process can see) are removed too, if they belong to this user.
- A bind address that is not loopback gets a warning: inference is open to the network (the
  access token guards only statistics and model control).
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from pathlib import Path

SHM_DIR = Path("/dev/shm")
_SEGMENT = re.compile(r"^pytrtion(\d+)-")


def private_umask() -> int:
    """Set umask 077; returns the previous one."""
    return os.umask(0o077)


def is_loopback(bind: str) -> bool:
    if bind in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return False


def warn_if_open(bind: str) -> str | None:
    """The warning ``serve`` prints on stderr for a non-loopback bind (None for loopback)."""
    if is_loopback(bind):
        return None
    msg = (f"saturate serve: WARNING: bound to {bind}: inference is open to anyone who can reach this "
           "host (the access token guards only statistics and model control); use --bind 127.0.0.1 "
           "unless clients on other hosts need it")
    print(msg, file=sys.stderr, flush=True)
    return msg


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def segments(pid: int | None = None, shm: Path = SHM_DIR) -> list[Path]:
    """PyTriton's segments in ``shm`` (of ``pid`` only, when given)."""
    try:
        names = os.listdir(shm)
    except OSError:
        return []
    out = []
    for name in names:
        m = _SEGMENT.match(name)
        if m and (pid is None or int(m.group(1)) == pid):
            out.append(shm / name)
    return out


def make_private(pid: int, shm: Path = SHM_DIR) -> int:
    """chmod 0600 the segments named after ``pid``; returns how many."""
    n = 0
    for path in segments(pid, shm):
        try:
            path.chmod(0o600)
            n += 1
        except OSError:
            pass
    return n


def remove_segments(pid: int, shm: Path = SHM_DIR) -> int:
    """Remove the segments named after ``pid``; returns how many."""
    n = 0
    for path in segments(pid, shm):
        try:
            path.unlink()
            n += 1
        except OSError:
            pass
    return n


def remove_stale_segments(shm: Path = SHM_DIR) -> int:
    """Remove this user's segments whose server process is gone; returns how many."""
    n = 0
    uid = os.getuid()
    for path in segments(None, shm):
        m = _SEGMENT.match(path.name)
        assert m is not None
        try:
            if path.stat().st_uid != uid or _alive(int(m.group(1))):
                continue
            path.unlink()
            n += 1
        except OSError:
            pass
    return n


def model_ready(bind: str, http_port: int, model: str, timeout_s: float = 2.0) -> bool | None:
    """Whether Triton still serves ``model`` (its own ready endpoint); None when Triton did not answer."""
    import urllib.error
    import urllib.request

    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(bind, bind)
    host = f"[{host}]" if ":" in host else host
    try:
        with urllib.request.urlopen(f"http://{host}:{http_port}/v2/models/{model}/ready", timeout=timeout_s):
            return True
    except urllib.error.HTTPError:
        return False  # Triton answered: the model is not ready (unloaded through the repository API)
    except (OSError, ValueError):
        return None


class ModelWatch:
    """Checks every ``period_s`` that the served model is still loaded; see :func:`model_ready`."""

    def __init__(self, bind: str, http_port: int, model: str, period_s: float = 2.0) -> None:
        self.bind, self.port, self.model, self.period_s = bind, http_port, model, period_s
        self._next = 0.0

    def lost(self, now: float) -> bool:
        """True once Triton answers that the model is not ready (an unload); False otherwise."""
        if now < self._next:
            return False
        self._next = now + self.period_s
        return model_ready(self.bind, self.port, self.model) is False
