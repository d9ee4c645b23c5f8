"""``saturate demo``: serves ParticleNet, loads it at a few concurrencies, prints a summary, stops it."""

from __future__ import annotations

import pytest
from conftest import run_cli

pytestmark = pytest.mark.integration


def test_demo_runs_levels_and_stops_the_server() -> None:
    proc = run_cli("demo", "--requests", "20", "--concurrency", "1,3", "-b", "4", timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["conc", "requests"])
    rows = [ln.split() for ln in lines[header + 1 : header + 3]]
    assert [r[0] for r in rows] == ["1", "3"]
    assert all(r[1] == "20" and r[2] == "0" and float(r[3]) > 0 for r in rows)
    assert "server stopped (exit 0)" in proc.stdout
