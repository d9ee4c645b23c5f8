"""The one atomic write of the tree: every result file (run JSON, CSVs, latency .npz, report.html,
the monitor's PID file) is written through :func:`atomic_file` or :func:`write_atomic`, so a reader —
or a rerun after a crash — never sees a half-written file.

A temporary file in the target's own directory (same filesystem, so the rename is atomic), flushed and
fsync'ed, then ``os.replace``'d over the target; on any error the temporary file is removed and the
target is left as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal


@contextmanager
def atomic_file(path: str | os.PathLike[str], mode: Literal["w", "wb"] = "w", *,
                newline: str | None = None) -> Iterator[IO[Any]]:
    """An open file (text as UTF-8, or ``"wb"``) whose contents replace ``path`` when the block ends."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        if mode == "wb":
            f: IO[Any] = os.fdopen(fd, "wb")
        else:
            f = os.fdopen(fd, "w", newline=newline, encoding="utf-8")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, newline: str | None = None) -> Path:
    """Replace ``path`` with ``data`` (text as UTF-8, or bytes) atomically; returns the path."""
    target = Path(path)
    if isinstance(data, bytes):
        with atomic_file(target, "wb") as f:
            f.write(data)
    else:
        with atomic_file(target, "w", newline=newline) as f:
            f.write(data)
    return target
