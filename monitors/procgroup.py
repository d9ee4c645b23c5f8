"""Subprocess tools (nvidia-smi, rocm-smi, amd-smi) in their own process group, killed as a group.

A tool that hangs in a child of its own (a wrapper script, a driver helper) keeps the pipe open after
its direct child dies, so ``terminate()`` plus a read would block forever. Every tool therefore
starts in a new session (its own process group) and is stopped with ``killpg`` (SIGTERM, then
SIGKILL), after which nothing holds the pipe. Reads are bounded: one line at most :data:`MAX_LINE`
characters, one run's output at most :data:`MAX_OUTPUT`, one run at most its timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

MAX_LINE = 8192
MAX_OUTPUT = 4 * 2**20


def spawn(cmd: list[str]) -> subprocess.Popen[str]:
    """Start ``cmd`` in its own process group, stdout+stderr on one text pipe, no stdin."""
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, bufsize=1, start_new_session=True)


def kill_group(proc: subprocess.Popen[str], grace_s: float = 2.0) -> int | None:
    """SIGTERM the whole group, SIGKILL it after ``grace_s``; returns the exit code (None if unknown)."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            return proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.poll()


def run_once(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` to completion within ``timeout_s`` (its group killed past it: TimeoutExpired)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc, 0.5)
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError, OSError):
            proc.communicate(timeout=2.0)
        raise subprocess.TimeoutExpired(cmd, timeout_s) from None
    finally:
        if proc.poll() is None:
            kill_group(proc, 0.5)
    return subprocess.CompletedProcess(cmd, proc.returncode, out[:MAX_OUTPUT], err[:MAX_OUTPUT])
