"""The real perf_analyzer for the tests: ``make perf-analyzer`` (tools/install_perf_analyzer.sh) puts it
in the venv's bin/, beside this Python. Missing where it should be installed is a test failure, not a
skip: the only skip is a platform the tritonclient 2.51.0 wheel has no binary for (Linux x86_64 only)."""

from __future__ import annotations

import platform
import sys

import pytest

from scans.perf_analyzer.args import find_binary


def perf_analyzer() -> str:
    """The absolute path of perf_analyzer; skips off Linux x86_64, fails when it is not installed."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip("perf_analyzer 2.51.0 ships only in the manylinux x86_64 tritonclient wheel")
    exe = find_binary("perf_analyzer")
    if exe is None:
        pytest.fail("perf_analyzer is not installed: run 'make perf-analyzer' (make test does it first)")
    return exe
